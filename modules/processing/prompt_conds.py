"""Prompts -> per-step conditioning schedules for the denoiser.

Each prompt (or AND part) is scheduled, then its schedule's texts are encoded together as A1111 does
(emphasis normalised over the group, shorter texts padded); the encoder encodes each distinct text once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modules import prompting
from modules.sampling.denoiser import ComposableConditioning, ScheduledConditioning


class ConditioningBuilder:
    """Builds the denoiser's conditioning for a job's prompts; identical prompts are built once."""

    def __init__(
        self, encoder: Any, steps: int, hires_steps: int | None = None, use_old_scheduling: bool = False
    ):
        self.encoder = encoder
        self.steps = steps
        self.hires_steps = hires_steps
        self.use_old_scheduling = use_old_scheduling
        # A1111 writes "Old prompt editing timelines" only when the old rule changed a schedule.
        self.old_scheduling_changed = False
        self._built: dict[tuple[str, bool], ScheduledConditioning] = {}

    def scheduled(self, text: str, negative: bool = False) -> ScheduledConditioning:
        key = (text, negative)
        if key not in self._built:
            schedule = prompting.prompt_schedule(
                text, self.steps, hires_steps=self.hires_steps, use_old_scheduling=self.use_old_scheduling
            )
            if self.use_old_scheduling and not self.old_scheduling_changed:
                current = prompting.prompt_schedule(text, self.steps, hires_steps=self.hires_steps)
                self.old_scheduling_changed = current != schedule
            self._built[key] = ScheduledConditioning(tuple(self.encoder.encode_schedule(schedule, negative)))
        return self._built[key]

    def clear_cache(self) -> None:
        """Forget built conditioning: an extra network changed the text encoder's weights mid-job."""
        self._built.clear()
        self.encoder.clear_cache()

    def positive(self, prompt: str) -> ComposableConditioning:
        """A positive prompt: split on AND, each sub-prompt scheduled, with its weight."""
        parts = prompting.split_and(prompt)
        return ComposableConditioning(tuple((self.scheduled(p.text), p.weight) for p in parts))

    def negative(self, prompt: str) -> ScheduledConditioning:
        """A negative prompt: scheduled and emphasised, but never split on AND (as A1111 does)."""
        return self.scheduled(prompt, negative=True)

    def batch(
        self, prompts: Sequence[str], negative_prompts: Sequence[str]
    ) -> tuple[list[ComposableConditioning], list[ScheduledConditioning]]:
        return [self.positive(p) for p in prompts], [self.negative(n) for n in negative_prompts]
