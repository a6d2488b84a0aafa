"""The token counter over the prompt boxes ("12/75", "80/150"), counting the parsed prompt.

One ``PromptEncoder`` is kept per loaded model and reused on every keystroke; counting only parses and
tokenizes (no text encoder call), so it stays in milliseconds. It reads the model that is loaded
(``Runtime.loaded_model``) and never loads, switches or patches one: a keystroke must not change a
running job's model (only queued work may).
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

    def encoder(self) -> PromptEncoder | None:
        bundle = self.runtime.loaded_model()
        if bundle is None:
            return None  # nothing loaded yet (the first load is under way)
        with self._lock:
            # Checkpoints differ in tokenizer (SD1 vs SD2/SDXL), so a model switch needs a new encoder.
            if self._encoder is None or self._bundle is not bundle:
                self._encoder = PromptEncoder(
                    bundle,
                    comma_padding_backtrack=int(self.runtime.options.get("comma_padding_backtrack")),
                )
                self._bundle = bundle
            return self._encoder

    def count(self, prompt: str, steps: int, is_negative: bool = False) -> tuple[int, int] | None:
        encoder = self.encoder()
        if encoder is None:
            return None
        return encoder.count_prompt_tokens(prompt or "", max(1, int(steps)), is_negative)

    def html(self, prompt: str, steps: int, is_negative: bool = False) -> str:
        counted = self.count(prompt, steps, is_negative)
        text = f"{counted[0]}/{counted[1]}" if counted is not None else "?/75"
        return f"<span class='token-count'>{text}</span>"
