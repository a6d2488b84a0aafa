"""Embedding files (A1111 .pt, diffusers .bin, .safetensors SD1/SDXL) and their splicing into prompts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import safetensors.torch
import torch

from modules.conditioning import EmbeddingDatabase, PromptEncoder, load_embedding_file
from modules.conditioning.embeddings import Embedding


def a1111_pt(path: Path, vectors: torch.Tensor, name: str = "ignored-inner-name", step: int = 500) -> Path:
    torch.save(
        {
            "string_to_token": {"*": 265},
            "string_to_param": {"*": torch.nn.Parameter(vectors)},
            "name": name,
            "step": step,
            "sd_checkpoint": "abcdef12",
            "sd_checkpoint_name": "model",
        },
        path,
    )
    return path


def token_rows(model, tokenizer, text: str) -> torch.Tensor:
    """The token-embedding rows of ``text``: an embedding made of them must act like typing the text."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    inner = getattr(model, "text_model", model)
    return inner.embeddings.token_embedding.weight[ids].detach().clone()


def test_a1111_pt_is_named_by_file_stem(tmp_path):
    vectors = torch.randn(2, 32)
    emb = load_embedding_file(a1111_pt(tmp_path / "MyStyle.pt", vectors))
    assert emb.name == "MyStyle"
    assert emb.step == 500
    assert (emb.vector_count, emb.dim) == (2, 32)
    torch.testing.assert_close(emb.vectors, vectors)


def test_diffusers_bin_single_vector(tmp_path):
    vector = torch.randn(32)
    torch.save({"<concept>": vector}, tmp_path / "concept.bin")
    emb = load_embedding_file(tmp_path / "concept.bin")
    assert emb.vectors.shape == (1, 32)
    torch.testing.assert_close(emb.vectors[0], vector)


def test_safetensors_sd1_and_sdxl_forms(tmp_path):
    safetensors.torch.save_file({"emb_params": torch.randn(4, 768)}, tmp_path / "sd1.safetensors")
    pair = {"clip_l": torch.randn(3, 768), "clip_g": torch.randn(3, 1280)}
    safetensors.torch.save_file(pair, tmp_path / "xl.safetensors")
    sd1, xl = (
        load_embedding_file(tmp_path / "sd1.safetensors"),
        load_embedding_file(tmp_path / "xl.safetensors"),
    )
    assert (sd1.vector_count, sd1.dim) == (4, 768)
    assert (xl.vector_count, xl.dim) == (3, 2048)
    torch.testing.assert_close(xl.vectors_for(1), pair["clip_g"])
    torch.testing.assert_close(xl.vectors_for(0), pair["clip_l"])


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_code_is_not_run_and_the_file_is_reported(tmp_path):
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = str(marker)
    torch.save({"string_to_param": {"*": exploit}}, tmp_path / "evil.pt")
    a1111_pt(tmp_path / "good.pt", torch.randn(1, 32))
    database = EmbeddingDatabase([tmp_path])
    assert not marker.exists()
    assert list(database.embeddings) == ["good"]
    assert list(database.errors) == [tmp_path / "evil.pt"]


def test_database_walks_folders_skips_empty_and_foreign_files(tmp_path):
    (tmp_path / "sub").mkdir()
    a1111_pt(tmp_path / "b.pt", torch.randn(1, 32))
    a1111_pt(tmp_path / "sub" / "a.pt", torch.randn(1, 32))
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an embedding")
    database = EmbeddingDatabase([tmp_path, tmp_path / "missing"])
    assert list(database.embeddings) == ["b", "a"]
    assert database.errors == {}


def test_later_file_with_the_same_name_replaces_the_earlier(tmp_path):
    (tmp_path / "z").mkdir()
    a1111_pt(tmp_path / "same.pt", torch.zeros(1, 32))
    a1111_pt(tmp_path / "z" / "same.pt", torch.ones(1, 32))
    database = EmbeddingDatabase([tmp_path])
    assert len(database) == 1
    assert database.embeddings["same"].vectors.eq(1).all()


def test_file_with_several_terms_is_an_error(tmp_path):
    torch.save({"string_to_param": {"*": torch.randn(1, 32), "x": torch.randn(1, 32)}}, tmp_path / "two.pt")
    with pytest.raises(ValueError, match="2 terms"):
        load_embedding_file(tmp_path / "two.pt")


@pytest.mark.parametrize("words", ["red", "red cat on grass"])
def test_sd1_embedding_acts_like_the_tokens_it_copies(sd1, tmp_path, words):
    model, tokenizer = sd1.text_encoders[0], sd1.tokenizers[0]
    a1111_pt(tmp_path / "myemb.pt", token_rows(model, tokenizer, words))
    encoder = PromptEncoder(sd1, embeddings=EmbeddingDatabase([tmp_path]))
    with_embedding = encoder.encode_parsed([("a photo of myemb", 1.0)])
    typed = PromptEncoder(sd1).encode_parsed([(f"a photo of {words}", 1.0)])
    torch.testing.assert_close(with_embedding.tokens, typed.tokens, rtol=0, atol=1e-6)


