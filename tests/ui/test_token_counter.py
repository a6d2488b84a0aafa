"""The token counter counts what will be encoded: styles, comments, embeddings' vectors, emphasis "None";
and it only reads: no model is loaded for it."""

from __future__ import annotations

import pytest
import torch

from modules import cmd_args
from modules.conditioning import Embedding
from modules.conditioning.chunks import tokenize
from modules.conditioning.text_model import token_embedding_width
from modules.runtime import Runtime
from modules.styles import PromptStyle
from modules.ui.tokens import TokenCounter


@pytest.fixture
def runtime(tmp_path, tiny_bundle):
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu", "--no-bundled-models"]))
    rt.model_loader = lambda: tiny_bundle
    rt.styles.add(PromptStyle("Grain", "film grain # grainy", "blurry"))
    width = token_embedding_width(tiny_bundle.text_encoders[0])
    rt.embeddings.add(Embedding(name="threevec", vectors=torch.zeros(3, width)))
    return rt


def tokens_of(runtime, text: str) -> int:
    return len(tokenize(runtime.model().tokenizers[0], [text])[0])


# (prompt, styles, is negative, settings) -> tokens counted; the expected counts follow A1111's rules:
# styles merged as at generation, "#" to the end of the line dropped, tags and AND removed, the
# longest scheduled text counted, an embedding's name counted as its vectors.
COUNTS = [
    ("red circle", [], False, {}, 2),
    ("red circle", ["Grain"], False, {}, 5),  # "red circle, film grain": the style's comment dropped
    ("red circle", ["Grain"], False, {"include_styles_into_token_counters": False}, 2),
    ("dark", ["Grain"], True, {}, 3),  # "dark, blurry"
    ("red circle # blue square on a white background", [], False, {}, 2),
    ("red # blue", [], False, {"enable_prompt_comments": False}, 3),  # "#" is a token of its own
    ("<lora:a:1> red # <lora:b:1> long long long", [], False, {}, 1),
    ("[red:blue green yellow:2] circle", [], False, {}, 4),
    ("red AND blue green", [], False, {}, 2),
    ("threevec red", [], False, {}, 4),  # 3 vectors + 1 token, not the name's tokens
    ("(red:1.3) circle", [], False, {}, 2),
]


@pytest.mark.parametrize(("prompt", "styles", "negative", "settings", "expected"), COUNTS)
def test_counter_counts_what_will_be_encoded(runtime, prompt, styles, negative, settings, expected):
    for key, value in settings.items():
        runtime.options.set(key, value)
    assert TokenCounter(runtime).count(prompt, 20, negative, styles) == (expected, 75)


def test_emphasis_none_counts_brackets_as_text(runtime):
    counter = TokenCounter(runtime)
    assert counter.count("(red:1.3) circle", 20) == (2, 75)
    runtime.options.set("emphasis", "None")
    assert counter.count("(red:1.3) circle", 20) == (tokens_of(runtime, "(red:1.3) circle"), 75)
    assert tokens_of(runtime, "(red:1.3) circle") > 2


def test_counter_never_loads_a_model(tmp_path):
    runtime = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu", "--no-bundled-models"]))
    counter = TokenCounter(runtime)
    assert counter.html("red circle", 20) == "<span class='token-count'>?/?</span>"
    assert runtime.models.loaded() == []
