"""The model cache: loads checkpoints on demand and keeps at most ``capacity`` of them (least recently used
are freed), as A1111's "Maximum number of checkpoints loaded at the same time" (default 1) does.

One ModelManager is created by the application and passed to whoever needs models (UI and API alike);
there is no module-level "current model". It is thread-safe: loads are serialised by one lock, and a
bundle handed out stays usable by its holder even if it is evicted meanwhile (memory is released when
the last user lets go).

Placement (``LoadOptions``, see ``place``):
- ``device``/``dtype``: cpu + float32 by default, cuda + float16 when a GPU is present; ``vae_dtype``
  (--no-half-vae) and ``unet_compute_dtype`` (--upcast-sampling: half-size weights, float32 maths);
- ``attention``: PyTorch's scaled-dot-product attention, or xformers' when asked for;
- ``offload="medvram"``: each network lives on the CPU and moves to the device while it runs (whole
  networks, one at a time); ``"lowvram"``: the same block by block (see ``offload``). Tested on the
  CPU with a recording stand-in (tests/models/test_models_placement.py); their speed and memory on a
  GPU are measured by bench/gpu_check.py.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from modules import heap
from modules.models import checkpoints as ckpt
from modules.models import vae as vae_selection
from modules.models.bundle import ModelBundle
from modules.models.hashes import HashCache
from modules.models.loader import load_checkpoint
from modules.models.offload import offload as offload_parts

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
    vae_dtype: torch.dtype | None = None  # None: the weights' dtype
    unet_compute_dtype: torch.dtype | None = None  # None: the weights' dtype
    attention: str = "sdpa"  # or "xformers"
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
        vae_dtype = options.vae_dtype or options.resolved_dtype
        if vae_dtype != bundle.vae.dtype:
            # Read the VAE again at its own precision rather than widening already-rounded weights.
            bundle.vae.to(vae_dtype)
            if bundle.path is not None:
                vae_selection.apply_vae(bundle, None)
        self._apply_vae(bundle)
        place(bundle, options.device, options.offload, options.unet_compute_dtype, options.attention)
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


def place(
    bundle: ModelBundle,
    device: torch.device,
    offload: str = "none",
    unet_compute_dtype: torch.dtype | None = None,
    attention: str = "sdpa",
) -> None:
    """Move a CPU-loaded bundle onto ``device`` whole, or set up medvram/lowvram offloading; set the
    UNet's compute dtype and the attention kernel."""
    set_attention(bundle, attention)
    if unet_compute_dtype is not None and unet_compute_dtype != bundle.dtype:
        upcast_unet(bundle, unet_compute_dtype)
    if offload == "none":
        for module in (*bundle.text_encoders, bundle.unet, bundle.vae):
            module.to(device)
    else:
        bundle.offload = offload_parts(bundle, torch.device(device), offload)
    bundle.device = torch.device(device)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def upcast_unet(bundle: ModelBundle, compute_dtype: torch.dtype) -> None:
    """--upcast-sampling: the UNet's weights stay in their half type and each layer computes in
    ``compute_dtype`` (diffusers' layerwise casting upcasts a layer's weights just before it runs)."""
    storage = bundle.dtype
    # Layers diffusers keeps out of the casting (norms, projections) must hold compute-dtype weights.
    bundle.unet.to(compute_dtype)
    bundle.unet.enable_layerwise_casting(storage_dtype=storage, compute_dtype=compute_dtype)
    bundle.compute_dtype = compute_dtype


def set_attention(bundle: ModelBundle, attention: str) -> None:
    """PyTorch's scaled-dot-product attention (flash/memory-efficient kernels where the GPU has them),
    or xformers' memory-efficient attention."""
    if attention == "xformers":
        for module in (bundle.unet, bundle.vae):
            module.enable_xformers_memory_efficient_attention()
        return
    if attention != "sdpa":
        raise ValueError(f"attention must be 'sdpa' or 'xformers', not {attention!r}")
    from diffusers.models.attention_processor import AttnProcessor2_0

    for module in (bundle.unet, bundle.vae):
        module.set_attn_processor(AttnProcessor2_0())


def _free_memory() -> None:
    heap.settle()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