def test_embedding_keeps_the_weight_of_its_piece(sd1, tmp_path):
    model, tokenizer = sd1.text_encoders[0], sd1.tokenizers[0]
    a1111_pt(tmp_path / "myemb.pt", token_rows(model, tokenizer, "red cat"))
    encoder = PromptEncoder(sd1, emphasis="No norm", embeddings=EmbeddingDatabase([tmp_path]))
    with_embedding = encoder.encode_parsed([("a", 1.0), ("myemb", 1.3)])
    typed = PromptEncoder(sd1, emphasis="No norm").encode_parsed([("a", 1.0), ("red cat", 1.3)])
    torch.testing.assert_close(with_embedding.tokens, typed.tokens, rtol=0, atol=1e-6)


def test_embedding_moved_to_the_next_chunk_is_spliced_there(sd1, tmp_path):
    model, tokenizer = sd1.text_encoders[0], sd1.tokenizers[0]
    a1111_pt(tmp_path / "myemb.pt", token_rows(model, tokenizer, "red red red"))
    filler = " ".join(["cat"] * 73)
    encoder = PromptEncoder(sd1, embeddings=EmbeddingDatabase([tmp_path]))
    cond = encoder.encode_parsed([(f"{filler} myemb", 1.0)])
    typed = PromptEncoder(sd1).encode_parsed([(filler, 1.0), ("BREAK", -1.0), ("red red red", 1.0)])
    assert cond.tokens.shape == (1, 154, 32)
    torch.testing.assert_close(cond.tokens, typed.tokens, rtol=0, atol=1e-6)


def test_sdxl_embedding_splices_each_half_into_its_encoder(sdxl, tmp_path):
    (clip_l, clip_g), (tok_l, tok_g) = sdxl.text_encoders, sdxl.tokenizers
    pair = {"clip_l": token_rows(clip_l, tok_l, "red cat"), "clip_g": token_rows(clip_g, tok_g, "red cat")}
    safetensors.torch.save_file(pair, tmp_path / "xlemb.safetensors")
    encoder = PromptEncoder(sdxl, embeddings=EmbeddingDatabase([tmp_path]))
    with_embedding = encoder.encode_parsed([("a xlemb", 1.0)])
    typed = PromptEncoder(sdxl).encode_parsed([("a red cat", 1.0)])
    torch.testing.assert_close(with_embedding.tokens, typed.tokens, rtol=0, atol=1e-6)
    torch.testing.assert_close(with_embedding.pooled, typed.pooled, rtol=0, atol=1e-6)


def test_embeddings_of_another_size_are_skipped_with_a_note(sd1, sdxl, tmp_path):
    a1111_pt(tmp_path / "wide.pt", torch.randn(1, 768))
    safetensors.torch.save_file(
        {"clip_l": torch.randn(1, 32), "clip_g": torch.randn(1, 48)}, tmp_path / "xl.safetensors"
    )
    database = EmbeddingDatabase([tmp_path])
    sd1_encoder = PromptEncoder(sd1, embeddings=database)
    assert set(sd1_encoder.skipped_embeddings) == {"wide", "xl"}
    cond = sd1_encoder.encode_parsed([("wide", 1.0)])
    typed = PromptEncoder(sd1).encode_parsed([("wide", 1.0)])
    torch.testing.assert_close(cond.tokens, typed.tokens, rtol=0, atol=0)
    assert set(PromptEncoder(sdxl, embeddings=database).skipped_embeddings) == {"wide"}


def test_used_embeddings_give_ti_hashes(sd1, tmp_path):
    path = a1111_pt(tmp_path / "my:emb,v2.pt", torch.randn(2, 32))
    other = a1111_pt(tmp_path / "unused.pt", torch.randn(1, 32))
    encoder = PromptEncoder(sd1, embeddings=EmbeddingDatabase([tmp_path]))
    assert encoder.extra_generation_params == {}
    encoder.encode_parsed([("a my:emb,v2", 1.0)])
    short = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert [e.name for e in encoder.used_embeddings] == ["my:emb,v2"]
    assert encoder.extra_generation_params == {"TI hashes": f"myembv2: {short}"}
    assert other.exists()


def test_embedding_without_a_file_has_no_hash():
    emb = Embedding(name="mem", vectors=torch.randn(1, 8))
    assert emb.short_hash is None


def test_broken_link_does_not_stop_loading(tmp_path):
    (tmp_path / "dangling.pt").symlink_to(tmp_path / "nowhere.pt")
    a1111_pt(tmp_path / "good.pt", torch.randn(1, 32))
    assert list(EmbeddingDatabase([tmp_path]).embeddings) == ["good"]
