"""The CLIP tokenizer files that ship in assets/ give the well-known token ids."""

from __future__ import annotations

import json

import pytest
from transformers import CLIPTokenizer

from modules import paths


@pytest.fixture(scope="module")
def clip_l():
    return CLIPTokenizer.from_pretrained(paths.CLIP_L_TOKENIZER)


def test_vocabulary_size_and_special_tokens():
    vocab = json.loads((paths.CLIP_L_TOKENIZER / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == 49408
    assert vocab["<|startoftext|>"] == 49406
    assert vocab["<|endoftext|>"] == 49407
    assert vocab["!"] == 0


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("a photo of a cat", [49406, 320, 1125, 539, 320, 2368, 49407]),
        ("A Photo of a CAT", [49406, 320, 1125, 539, 320, 2368, 49407]),
        ("a red circle, blue", [49406, 320, 736, 7117, 267, 1746, 49407]),
        ("", [49406, 49407]),
    ],
)
def test_known_token_ids(clip_l, text, ids):
    assert clip_l(text).input_ids == ids


def test_pad_tokens_differ_between_clip_and_open_clip(clip_l):
    open_clip = CLIPTokenizer.from_pretrained(paths.OPEN_CLIP_TOKENIZER)
    assert clip_l.pad_token_id == 49407
    assert open_clip.pad_token_id == 0
    assert open_clip("a photo of a cat").input_ids == clip_l("a photo of a cat").input_ids


def test_build_script_reproduces_shipped_files(tmp_path):
    """The committed files are exactly what scripts/build_tokenizer.py makes from the merges list."""
    from scripts import build_tokenizer

    merges = (paths.CLIP_L_TOKENIZER / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    vocab = build_tokenizer.build_vocab(merges)
    shipped = json.loads((paths.CLIP_L_TOKENIZER / "vocab.json").read_text(encoding="utf-8"))
    assert vocab == shipped
