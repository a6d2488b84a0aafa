"""The token counter over the prompt boxes ("12/75", "80/150"): it counts what will be encoded.

As A1111's counter: the selected styles are merged in ("Count tokens of enabled styles", on by
default), ``#`` comments are stripped ("Enable comments"), extra-network tags removed, a positive
prompt split on AND, every scheduled text counted and the longest shown; an embedding counts its
vectors, and with emphasis "None" brackets count as text. It only reads: it uses the model already
loaded (never loads or switches one) and shows "?/?" while none is, and one ``PromptEncoder`` per
model and settings is kept and reused on every keystroke; counting only parses and tokenizes (no
text encoder call), so it stays in milliseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence

from modules.conditioning import PromptEncoder
from modules.processing.pipeline import styled
from modules.runtime import Runtime


class TokenCounter:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._key: Hashable = None
        self._encoder: PromptEncoder | None = None

    def encoder(self) -> PromptEncoder | None:
        """The counting encoder for the loaded model and the current settings; None with no model."""
        bundle = self.runtime.loaded_model()
        if bundle is None:
            return None
        options = self.runtime.options
        embeddings = getattr(self.runtime, "embeddings", None)
        key = (
            id(bundle),
            options.get("emphasis"),
            int(options.get("comma_padding_backtrack")),
            tuple(map(id, embeddings.embeddings.values())) if embeddings is not None else (),
        )
        with self._lock:
            # Checkpoints differ in tokenizer (SD1 vs SD2/SDXL) and in which embeddings fit them.
            if self._encoder is None or self._key != key:
                self._encoder = PromptEncoder(
                    bundle,
                    emphasis=key[1],
                    embeddings=embeddings,
                    comma_padding_backtrack=key[2],
                )
                self._key = key
            return self._encoder

    def text_to_count(self, prompt: str, styles: Sequence[str] = (), is_negative: bool = False) -> str:
        """The prompt as the job will see it: styles merged in (if counted), comments stripped."""
        options = self.runtime.options
        counted_styles = list(styles) if options.get("include_styles_into_token_counters") else []
        return styled(self.runtime, prompt or "", counted_styles, is_negative, settings=options)

    def count(
        self, prompt: str, steps: int, is_negative: bool = False, styles: Sequence[str] = ()
    ) -> tuple[int, int] | None:
        encoder = self.encoder()
        if encoder is None:
            return None
        text = self.text_to_count(prompt, styles, is_negative)
        return encoder.count_prompt_tokens(text, max(1, int(steps)), is_negative)

    def html(self, prompt: str, steps: int, is_negative: bool = False, styles: Sequence[str] = ()) -> str:
        counted = self.count(prompt, steps, is_negative, styles)
        used, limit = counted if counted is not None else ("?", "?")
        return f"<span class='token-count'>{used}/{limit}</span>"
