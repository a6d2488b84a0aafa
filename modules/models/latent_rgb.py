"""Linear maps from latents to RGB, for the cheap live preview ("Approx cheap"): per model family, or a
model's own, carried in its .safetensors metadata.

A map is a 4x3 matrix and an RGB bias: ``rgb = latent . factors + bias``, in [-1, 1], per latent cell
(one eighth of the image per side). The family maps are the published ones fitted on real SD images
(no bias); a model trained with a VAE of its own (the bundled demo model) has its latent space and
scaling of its own, so it carries a map fitted on that VAE (``modules.processing.preview.fit``) under
the metadata key ``sdwebui_latent_rgb``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from modules.models.bundle import Arch

METADATA_KEY = "sdwebui_latent_rgb"


@dataclass(frozen=True)
class LatentRgb:
    factors: tuple[tuple[float, float, float], ...]  # one row per latent channel
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def to_json(self) -> str:
        return json.dumps({"factors": [list(row) for row in self.factors], "bias": list(self.bias)})


_SD = LatentRgb(
    (
        (0.298, 0.207, 0.208),
        (0.187, 0.286, 0.173),
        (-0.158, 0.189, 0.264),
        (-0.184, -0.271, -0.473),
    )
)
FAMILY = {
    Arch.SD1: _SD,
    Arch.SD2: _SD,
    Arch.SDXL: LatentRgb(
        (
            (0.3651, 0.4232, 0.4341),
            (-0.2533, -0.0042, 0.1068),
            (0.1076, 0.1111, -0.0362),
            (-0.3165, -0.2492, -0.2188),
        )
    ),
}


def _triple(values: object) -> tuple[float, float, float]:
    if not isinstance(values, list) or len(values) != 3:
        raise ValueError("expected three numbers")
    out = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in out):
        raise ValueError("not finite")
    return out  # type: ignore[return-value]


def parse(metadata: Mapping[str, str], channels: int = 4) -> LatentRgb | None:
    """A model's own map from its metadata; None when absent or malformed (the family map is used)."""
    try:
        value = json.loads(metadata.get(METADATA_KEY, "null"))
        if value is None:
            return None
        rows = value["factors"]
        if not isinstance(rows, list) or len(rows) != channels:
            return None
        return LatentRgb(tuple(_triple(row) for row in rows), _triple(value.get("bias", [0, 0, 0])))
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
