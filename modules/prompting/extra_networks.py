"""Extra-network calls in a prompt, ``<lora:film:0.7>``: taken out of the text as data.

The pattern is A1111's: a word, a colon, then everything up to the next ">", split on ":" into the
arguments (``<lora:name:0.8:0.5>`` gives text-encoder and UNet weights for LoRA). What the
arguments mean is up to each network type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CALL = re.compile(r"<(\w+):([^>]+)>")


@dataclass(frozen=True)
class ExtraNetworkCall:
    """One ``<name:arg1:arg2...>``, e.g. name "lora", args ("film", "0.7")."""

    name: str
    args: tuple[str, ...]


def extract_extra_networks(text: str) -> tuple[str, list[ExtraNetworkCall]]:
    """The text with every call removed (nothing put in its place), and the calls in order."""
    calls: list[ExtraNetworkCall] = []

    def take(match: re.Match[str]) -> str:
        calls.append(ExtraNetworkCall(match.group(1), tuple(match.group(2).split(":"))))
        return ""

    return _CALL.sub(take, text), calls
