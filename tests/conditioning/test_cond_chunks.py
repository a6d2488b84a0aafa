"""Chunking with real CLIP token ids: framing, padding, 75-token boundary, BREAK, comma backtrack, embeddings."""

from __future__ import annotations

import pytest
import torch

from modules.conditioning import Embedding, EmbeddingMatcher, SpecialTokens, build_chunks, tokenize_chunks
from modules.conditioning.chunks import token_limit

BOS, EOS, CAT, DOG, COMMA, RED = 49406, 49407, 2368, 1929, 267, 736
BREAK = ("BREAK", -1.0)


def words(word: str, count: int) -> str:
    return " ".join([word] * count)


def test_short_prompt_is_one_padded_chunk(clip_tokenizer):
    (chunk,) = tokenize_chunks(clip_tokenizer, [("a photo of a cat", 1.0)])
    assert chunk.tokens == [BOS, 320, 1125, 539, 320, CAT] + [EOS] * 71
    assert chunk.weights == [1.0] * 77
    assert chunk.fixes == []


def test_open_clip_pads_with_zero_after_the_first_eos(open_clip_tokenizer):
    special = SpecialTokens.from_tokenizer(open_clip_tokenizer, pad=0)
    (chunk,) = tokenize_chunks(open_clip_tokenizer, [("a photo of a cat", 1.0)], special)
    assert chunk.tokens == [BOS, 320, 1125, 539, 320, CAT, EOS] + [0] * 70


LITERAL_EOS = [
    # (prompt, pad id, first 6 ids): A1111 re-pads after the first EOS only when pad != EOS
    ("a <|endoftext|> b", None, [BOS, 320, EOS, 321, EOS, EOS]),
    ("a <|endoftext|> b", 0, [BOS, 320, EOS, 0, 0, 0]),
    ("<|endoftext|> cat", None, [BOS, EOS, CAT, EOS, EOS, EOS]),
    ("<|endoftext|> cat", 0, [BOS, EOS, 0, 0, 0, 0]),
    ("a <|endoftext|>", None, [BOS, 320, EOS, EOS, EOS, EOS]),
    ("a cat", 0, [BOS, 320, CAT, EOS, 0, 0]),
]


@pytest.mark.parametrize(("prompt", "pad", "expected"), LITERAL_EOS)
def test_literal_end_of_text_repads_only_when_pad_differs(clip_tokenizer, prompt, pad, expected):
    special = SpecialTokens.from_tokenizer(clip_tokenizer, pad)
    (chunk,) = tokenize_chunks(clip_tokenizer, [(prompt, 1.0)], special)
    assert chunk.tokens[:6] == expected
    assert len(chunk.tokens) == 77 and chunk.tokens[-1] == (EOS if pad is None else pad)


def test_weights_follow_their_tokens_and_frame_tokens_stay_one(clip_tokenizer):
    (chunk,) = tokenize_chunks(clip_tokenizer, [("a", 1.0), ("red cat", 1.5), ("dog", 0.5)])
    assert chunk.tokens[:6] == [BOS, 320, RED, CAT, DOG, EOS]
    assert chunk.weights[:6] == [1.0, 1.0, 1.5, 1.5, 0.5, 1.0]
    assert set(chunk.weights[5:]) == {1.0}


@pytest.mark.parametrize(
    ("count", "expected_chunks", "expected_count", "expected_limit"),
    [
        (0, 1, 0, 75),
        (12, 1, 12, 75),
        (75, 1, 75, 75),
        (76, 2, 76, 150),
        (150, 2, 150, 150),
        (151, 3, 151, 225),
    ],
)
def test_75_token_boundary(clip_tokenizer, count, expected_chunks, expected_count, expected_limit):
    chunks, token_count = build_chunks(clip_tokenizer, [(words("cat", count), 1.0)])
    assert len(chunks) == expected_chunks
    assert token_count == expected_count
    assert token_limit(token_count) == expected_limit
    assert all(len(c.tokens) == 77 and len(c.weights) == 77 for c in chunks)
    assert sum(c.tokens.count(CAT) for c in chunks) == count


def test_second_chunk_holds_the_overflow(clip_tokenizer):
    first, second = tokenize_chunks(clip_tokenizer, [(words("cat", 75) + " dog", 1.0)])
    assert first.tokens == [BOS] + [CAT] * 75 + [EOS]
    assert second.tokens == [BOS, DOG] + [EOS] * 75


def test_break_closes_the_chunk_and_counts_a_full_75(clip_tokenizer):
    chunks, count = build_chunks(clip_tokenizer, [("cat", 1.0), BREAK, ("dog", 1.0)])
    assert [c.tokens[:3] for c in chunks] == [[BOS, CAT, EOS], [BOS, DOG, EOS]]
    assert (count, token_limit(count)) == (76, 150)


def test_trailing_break_adds_no_empty_chunk(clip_tokenizer):
    chunks, count = build_chunks(clip_tokenizer, [("cat", 1.0), BREAK])
    assert len(chunks) == 1
    assert count == 75


def test_break_word_with_normal_weight_is_plain_text(clip_tokenizer):
    (chunk,) = tokenize_chunks(clip_tokenizer, [("BREAK", 1.0)])
    assert chunk.tokens[:3] == [BOS, 2568, EOS]


