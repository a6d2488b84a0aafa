"""What ``<lora:...>`` asks for: a name, a text-encoder weight, a UNet weight and an optional rank limit.

Accepted forms, as A1111 reads them:
    <lora:name>                 both weights 1
    <lora:name:0.8>             both 0.8
    <lora:name:0.8:0.5>         text encoder 0.8, UNet 0.5
    <lora:name:0.8:0.5:16>      ... and only the first 16 ranks ("dyn")
    <lora:name:1:unet=0.5:te=0.2:dyn=16>   named arguments override positional ones
    <lora:a=b=c:1>              the network "a=b=c" (see parse_args)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LoraRequest:
    name: str
    te_multiplier: float = 1.0
    unet_multiplier: float = 1.0
    dyn_dim: int | None = None


def parse_args(args: Sequence[str]) -> LoraRequest:
    """One call's arguments (``("name", "0.8")``); raises ValueError for a missing name or a bad number.

    A1111's reading, kept verbatim: an argument is named only when "=" splits it into exactly two
    parts (``te=0.5``); ``a=b=c`` has three and stays positional, so ``<lora:a=b=c:1>`` names the
    network ``a=b=c``. Nothing is stripped: ``<lora: sp :1>`` looks for a network named " sp ", which
    the file list does not have, so the user is told "Networks not found" exactly as A1111 does.
    """
    positional: list[str] = []
    named: dict[str, str] = {}
    for item in args:
        parts = item.split("=", 2)
        if len(parts) == 2:
            named[parts[0]] = parts[1]
        else:
            positional.append(item)
    if not positional or not positional[0]:
        raise ValueError("a <lora:...> tag needs a name")
    te = float(positional[1]) if len(positional) > 1 else 1.0
    te = float(named.get("te", te))
    # The UNet weight defaults to the text-encoder weight, so <lora:x:0.5> halves both.
    unet = float(positional[2]) if len(positional) > 2 else te
    unet = float(named.get("unet", unet))
    dyn = int(positional[3]) if len(positional) > 3 else None
    dyn = int(named["dyn"]) if "dyn" in named else dyn
    return LoraRequest(positional[0], te, unet, dyn)
