"""What the read-only listing endpoints return: models, VAEs, LoRAs, embeddings, styles, samplers,
schedule types, upscalers, extensions, command-line flags and memory, in A1111 1.10's shapes.

Each function takes the runtime and returns plain JSON-ready data; nothing here is cached, so a
"refresh" is simply the next call (except checkpoints and embeddings, which their owners cache).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from modules.processing import hires, postprocess
from modules.sampling.registry import SamplerInfo

if TYPE_CHECKING:
    from modules.runtime import Runtime

UPSCALER_SCALE = 4  # A1111 reports its built-in upscalers with scale 4
# A1111's schedule types whose functions read the model itself (its need_inner_model flag).
_INNER_MODEL_SCHEDULES = {"uniform", "sgm_uniform", "simple", "normal", "ddim", "beta"}


def samplers(runtime: Runtime) -> list[dict[str, Any]]:
    return [
        {"name": info.name, "aliases": list(info.aliases), "options": sampler_options(info)}
        for info in runtime.sampling_registry.samplers.values()
    ]


def sampler_options(info: SamplerInfo) -> dict[str, Any]:
    """The option flags A1111 lists per sampler (its schedule only where it is not Uniform)."""
    options: dict[str, Any] = {}
    if info.default_schedule != "uniform":
        options["scheduler"] = info.default_schedule
    flags = ("second_order", "brownian_noise", "uses_ensd", "discard_next_to_last_sigma")
    options.update({flag: True for flag in flags if getattr(info, flag)})
    options.update(info.options)
    return options


def schedulers(runtime: Runtime) -> list[dict[str, Any]]:
    return [
        {
            "name": info.name,
            "label": info.label,
            "aliases": list(info.aliases) or None,
            "default_rho": info.default_rho if info.default_rho is not None else -1,
            "need_inner_model": info.name in _INNER_MODEL_SCHEDULES,
        }
        for info in runtime.sampling_registry.visible_schedule_types()
    ]


def upscalers() -> list[dict[str, Any]]:
    return [
        {"name": name, "model_name": None, "model_path": None, "model_url": None, "scale": UPSCALER_SCALE}
        for name in ["None", *postprocess.upscaler_names()]  # "None" means "do not upscale", as A1111
    ]


def latent_upscale_modes() -> list[dict[str, str]]:
    return [{"name": name} for name in hires.LATENT_UPSCALERS]


def sd_models(runtime: Runtime) -> list[dict[str, Any]]:
    return [
        {
            "title": info.title,
            "model_name": info.model_name,
            "hash": info.short_hash,
            "sha256": info.sha256,
            "filename": str(info.path),
            "config": _config_near(info.path),
        }
        for info in runtime.models.checkpoints()
    ]


def _config_near(checkpoint: Path) -> str | None:
    # A1111 uses a same-named .yaml beside the checkpoint as its model config.
    config = checkpoint.with_suffix(".yaml")
    return str(config) if config.is_file() else None


def sd_vaes(runtime: Runtime) -> list[dict[str, str]]:
    return [{"model_name": vae.name, "filename": str(vae.path)} for vae in runtime.models.vaes()]


def current_checkpoint_title(runtime: Runtime) -> str | None:
    """The title of the most recently used loaded checkpoint, if any is loaded."""
    loaded = runtime.models.loaded()
    if not loaded or loaded[-1].path is None:
        return None
    wanted = Path(loaded[-1].path).resolve()
    for info in runtime.models.checkpoints():
        if info.path.resolve() == wanted:
            return info.title
    return None


def loras(runtime: Runtime) -> list[dict[str, Any]]:
    """[{name, alias, path, metadata}] from the LoRA extension (none when it is disabled)."""
    network = runtime.extensions.extra_networks.get("lora")
    return network.extra["items"](runtime.paths) if network is not None else []


def hypernetworks(runtime: Runtime) -> list[dict[str, Any]]:
    """[{name, path}] from the hypernetwork extension (none when it is disabled), as A1111 lists them."""
    network = runtime.extensions.extra_networks.get("hypernet")
    return network.extra["items"](runtime.paths) if network is not None else []


def refresh_loras(runtime: Runtime) -> None:
    network = runtime.extensions.extra_networks.get("lora")
    if network is not None:
        network.extra["refresh"](runtime.paths)


def embeddings(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """Embeddings that fit the loaded model's text encoder ("loaded") and the others ("skipped")."""
    width = _text_width(runtime)
    result: dict[str, dict[str, Any]] = {"loaded": {}, "skipped": {}}
    for name, embedding in runtime.embeddings.embeddings.items():
        fits = width is None or embedding.dim == width
        result["loaded" if fits else "skipped"][name] = {
            "step": embedding.step,
            "sd_checkpoint": None,
            "sd_checkpoint_name": None,
            "shape": embedding.dim,
            "vectors": embedding.vector_count,
        }
    return result