@pytest.mark.parametrize("parsed", [[], [("", 1.0)]])
def test_empty_prompt_is_one_empty_chunk(clip_tokenizer, parsed):
    chunks, count = build_chunks(clip_tokenizer, parsed)
    assert [c.tokens for c in chunks] == [[BOS] + [EOS] * 76]
    assert count == 0


def test_comma_backtrack_moves_words_after_the_last_comma(clip_tokenizer):
    text = words("cat", 70) + ", " + words("red", 4) + " dog"  # 70 + comma + 4 = 75, then dog
    (first, second), count = build_chunks(clip_tokenizer, [(text, 1.0)])
    assert first.tokens == [BOS] + [CAT] * 70 + [COMMA] + [EOS] * 5
    assert second.tokens[:7] == [BOS, RED, RED, RED, RED, DOG, EOS]
    assert count == 75 + 5  # the cut chunk still counts 75


def test_comma_backtrack_zero_disables_it(clip_tokenizer):
    text = words("cat", 70) + ", " + words("red", 4) + " dog"
    first, second = tokenize_chunks(clip_tokenizer, [(text, 1.0)], comma_padding_backtrack=0)
    assert first.tokens[-6:] == [COMMA, RED, RED, RED, RED, EOS]
    assert second.tokens[:3] == [BOS, DOG, EOS]


def test_comma_too_far_back_is_not_used(clip_tokenizer):
    text = words("cat", 50) + ", " + words("red", 24) + " dog"  # comma 25 tokens before the end
    first, second = tokenize_chunks(clip_tokenizer, [(text, 1.0)], comma_padding_backtrack=20)
    assert first.tokens[-2:] == [RED, EOS]
    assert second.tokens[:3] == [BOS, DOG, EOS]


def test_comma_backtrack_keeps_weights_with_moved_tokens(clip_tokenizer):
    parsed = [(words("cat", 70) + ",", 1.0), (words("red", 4), 1.3), ("dog", 0.7)]
    _, second = tokenize_chunks(clip_tokenizer, parsed)
    assert second.weights[:7] == [1.0, 1.3, 1.3, 1.3, 1.3, 0.7, 1.0]


def embedding(name: str, count: int, dim: int = 32) -> Embedding:
    return Embedding(name=name, vectors=torch.randn(count, dim))


def test_embedding_name_becomes_placeholders_with_a_fix(clip_tokenizer):
    emb = embedding("myemb", 3)
    matcher = EmbeddingMatcher(clip_tokenizer, [emb])
    (chunk,) = tokenize_chunks(clip_tokenizer, [("a", 1.0), ("myemb cat", 1.2)], matcher=matcher)
    assert chunk.tokens[:7] == [BOS, 320, 0, 0, 0, CAT, EOS]
    assert chunk.weights[:7] == [1.0, 1.0, 1.2, 1.2, 1.2, 1.2, 1.0]
    assert [(fix.offset, fix.embedding) for fix in chunk.fixes] == [(2, emb)]


def test_longest_embedding_name_wins(clip_tokenizer):
    short, long = embedding("neg", 1), embedding("neg-hands", 2)
    matcher = EmbeddingMatcher(clip_tokenizer, [short, long])
    (chunk,) = tokenize_chunks(clip_tokenizer, [("neg-hands neg", 1.0)], matcher=matcher)
    assert [(fix.offset, fix.embedding.name) for fix in chunk.fixes] == [(1, "neg-hands"), (3, "neg")]
    assert chunk.tokens[:5] == [BOS, 0, 0, 0, EOS]


def test_embedding_never_straddles_a_chunk_boundary(clip_tokenizer):
    emb = embedding("myemb", 3)
    matcher = EmbeddingMatcher(clip_tokenizer, [emb])
    first, second = tokenize_chunks(clip_tokenizer, [(words("cat", 73) + " myemb", 1.0)], matcher=matcher)
    assert first.tokens == [BOS] + [CAT] * 73 + [EOS] * 3
    assert first.fixes == []
    assert second.tokens[:5] == [BOS, 0, 0, 0, EOS]
    assert [fix.offset for fix in second.fixes] == [1]


def test_embedding_that_exactly_fills_the_chunk_stays(clip_tokenizer):
    matcher = EmbeddingMatcher(clip_tokenizer, [embedding("myemb", 3)])
    (chunk,) = tokenize_chunks(clip_tokenizer, [(words("cat", 72) + " myemb", 1.0)], matcher=matcher)
    assert chunk.tokens[-4:] == [0, 0, 0, EOS]
    assert [fix.offset for fix in chunk.fixes] == [73]


def test_backtrack_leaves_the_embedding_fix_behind_like_a1111(clip_tokenizer):
    emb = embedding("myemb", 2)
    matcher = EmbeddingMatcher(clip_tokenizer, [emb])
    text = words("cat", 70) + ", myemb red red dog"  # 70 + comma + 2 vectors + 2 = 75, then dog
    first, second = tokenize_chunks(clip_tokenizer, [(text, 1.0)], matcher=matcher)
    assert first.tokens[70:74] == [CAT, COMMA, EOS, EOS]
    assert [fix.offset for fix in first.fixes] == [72]  # now pointing into padding
    assert second.tokens[:6] == [BOS, 0, 0, RED, RED, DOG]
    assert second.fixes == []


def test_embedding_count_in_token_total(clip_tokenizer):
    matcher = EmbeddingMatcher(clip_tokenizer, [embedding("myemb", 8)])
    _, count = build_chunks(clip_tokenizer, [("a myemb", 1.0)], matcher=matcher)
    assert count == 9
