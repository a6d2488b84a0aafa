"""The model cache: loads checkpoints on demand and keeps at most ``capacity`` of them (least recently used
are freed), as A1111's "Maximum number of checkpoints loaded at the same time" (default 1) does.

One ModelManager is created by the application and passed to whoever needs models (UI and API alike);
there is no module-level "current model". It is thread-safe: loads are serialised by one lock, and a
bundle handed out stays usable by its holder even if it is evicted meanwhile (memory is released when
the last user lets go).

Placement (``LoadOptions``):
- ``device``/``dtype``: cpu + float32 by default, cuda + float16 when a GPU is present;
- ``offload="medvram"``: each network lives on the CPU and moves to the device while it runs (whole
  networks, one at a time, through accelerate's offload hooks); ``"lowvram"``: weights stream to the
  device layer by layer. Both work on any torch device (tested on CPU here; GPU behaviour untested).
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from modules.models import checkpoints as ckpt
from modules.models import vae as vae_selection
from modules.models.bundle import ModelBundle
from modules.models.hashes import HashCache
from modules.models.loader import load_checkpoint

OFFLOAD_MODES = ("none", "medvram", "lowvram")


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    # fp16 halves GPU memory at no visible cost; on CPU fp16/bf16 are 2-3x slower than fp32.
    return torch.float16 if device.type == "cuda" else torch.float32


@dataclass(frozen=True)
class LoadOptions:
    device: torch.device = field(default_factory=default_device)
    dtype: torch.dtype | None = None  # None: default_dtype(device)
    offload: str = "none"
    vae: str = vae_selection.AUTOMATIC
    prefer_near_checkpoint_vae: bool = True
    hash_on_load: bool = True

    @property
    def resolved_dtype(self) -> torch.dtype:
        return self.dtype or default_dtype(self.device)


class LoadFailed(OSError):
    """A checkpoint that could not be loaded; it is not tried again until its file changes."""


class ModelManager:
    """Checkpoint list + LRU cache of loaded bundles."""

    def __init__(
        self,
        ckpt_dirs: list[Path],
        vae_dir: Path,
        hash_cache: HashCache,
        capacity: int = 1,
        options: LoadOptions | None = None,
        loader: Callable[..., ModelBundle] = load_checkpoint,
    ) -> None:
        if options is not None and options.offload not in OFFLOAD_MODES:
            raise ValueError(f"offload must be one of {OFFLOAD_MODES}, not {options.offload!r}")
        self.ckpt_dirs = [Path(d) for d in ckpt_dirs]
        self.vae_dir = Path(vae_dir)
        self.hash_cache = hash_cache
        self.capacity = max(1, capacity)
        self.options = options or LoadOptions()
        self._load = loader
        self._lock = threading.RLock()
        self._loaded: OrderedDict[Path, ModelBundle] = OrderedDict()
        self._checkpoints: list[ckpt.CheckpointInfo] = []
        self._failed: dict[Path, tuple[float, str]] = {}  # path -> (mtime when it failed, why)
        self.refresh()

    # --- the list -------------------------------------------------------------------------------------

    def refresh(self) -> list[ckpt.CheckpointInfo]:
        """Rescan the checkpoint folders (A1111's refresh button)."""
        found = ckpt.scan(self.ckpt_dirs, self.hash_cache)
        with self._lock:
            self._checkpoints = found
        return list(found)

    def checkpoints(self) -> list[ckpt.CheckpointInfo]:
        with self._lock:
            return list(self._checkpoints)

    def titles(self) -> list[str]:
        return [info.title for info in self.checkpoints()]

    def vaes(self) -> list[vae_selection.VaeFile]:
        return vae_selection.list_vaes(self.vae_dir, self.ckpt_dirs[0] if self.ckpt_dirs else None)

    def find(self, query: str) -> ckpt.CheckpointInfo:
        info = ckpt.find(self.checkpoints(), query)
        if info is None:
            raise KeyError(f"checkpoint {query!r} not found; available: {', '.join(self.titles()) or 'none'}")
        return info

    # --- the cache ------------------------------------------------------------------------------------

    def get(self, query: str) -> ModelBundle:
        """The loaded bundle for a title / name / hash, loading (and evicting the oldest) when needed."""
        info = self.find(query)
        with self._lock:
            key = info.path.resolve()
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            mtime = _mtime(key)
            failed = self._failed.get(key)
            if failed is not None and failed[0] == mtime:
                raise LoadFailed(failed[1])  # one attempt per file version: asking again does not retry
            try:
                bundle = self._load_bundle(info)
            except (OSError, ValueError, RuntimeError, KeyError) as error:
                why = f"could not load {info.title}: {error}"
                self._failed[key] = (mtime, why)
                raise LoadFailed(why) from error
            self._failed.pop(key, None)
            self._loaded[key] = bundle
            while len(self._loaded) > self.capacity:
                self._loaded.popitem(last=False)
                _free_memory()
            return bundle

    def loaded(self) -> list[ModelBundle]:
        """Loaded bundles, least recently used first."""
        with self._lock:
            return list(self._loaded.values())

    def unload(self, query: str | None = None) -> None:
        """Free one checkpoint (or all, without a query)."""
        with self._lock:
            if query is None:
                self._loaded.clear()
            else:
                self._loaded.pop(self.find(query).path.resolve(), None)
        _free_memory()

    def reload(self, query: str) -> ModelBundle:
        """Load a checkpoint again from disk (after the file changed, or to drop in-place edits)."""
        self.unload(query)
        return self.get(query)

    def set_vae(self, choice: str) -> None:
        """Change the VAE choice and apply it to every loaded bundle."""
        with self._lock:
            self.options = LoadOptions(**{**self.options.__dict__, "vae": choice})
            for bundle in self._loaded.values():
                self._apply_vae(bundle)

    def _load_bundle(self, info: ckpt.CheckpointInfo) -> ModelBundle:
        options = self.options
        if options.hash_on_load and info.sha256 is None:
            info.sha256 = self.hash_cache.sha256(info.path)
        bundle = self._load(info.path, device="cpu", dtype=options.resolved_dtype, sha256=info.sha256)
        bundle.name = info.model_name
        self._apply_vae(bundle)
        place(bundle, options.device, options.offload)
        return bundle

    def _apply_vae(self, bundle: ModelBundle) -> None:
        choice = vae_selection.resolve_vae(
            self.options.vae, bundle.path, self.vaes(), self.options.prefer_near_checkpoint_vae
        )
        if choice is None and bundle.vae_name is None:
            return  # already the checkpoint's own
        vae_selection.apply_vae(bundle, choice)
        if choice is not None and self.options.hash_on_load:
            bundle.vae_sha256 = self.hash_cache.sha256(choice)


def place(bundle: ModelBundle, device: torch.device, offload: str = "none") -> None:
    """Move a CPU-loaded bundle onto ``device`` whole, or set up medvram/lowvram offloading."""
    modules = [*bundle.text_encoders, bundle.unet, bundle.vae]
    if offload == "none":
        for module in modules:
            module.to(device)
    elif offload == "medvram":
        from accelerate import cpu_offload_with_hook

        hook = None
        for module in modules:
            _, hook = cpu_offload_with_hook(module, device, prev_module_hook=hook)
    else:
        from accelerate import cpu_offload

        for module in modules:
            cpu_offload(module, execution_device=device)
    bundle.device = torch.device(device)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