def _text_width(runtime: Runtime) -> int | None:
    loaded = runtime.models.loaded()
    if not loaded:
        return None
    return sum(int(encoder.config.hidden_size) for encoder in loaded[-1].text_encoders)


def prompt_styles(runtime: Runtime) -> list[dict[str, str]]:
    return [
        {"name": style.name, "prompt": style.prompt, "negative_prompt": style.negative_prompt}
        for style in list(runtime.styles.styles.values())
    ]


def scripts(runtime: Runtime) -> dict[str, list[str]]:
    """Lower-cased titles of the scripts each tab shows, always-on ones included (A1111's names)."""
    return {
        mode: [s.title().lower() for s in _shown_scripts(runtime, mode == "img2img")]
        for mode in ("txt2img", "img2img")
    }


def script_info(runtime: Runtime) -> list[dict[str, Any]]:
    """Each script per tab; its arguments are not described (they exist only as UI components here)."""
    result = []
    for is_img2img in (False, True):
        alwayson = runtime.scripts.alwayson(is_img2img)
        for script in _shown_scripts(runtime, is_img2img):
            result.append(
                {
                    "name": script.title().lower(),
                    "is_alwayson": script in alwayson,
                    "is_img2img": is_img2img,
                    "args": [],
                }
            )
    return result


def _shown_scripts(runtime: Runtime, is_img2img: bool) -> list[Any]:
    shown = runtime.scripts.alwayson(is_img2img) + runtime.scripts.selectable(is_img2img)
    return [script for script in runtime.extensions.scripts if script in shown]


def extensions(runtime: Runtime) -> list[dict[str, Any]]:
    """Installed git clones in load order, enabled as the user and the command-line flags chose.

    As in A1111, only extensions with a git remote are listed (built-ins and plain folders have none),
    so that every field has the string or integer type A1111's schema gives it."""
    from modules.extensions import loader, manage, startup

    args = runtime.args
    found = loader.discover(
        startup.disabled_extensions(runtime.paths.config_file),
        disable_all=args.disable_all_extensions,
        builtin_only=args.disable_extra_extensions,
    )
    result = []
    for extension in found:
        info = manage.describe(extension)
        if extension.builtin or info.remote is None:
            continue
        result.append(
            {
                "name": info.name,
                "remote": info.remote,
                "branch": info.branch or "",
                "commit_hash": info.version or "",
                "version": info.version or "",
                "commit_date": info.commit_date or 0,
                "enabled": extension.enabled,
            }
        )
    return result


SECRET_FLAG = re.compile(r"auth|password|token|secret|key", re.IGNORECASE)


def cmd_flags(runtime: Runtime) -> dict[str, Any]:
    """The start-up flags, as A1111 lists them; credentials (any flag naming auth, a password, token or
    key) are given as "<redacted>" when set: the key stays, so clients reading the list still find it."""
    flags = {}
    for key, value in vars(runtime.args).items():
        if key == "argv":
            continue  # the raw command line (kept for workers) holds the credentials in clear
        if SECRET_FLAG.search(key) and isinstance(value, str) and value:
            value = "<redacted>"
        flags[key] = str(value) if isinstance(value, Path) else value
    return flags


def memory() -> dict[str, dict[str, Any]]:
    """A1111's memory report: "used" is this process's resident size, "total" the machine's RAM."""
    return {"ram": _ram(), "cuda": _cuda()}


def _ram() -> dict[str, Any]:
    try:
        import psutil

        used = psutil.Process(os.getpid()).memory_info().rss
        total = psutil.virtual_memory().total
    except (ImportError, OSError) as error:
        return {"error": str(error)}
    return {"free": total - used, "used": used, "total": total}


def _cuda() -> dict[str, Any]:
    if not torch.cuda.is_available():
        return {"error": "unavailable"}
    free, total = torch.cuda.mem_get_info()
    stats = torch.cuda.memory_stats()

    def pair(name: str) -> dict[str, int]:
        return {"current": stats.get(f"{name}.all.current", 0), "peak": stats.get(f"{name}.all.peak", 0)}

    return {
        "system": {"free": free, "used": total - free, "total": total},
        "active": pair("active_bytes"),
        "allocated": pair("allocated_bytes"),
        "reserved": pair("reserved_bytes"),
        "inactive": pair("inactive_split_bytes"),
        "events": {"retries": stats.get("num_alloc_retries", 0), "oom": stats.get("num_ooms", 0)},
    }
