"""The token counter over the prompt boxes ("12/75", "80/150"), counting the parsed prompt.

One ``PromptEncoder`` is kept per loaded model and reused on every keystroke; counting only parses and
tokenizes (no text encoder call), so it stays in milliseconds.
"""

from __future__ import annotations

import threading

from modules.conditioning import PromptEncoder
from modules.runtime import Runtime


class TokenCounter:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._bundle: object | None = None
        self._encoder: PromptEncoder | None = None

    def encoder(self) -> PromptEncoder:
        bundle = self.runtime.model()
        with self._lock:
            # Checkpoints differ in tokenizer (SD1 vs SD2/SDXL), so a model switch needs a new encoder.
            if self._encoder is None or self._bundle is not bundle:
                self._encoder = PromptEncoder(
                    bundle,
                    comma_padding_backtrack=int(self.runtime.options.get("comma_padding_backtrack")),
                )
                self._bundle = bundle
            return self._encoder

    def count(self, prompt: str, steps: int, is_negative: bool = False) -> tuple[int, int]:
        return self.encoder().count_prompt_tokens(prompt or "", max(1, int(steps)), is_negative)

    def html(self, prompt: str, steps: int, is_negative: bool = False) -> str:
        used, limit = self.count(prompt, steps, is_negative)
        return f"<span class='token-count'>{used}/{limit}</span>"
