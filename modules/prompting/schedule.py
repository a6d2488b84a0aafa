"""Prompt schedules: which text is in force at which sampling step, as A1111 1.x computes them.

A schedule is ``[(end_step, text), ...]``: ``text`` conditions the steps up to and including
``end_step``. End steps are every step at which some edit switches (1 or later), every step when the
prompt alternates, and the step count itself, sorted and unique. The texts keep emphasis markup and
escapes: the attention parser reads them next.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from modules.prompting.parser import parse
from modules.prompting.tree import Alternate, Edit, Node, Piece, Prompt, iter_nodes, source_pieces, walk_text

Schedule = list[tuple[int, str]]


@dataclass(frozen=True)
class StepClock:
    """How an edit's number becomes a step of the pass being scheduled."""

    steps: int  # steps of this pass
    int_offset: int = 0  # absolute numbers count from the first pass's first step
    fraction_offset: float = 0.0  # 1.0..2.0 is the second (hires) pass
    old_scheduling: bool = False

    @classmethod
    def for_pass(
        cls, steps: int, hires_steps: int | None = None, use_old_scheduling: bool = False
    ) -> StepClock:
        # A1111: with "use_old_scheduling" the hires pass is scheduled over the first pass's steps,
        # with no offsets, as before hires-aware scheduling existed.
        if hires_steps is None or use_old_scheduling:
            return cls(steps, old_scheduling=use_old_scheduling)
        return cls(hires_steps, int_offset=steps, fraction_offset=1.0)

    def switch_step(self, number: str) -> int:
        """The last step of an edit's "before" text; below 1 means the edit is "after" from the start."""
        value = float(number)
        if self.old_scheduling:
            # A1111's old rule looks at the value only: below 1 is a fraction, so "1.0" means step 1
            value = value * self.steps if value < 1 else value
        elif "." in number:
            # A1111 tells fractions by the "." alone: "1.0" never switches, "1" switches after step 1
            value = (value - self.fraction_offset) * self.steps
        else:
            value = value - self.int_offset
        if not math.isfinite(value):
            # "1e999" overflows; A1111's int() raises there, we read it as "never" / "from the start"
            return self.steps if value > 0 else -1
        return min(self.steps, int(value))  # int() truncates: 0.29 of 100 steps is step 28


def end_steps(prompt: Prompt, clock: StepClock) -> list[int]:
    """The sorted end steps of the schedule; both sides of every edit and every option count."""
    ends = {clock.steps}
    for node in iter_nodes(prompt.nodes):
        if isinstance(node, Edit):
            step = clock.switch_step(node.number)
            if step >= 1:
                ends.add(step)
        elif isinstance(node, Alternate):
            ends.update(range(1, clock.steps + 1))
    return sorted(ends)


def text_at_step(prompt: Prompt, step: int, clock: StepClock) -> str:
    """The prompt's text while sampling step ``step`` (1-based) runs."""

    def pieces(node: Node) -> Sequence[Piece]:
        if isinstance(node, Edit):
            return (node.before or ()) if step <= clock.switch_step(node.number) else node.after
        if isinstance(node, Alternate):
            return node.options[(step - 1) % len(node.options)]
        return source_pieces(node)

    return walk_text(prompt.nodes, pieces)


def schedule_of(prompt: Prompt, clock: StepClock) -> Schedule:
    return [(step, text_at_step(prompt, step, clock)) for step in end_steps(prompt, clock)]


def prompt_schedule(
    text: str, steps: int, hires_steps: int | None = None, use_old_scheduling: bool = False
) -> Schedule:
    """A1111's get_learned_conditioning_prompt_schedules for one (already AND-split) prompt.

    With ``hires_steps`` this is the hires pass: fractions 1.0..2.0 and absolute steps from
    ``steps + 1`` on fall in it, and end steps count its ``hires_steps`` steps.
    """
    return schedule_of(parse(text), StepClock.for_pass(steps, hires_steps, use_old_scheduling))


def index_at_call(schedule: Sequence[tuple[int, str]], call_index: int) -> int:
    """The schedule entry A1111's denoiser uses at model call ``call_index`` (counted from 0).

    A1111 takes the first entry with ``call_index <= end_step``, so with ``[a:b:1]`` "a" is used for
    calls 0 and 1 although it "ends" after step 1; and when the calls outrun the schedule (samplers
    that call the model more often than the step count) it falls back to the first entry, not the last.
    """
    index = bisect_left(schedule, call_index, key=lambda entry: entry[0])
    return index if index < len(schedule) else 0


def text_at_call(schedule: Sequence[tuple[int, str]], call_index: int) -> str:
    """The text in force at model call ``call_index``; see index_at_call for A1111's quirks."""
    return schedule[index_at_call(schedule, call_index)][1]
