"""Prompts -> per-step conditioning schedules for the denoiser, encoding each distinct text once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modules import prompting
from modules.sampling.denoiser import ComposableConditioning, ScheduledConditioning


class ConditioningBuilder:
    """Encodes the texts of a job's prompt schedules, calling the text encoder once per distinct text."""

    def __init__(
        self, encoder: Any, steps: int, hires_steps: int | None = None, use_old_scheduling: bool = False
    ):
        self.encoder = encoder
        self.steps = steps
        self.hires_steps = hires_steps
        self.use_old_scheduling = use_old_scheduling
        self._cache: dict[str, Any] = {}

    def _encode(self, text: str) -> Any:
        if text not in self._cache:
            self._cache[text] = self.encoder.encode(text)
        return self._cache[text]

    def scheduled(self, text: str) -> ScheduledConditioning:
        schedule = prompting.prompt_schedule(
            text, self.steps, hires_steps=self.hires_steps, use_old_scheduling=self.use_old_scheduling
        )
        return ScheduledConditioning(tuple((end, self._encode(t)) for end, t in schedule))

    def positive(self, prompt: str) -> ComposableConditioning:
        """A positive prompt: split on AND, each sub-prompt scheduled, with its weight."""
        parts = prompting.split_and(prompt)
        return ComposableConditioning(tuple((self.scheduled(p.text), p.weight) for p in parts))

    def negative(self, prompt: str) -> ScheduledConditioning:
        """A negative prompt: scheduled and emphasised, but never split on AND (as A1111 does)."""
        return self.scheduled(prompt)

    def batch(
        self, prompts: Sequence[str], negative_prompts: Sequence[str]
    ) -> tuple[list[ComposableConditioning], list[ScheduledConditioning]]:
        return [self.positive(p) for p in prompts], [self.negative(n) for n in negative_prompts]

    @property
    def encoded_texts(self) -> int:
        return len(self._cache)
