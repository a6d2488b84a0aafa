"""Where the project's own files live (assets, configs, grammar) and the default data layout.

Only fixed locations of files that ship with the project belong here; user-chosen folders
(models, outputs, data dir) travel in an explicit ``Paths`` object built from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
CONFIGS = ROOT / "configs"
GRAMMAR = ROOT / "grammar"
TOKENIZERS = ASSETS / "tokenizers"
CLIP_L_TOKENIZER = TOKENIZERS / "clip-vit-large-patch14"
OPEN_CLIP_TOKENIZER = TOKENIZERS / "open-clip-vit-h-14"
BUNDLED_MODELS = ASSETS / "models"  # checkpoints that ship with the project (the demo model)
BUNDLED_EMBEDDINGS = ASSETS / "embeddings"


@dataclass(frozen=True)
class Paths:
    """The user's folders, in the layout users of other Stable Diffusion web UIs already have."""

    data_dir: Path
    ckpt_dir: Path
    vae_dir: Path
    lora_dir: Path
    embeddings_dir: Path
    outputs_dir: Path

    @classmethod
    def from_data_dir(cls, data_dir: Path, **overrides: Path | None) -> Paths:
        data_dir = Path(data_dir)
        defaults = {
            "ckpt_dir": data_dir / "models" / "Stable-diffusion",
            "vae_dir": data_dir / "models" / "VAE",
            "lora_dir": data_dir / "models" / "Lora",
            "embeddings_dir": data_dir / "embeddings",
            "outputs_dir": data_dir / "outputs",
        }
        chosen = {k: Path(v) if v is not None else defaults[k] for k, v in overrides.items() if k in defaults}
        return cls(data_dir=data_dir, **{**defaults, **chosen})

    @property
    def config_file(self) -> Path:
        return self.data_dir / "config.json"

    @property
    def ui_config_file(self) -> Path:
        return self.data_dir / "ui-config.json"

    @property
    def styles_file(self) -> Path:
        return self.data_dir / "styles.csv"

    @property
    def hypernetwork_dir(self) -> Path:
        """Hypernetwork files (A1111's models/hypernetworks)."""
        return self.data_dir / "models" / "hypernetworks"

    @property
    def clip_dir(self) -> Path:
        """Interrogation's CLIP models (A1111's models/CLIP)."""
        return self.data_dir / "models" / "CLIP"

    @property
    def blip_dir(self) -> Path:
        return self.data_dir / "models" / "BLIP"

    @property
    def interrogate_lists_dir(self) -> Path:
        """The user's phrase lists for interrogation (A1111's "interrogate" folder)."""
        return self.data_dir / "interrogate"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"
