"""PromptEncoder against the text models' own forward passes: CLIP skip, emphasis, chunks, caching, SD2/SDXL."""

from __future__ import annotations

import pytest
import torch

from modules.conditioning import PromptEncoder, tokenize_chunks
from modules.conditioning.chunks import SpecialTokens

LONG = " ".join(["cat"] * 80)  # two chunks


def ids_of(bundle, parsed, index=0, pad=None) -> torch.Tensor:
    tokenizer = bundle.tokenizers[index]
    special = SpecialTokens.from_tokenizer(tokenizer, pad)
    return torch.tensor([c.tokens for c in tokenize_chunks(tokenizer, parsed, special)])


def own_forward(model, ids: torch.Tensor):
    with torch.no_grad():
        return model(input_ids=ids, output_hidden_states=True)


def weights_of(bundle, parsed) -> torch.Tensor:
    return torch.tensor([c.weights for c in tokenize_chunks(bundle.tokenizers[0], parsed)])


def test_clip_skip_1_is_the_last_hidden_state(sd1):
    parsed = [("a photo of a cat", 1.0)]
    cond = PromptEncoder(sd1, clip_skip=1).encode_parsed(parsed)
    expected = own_forward(sd1.text_encoders[0], ids_of(sd1, parsed)).last_hidden_state
    assert cond.pooled is None
    torch.testing.assert_close(cond.tokens, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("clip_skip", [2, 3, 5])
def test_clip_skip_n_is_hidden_state_minus_n_with_final_norm(sd1, clip_skip):
    parsed = [("a photo of a cat", 1.0)]
    cond = PromptEncoder(sd1, clip_skip=clip_skip).encode_parsed(parsed)
    model = sd1.text_encoders[0]
    hidden = own_forward(model, ids_of(sd1, parsed)).hidden_states[-clip_skip]
    torch.testing.assert_close(cond.tokens, model.final_layer_norm(hidden), rtol=0, atol=1e-6)


def test_clip_skip_beyond_the_model_is_an_error(sd1):
    with pytest.raises(ValueError, match="clip skip"):
        PromptEncoder(sd1, clip_skip=6).encode_parsed([("cat", 1.0)])


def test_original_emphasis_weights_then_restores_the_mean(sd1):
    parsed = [("a", 1.0), ("red cat", 1.4), ("on grass", 0.7)]
    cond = PromptEncoder(sd1, emphasis="Original").encode_parsed(parsed)
    z = own_forward(sd1.text_encoders[0], ids_of(sd1, parsed)).last_hidden_state
    weighted = z * weights_of(sd1, parsed)[..., None]
    torch.testing.assert_close(cond.tokens, weighted * (z.mean() / weighted.mean()), rtol=1e-5, atol=1e-6)


def test_no_norm_emphasis_only_multiplies(sd1):
    parsed = [("a", 1.0), ("red cat", 1.4)]
    cond = PromptEncoder(sd1, emphasis="No norm").encode_parsed(parsed)
    z = own_forward(sd1.text_encoders[0], ids_of(sd1, parsed)).last_hidden_state
    torch.testing.assert_close(cond.tokens, z * weights_of(sd1, parsed)[..., None], rtol=1e-5, atol=1e-6)


def test_ignore_emphasis_drops_weights(sd1):
    weighted = PromptEncoder(sd1, emphasis="Ignore").encode_parsed([("a", 1.0), ("red cat", 1.4)])
    plain = PromptEncoder(sd1).encode_parsed([("a red cat", 1.0)])
    torch.testing.assert_close(weighted.tokens, plain.tokens, rtol=0, atol=1e-6)


def test_emphasis_none_keeps_the_attention_syntax_literal(sd1):
    encoder = PromptEncoder(sd1, emphasis="None")
    assert encoder.parse("(cat:1.5) BREAK dog") == (("(cat:1.5) BREAK dog", 1.0),)
    literal = encoder.encode("(cat:1.5)")
    expected = own_forward(sd1.text_encoders[0], ids_of(sd1, [("(cat:1.5)", 1.0)])).last_hidden_state
    torch.testing.assert_close(literal.tokens, expected, rtol=0, atol=1e-6)


def test_unknown_emphasis_is_rejected(sd1):
    with pytest.raises(ValueError, match="emphasis"):
        PromptEncoder(sd1, emphasis="Strong")


def test_chunks_are_encoded_separately_and_concatenated(sd1):
    parsed = [(LONG, 1.0)]
    cond = PromptEncoder(sd1).encode_parsed(parsed)
    per_chunk = own_forward(sd1.text_encoders[0], ids_of(sd1, parsed)).last_hidden_state
    assert cond.tokens.shape == (1, 154, 32)
    torch.testing.assert_close(cond.tokens[0, :77], per_chunk[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(cond.tokens[0, 77:], per_chunk[1], rtol=0, atol=1e-6)


def test_original_emphasis_normalises_each_chunk_on_its_own(sd1):
    parsed = [(LONG, 1.0), ("red", 1.5)]
    cond = PromptEncoder(sd1).encode_parsed(parsed)
    z = own_forward(sd1.text_encoders[0], ids_of(sd1, parsed)).last_hidden_state
    weights = weights_of(sd1, parsed)
    for c in range(2):
        weighted = z[c] * weights[c][:, None]
        expected = weighted * (z[c].mean() / weighted.mean())
        torch.testing.assert_close(cond.tokens[0, 77 * c : 77 * (c + 1)], expected, rtol=1e-5, atol=1e-6)


def test_schedule_with_k_distinct_texts_calls_the_encoder_k_times(sd1):
    encoder = PromptEncoder(sd1, emphasis="None")
    schedule = [(5, "a cat"), (10, "a dog"), (15, "a cow"), (20, "a dog")]
    result = encoder.encode_schedule(schedule)
    assert encoder.calls == 3
    assert [end for end, _ in result] == [5, 10, 15, 20]
    torch.testing.assert_close(result[1][1].tokens, result[3][1].tokens, rtol=0, atol=0)
    encoder.encode_schedules([schedule, schedule, [(20, "a cat")]])
    assert encoder.calls == 3


def test_same_parse_is_encoded_once(sd1):
    encoder = PromptEncoder(sd1)
    encoder.encode_parsed([("a cat", 1.0)])
    encoder.encode_parsed((("a cat", 1),))
    assert encoder.calls == 1
    encoder.encode_parsed([("a cat", 1.1)])
    assert encoder.calls == 2


def test_schedule_texts_share_one_emphasis_normalisation(sd1, monkeypatch):
    first, second = [("red", 1.5), ("cat", 1.0)], [("dog", 1.0)]
    parses = {"(red:1.5) cat": first, "dog": second}
    monkeypatch.setattr("modules.prompting.parse_attention", parses.__getitem__, raising=False)
    (_, cond_first), (_, cond_second) = PromptEncoder(sd1).encode_schedule(
        [(10, "(red:1.5) cat"), (20, "dog")]
    )
    model = sd1.text_encoders[0]
    z = torch.cat([own_forward(model, ids_of(sd1, p)).last_hidden_state for p in (first, second)])
    weighted = z * torch.cat([weights_of(sd1, first), weights_of(sd1, second)])[..., None]
    expected = weighted * (z.mean() / weighted.mean())  # one scalar for the whole schedule batch
    torch.testing.assert_close(cond_first.tokens[0], expected[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cond_second.tokens[0], expected[1], rtol=1e-5, atol=1e-6)


def test_shorter_schedule_entries_are_padded_with_empty_chunks(sd1):
    encoder = PromptEncoder(sd1, emphasis="None")
    (_, short), (_, long) = encoder.encode_schedule([(10, "a cat"), (20, LONG)])
    assert short.tokens.shape == long.tokens.shape == (1, 154, 32)
    empty = own_forward(sd1.text_encoders[0], ids_of(sd1, [("", 1.0)])).last_hidden_state
    torch.testing.assert_close(short.tokens[0, 77:], empty[0], rtol=0, atol=1e-6)


def test_count_tokens(sd1):
    encoder = PromptEncoder(sd1, emphasis="None")
    assert encoder.count_tokens("a photo of a cat") == (5, 75)
    assert encoder.count_tokens("") == (0, 75)
    assert encoder.count_tokens(LONG) == (80, 150)
    assert encoder.count_tokens_max(["a cat", LONG, "dog"]) == (80, 150)
    assert encoder.calls == 0


def test_real_tiny_bundle_encodes(tiny_bundle):
    cond = PromptEncoder(tiny_bundle).encode_parsed([("a photo of a cat", 1.0)])
    assert cond.tokens.shape == (1, 77, 32)
    assert torch.isfinite(cond.tokens).all()


# ----- SD2 -----


def test_sd2_pads_with_zero_and_uses_the_last_layer_of_a_cut_tower(sd2):
    parsed = [("a photo of a cat", 1.0)]
    cond = PromptEncoder(sd2).encode_parsed(parsed)
    ids = ids_of(sd2, parsed, pad=0)
    assert ids[0, 7:].eq(0).all()
    expected = own_forward(sd2.text_encoders[0], ids).last_hidden_state
    assert cond.tokens.shape == (1, 77, 32)
    torch.testing.assert_close(cond.tokens, expected, rtol=0, atol=1e-6)


def test_sd2_ignores_clip_skip_like_a1111(sd2):
    parsed = [("a photo of a cat", 1.0)]
    skip1 = PromptEncoder(sd2, clip_skip=1).encode_parsed(parsed)
    skip2 = PromptEncoder(sd2, clip_skip=2).encode_parsed(parsed)
    torch.testing.assert_close(skip1.tokens, skip2.tokens, rtol=0, atol=0)


def test_sd2_full_tower_uses_the_penultimate_layer_with_final_norm(sd2_full_tower):
    parsed = [("a photo of a cat", 1.0)]
    cond = PromptEncoder(sd2_full_tower).encode_parsed(parsed)
    model = sd2_full_tower.text_encoders[0]
    hidden = own_forward(model, ids_of(sd2_full_tower, parsed, pad=0)).hidden_states[-2]
    torch.testing.assert_close(cond.tokens, model.final_layer_norm(hidden), rtol=0, atol=1e-6)


# ----- SDXL -----


def sdxl_expected(sdxl, parsed, clip_l_layer=-2):
    clip_l, clip_g = sdxl.text_encoders
    out_l = own_forward(clip_l, ids_of(sdxl, parsed, 0))
    out_g = own_forward(clip_g, ids_of(sdxl, parsed, 1, pad=0))
    tokens = torch.cat([out_l.hidden_states[clip_l_layer], out_g.hidden_states[-2]], dim=-1)
    return tokens, out_g.text_embeds


def test_sdxl_concatenates_penultimate_states_and_pools_openclip_g(sdxl):
    parsed = [("a photo of a cat", 1.0)]
    cond = PromptEncoder(sdxl, emphasis="Ignore").encode_parsed(parsed)
    tokens, pooled = sdxl_expected(sdxl, parsed)
    assert cond.tokens.shape == (1, 77, 32 + 48)
    assert cond.pooled.shape == (1, 40)
    torch.testing.assert_close(cond.tokens[0], tokens[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(cond.pooled, pooled, rtol=0, atol=1e-6)


def test_sdxl_pooled_comes_from_the_first_chunk(sdxl):
    parsed = [(LONG, 1.0)]
    cond = PromptEncoder(sdxl, emphasis="Ignore").encode_parsed(parsed)
    tokens, pooled = sdxl_expected(sdxl, parsed)
    assert cond.tokens.shape == (1, 154, 80)
    torch.testing.assert_close(cond.tokens[0, 77:], tokens[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(cond.pooled, pooled[:1], rtol=0, atol=1e-6)


def test_sdxl_emphasis_normalises_each_encoder_separately(sdxl):
    parsed = [("a", 1.0), ("red cat", 1.3)]
    cond = PromptEncoder(sdxl).encode_parsed(parsed)
    tokens, _ = sdxl_expected(sdxl, parsed)
    w = weights_of(sdxl, parsed)[0][:, None]
    parts = []
    for z in (tokens[0, :, :32], tokens[0, :, 32:]):
        weighted = z * w
        parts.append(weighted * (z.mean() / weighted.mean()))
    torch.testing.assert_close(cond.tokens[0], torch.cat(parts, dim=-1), rtol=1e-5, atol=1e-6)


def test_sdxl_clip_skip_only_with_the_clip_l_option(sdxl):
    parsed = [("a photo of a cat", 1.0)]
    default = PromptEncoder(sdxl, clip_skip=3, emphasis="Ignore").encode_parsed(parsed)
    torch.testing.assert_close(default.tokens[0], sdxl_expected(sdxl, parsed)[0][0], rtol=0, atol=1e-6)
    opted = PromptEncoder(sdxl, clip_skip=3, emphasis="Ignore", sdxl_clip_l_skip=True).encode_parsed(parsed)
    expected = sdxl_expected(sdxl, parsed, clip_l_layer=-3)[0]
    torch.testing.assert_close(opted.tokens[0], expected[0], rtol=0, atol=1e-6)


def test_sdxl_empty_negative_prompt_is_zeros(sdxl):
    encoder = PromptEncoder(sdxl, emphasis="None")
    ((_, negative),) = encoder.encode_schedule([(20, "")], negative=True)
    assert negative.tokens.shape == (1, 77, 80)
    assert not negative.tokens.any() and not negative.pooled.any()
    ((_, positive),) = encoder.encode_schedule([(20, "")])
    assert positive.tokens.any()


def test_empty_schedule_is_an_error(sd1):
    with pytest.raises(ValueError, match="schedule"):
        PromptEncoder(sd1).encode_schedule([])
