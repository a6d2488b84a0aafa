"""PromptEncoder with the real prompt grammar (modules.prompting): text in, same result as the parsed list."""

from __future__ import annotations

import torch

from modules.conditioning import PromptEncoder

LONG = " ".join(["cat"] * 80)


def test_text_is_parsed_with_attention_syntax(sd1):
    encoder = PromptEncoder(sd1)
    from_text = encoder.encode("a (red:1.5) cat")
    # A1111's parse_prompt_attention("a (red:1.5) cat")
    from_parsed = PromptEncoder(sd1).encode_parsed([("a ", 1.0), ("red", 1.5), (" cat", 1.0)])
    torch.testing.assert_close(from_text.tokens, from_parsed.tokens, rtol=0, atol=0)


def test_break_keyword_starts_a_chunk(sd1):
    assert PromptEncoder(sd1).encode("cat BREAK dog").tokens.shape == (1, 154, 32)


def test_emphasis_param_written_only_for_non_default_mode_with_brackets(sd1):
    plain = PromptEncoder(sd1, emphasis="No norm")
    plain.encode("a cat")
    assert "Emphasis" not in plain.extra_generation_params
    plain.encode("a (cat)")
    assert plain.extra_generation_params["Emphasis"] == "No norm"
    default = PromptEncoder(sd1)
    default.encode("a (cat)")
    assert "Emphasis" not in default.extra_generation_params


def test_prompt_counter_takes_the_longest_scheduled_text(sd1):
    encoder = PromptEncoder(sd1)
    assert encoder.count_prompt_tokens(f"[dog:{LONG}:0.5]", steps=20) == (80, 150)
    assert encoder.count_prompt_tokens("a cat <lora:thing:0.8>", steps=20) == (2, 75)
    assert encoder.count_prompt_tokens("a (cat:1.2)", steps=20) == (2, 75)
