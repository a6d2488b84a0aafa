"""The texts the live token counter measures: the longest of them is what the encoder will see."""

from __future__ import annotations

from modules.prompting.extra_networks import extract_extra_networks
from modules.prompting.multicond import split_and
from modules.prompting.schedule import prompt_schedule


def texts_to_count(text: str, steps: int, is_negative: bool = False) -> list[str]:
    """Every distinct text a prompt conditions on, as A1111's token counter enumerates them.

    Extra-network calls are removed, a positive prompt is split on AND, and each part contributes
    every text of its schedule (first pass, no hires). The counter shows the maximum token count.
    """
    text, _ = extract_extra_networks(text)
    parts = [text] if is_negative else [part.text for part in split_and(text)]
    texts = [scheduled for part in parts for _, scheduled in prompt_schedule(part, steps)]
    return list(dict.fromkeys(texts))
