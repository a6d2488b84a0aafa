"""Seeds of a request: -1 means random, image i of the request uses seed + i.

With variation seeds on (strength above 0) every image keeps the seed and image i uses variation seed
subseed + i instead, as A1111 does, so a batch shows variations of one picture.
"""

from __future__ import annotations

import random

# A1111 draws random seeds below 2**32 - 2 so that seed + batch offsets stay in 32 bits for most jobs.
MAX_RANDOM_SEED = 4294967294


def resolve_seed(seed: int | None) -> int:
    if seed is None or seed == -1 or seed == "":
        return random.randrange(MAX_RANDOM_SEED)
    return int(seed)


def all_seeds(seed: int, count: int, subseed_strength: float = 0.0) -> list[int]:
    step = 1 if subseed_strength == 0 else 0
    return [seed + i * step for i in range(count)]


def all_subseeds(subseed: int, subseed_strength: float, seed_list: list[int]) -> list[int]:
    """Variation seeds per image; with strength 0 they are unused and A1111 still records seed + i."""
    return [subseed + i for i in range(len(seed_list))]
