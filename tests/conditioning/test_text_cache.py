"""The text-encoder cache shared across jobs: a repeated text costs no call and gives the same tensor;
anything its output depends on (weights changed in place, restored, moved; CLIP skip; an embedding's
vectors) misses; an unloaded model's entries go with it."""

from __future__ import annotations

import gc

import safetensors.torch
import torch
from transformers import CLIPTextModel

from modules.conditioning import EmbeddingDatabase, PromptEncoder, TextCache
from modules.models.bundle import Arch

from .conftest import frozen, text_bundle, text_config

PROMPT = "a red circle on a blue background"


def bundle(clip_tokenizer):  # noqa: ANN001, ANN201
    return text_bundle(Arch.SD1, [frozen(CLIPTextModel(text_config(32)), seed=7)], [clip_tokenizer])


def encode(model_bundle, cache, text=PROMPT, **options):  # noqa: ANN001, ANN201
    """One job's encoder (a new PromptEncoder, as each generation makes): its tokens and its call count."""
    encoder = PromptEncoder(model_bundle, text_cache=cache, **options)
    return encoder.encode(text).tokens, encoder.calls


def test_a_later_job_reuses_the_text_and_gets_the_same_tensor(clip_tokenizer):
    model_bundle, cache = bundle(clip_tokenizer), TextCache()
    first, calls = encode(model_bundle, cache)
    again, calls_again = encode(model_bundle, cache)
    uncached, _ = encode(model_bundle, None)
    assert (calls, calls_again) == (1, 0)
    assert torch.equal(first, again) and torch.equal(first, uncached)
    assert encode(model_bundle, cache, "a green square")[1] == 1  # another text is encoded


def test_weights_changed_in_place_then_restored_miss_both_times(clip_tokenizer):
    model_bundle, cache = bundle(clip_tokenizer), TextCache()
    weight = model_bundle.text_encoders[0].encoder.layers[0].mlp.fc1.weight
    original, _ = encode(model_bundle, cache)
    saved = weight.detach().clone()
    with torch.no_grad():
        weight.add_(0.5)  # what a LoRA patch does (param.copy_ of the patched weight)
    patched, calls = encode(model_bundle, cache)
    assert calls == 1 and not torch.allclose(patched, original)
    with torch.no_grad():
        weight.copy_(saved)  # the patch taken off again
    restored, calls = encode(model_bundle, cache)
    assert calls == 1 and torch.equal(restored, original)


def test_clip_skip_and_a_cast_model_miss(clip_tokenizer):
    model_bundle, cache = bundle(clip_tokenizer), TextCache()
    encode(model_bundle, cache)
    assert encode(model_bundle, cache, clip_skip=2)[1] == 1
    model_bundle.text_encoders[0].to(torch.float64)
    assert encode(model_bundle, cache)[1] == 1


def test_an_embedding_file_replaced_under_the_same_name_misses(clip_tokenizer, tmp_path):
    model_bundle, cache = bundle(clip_tokenizer), TextCache()
    file = tmp_path / "myemb.safetensors"
    safetensors.torch.save_file({"emb_params": torch.ones(1, 32)}, file)
    first, _ = encode(model_bundle, cache, "a myemb circle", embeddings=EmbeddingDatabase([tmp_path]))
    safetensors.torch.save_file({"emb_params": -torch.ones(1, 32)}, file)
    second, calls = encode(model_bundle, cache, "a myemb circle", embeddings=EmbeddingDatabase([tmp_path]))
    assert calls == 1 and not torch.allclose(first, second)


def test_an_unloaded_model_takes_its_entries_with_it(clip_tokenizer):
    model_bundle, cache = bundle(clip_tokenizer), TextCache()
    encode(model_bundle, cache)
    assert len(cache) == 1
    del model_bundle
    gc.collect()
    assert len(cache) == 0


def test_a_model_made_under_inference_mode_is_not_cached(clip_tokenizer):
    with torch.inference_mode():
        model_bundle = bundle(clip_tokenizer)
    cache = TextCache()
    assert [encode(model_bundle, cache)[1] for _ in range(2)] == [1, 1]
    assert len(cache) == 0
