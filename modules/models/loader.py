"""Loading checkpoints into a ModelBundle, and writing bundles back out (single file or diffusers folder).

One path for every single-file checkpoint: read tensors (only the networks' keys, already in the target
dtype), detect the family, convert keys, derive configs from shapes, build the networks without
allocating weights (meta device) and assign the loaded tensors into them. No second copy of the weights
is made, so peak memory stays near the size of the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from modules import paths
from modules.models import detect, latent_rgb
from modules.models.bundle import Arch, ModelBundle, scaled_linear_alphas_cumprod
from modules.models.convert import Components, checkpoint_to_components, components_to_checkpoint
from modules.models.storage import read_keys, read_state_dict, save_state_dict

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

# diffusers, transformers and accelerate are imported inside the functions that build networks: they
# take seconds to import, and the page comes up before the first model is loaded (webui.py).

# Only these parts of a single-file checkpoint are read; EMA copies and training state are skipped.
NETWORK_PREFIXES = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.", "conditioner.")


def load_checkpoint(
    path: Path | str,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    sha256: str | None = None,
) -> ModelBundle:
    """Load a .safetensors / .ckpt / .pt checkpoint or a diffusers-format folder."""
    path = Path(path)
    if path.is_dir():
        bundle = load_diffusers_folder(path, dtype)
    else:
        arch = detect.detect_arch(read_keys(path))
        state, metadata = read_state_dict(path, dtype, keep=lambda k: k.startswith(NETWORK_PREFIXES))
        hints = detect.metadata_hints(metadata)
        bundle = bundle_from_state_dict(state, arch, hints, dtype)
        del state
        bundle.latent_rgb = latent_rgb.parse(metadata, bundle.latent_channels)
        bundle.prediction_type = _prediction_type(path, bundle, hints)
    bundle.name, bundle.path, bundle.sha256 = _display_name(path), path, sha256
    return _to_device(bundle, torch.device(device))


def _display_name(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def _prediction_type(path: Path, bundle: ModelBundle, hints: dict) -> str:
    from_yaml = detect.prediction_from_yaml(path)
    if from_yaml:
        return from_yaml
    if "prediction_type" in hints:
        return hints["prediction_type"]
    if bundle.arch is Arch.SD2 and bundle.unet_in_channels == 4:
        return "v_prediction" if detect.probe_v_prediction(bundle.unet) else "epsilon"
    return "epsilon"


def bundle_from_state_dict(
    state: dict[str, torch.Tensor], arch: Arch, hints: dict | None = None, dtype: torch.dtype = torch.float32
) -> ModelBundle:
    """Build the networks for an original-layout state dict (already in ``dtype``), weights assigned in."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    hints = hints or {}
    in_channels = state["model.diffusion_model.input_blocks.0.0.weight"].shape[1]
    skeleton = detect.skeleton_name(arch, in_channels, hints.get("prediction_type", "epsilon"))
    parts = checkpoint_to_components(state, arch)
    text_encoders = [
        _build_text_encoder(sd, skeleton, i, hints.get("text_encoders", [{}] * 2)[i])
        for i, sd in enumerate(parts.text_encoders)
    ]
    pooled = getattr(text_encoders[-1].config, "projection_dim", None) if arch is Arch.SDXL else None
    unet_config = detect.derive_unet_config(
        parts.unet, detect.load_skeleton(skeleton, "unet"), hints.get("unet", {}), pooled
    )
    vae_config = detect.derive_vae_config(
        parts.vae, detect.load_skeleton(skeleton, "vae"), hints.get("vae", {})
    )
    return ModelBundle(
        unet=assign_weights(_empty(UNet2DConditionModel.from_config, unet_config), parts.unet, "UNet"),
        vae=assign_weights(_empty(AutoencoderKL.from_config, vae_config), parts.vae, "VAE"),
        text_encoders=text_encoders,
        tokenizers=tokenizers_for(arch),
        arch=arch,
        prediction_type=hints.get("prediction_type", "epsilon"),
        alphas_cumprod=scaled_linear_alphas_cumprod(),
        dtype=dtype,
    )


def _build_text_encoder(state: dict, skeleton: str, index: int, overrides: dict) -> torch.nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    component = "text_encoder" if index == 0 else "text_encoder_2"
    config = detect.derive_text_config(state, detect.load_skeleton(skeleton, component), overrides)
    model_class = CLIPTextModelWithProjection if index == 1 else CLIPTextModel
    model = _empty(model_class, CLIPTextConfig.from_dict(config))
    return assign_weights(model, hf_text_state_for(model, state), f"text encoder {index + 1}")


def _empty(factory: Callable[[Any], torch.nn.Module], config: Any) -> torch.nn.Module:
    from accelerate import init_empty_weights

    # Parameters on the meta device: nothing is allocated or initialised until weights are assigned.
    with init_empty_weights():
        return factory(config)


def assign_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> torch.nn.Module:
    result = model.load_state_dict(state, strict=False, assign=True)
    if result.missing_keys:
        shown = ", ".join(result.missing_keys[:5])
        raise detect.DetectionError(
            f"{what}: {len(result.missing_keys)} weights missing from the file ({shown})"
        )
    return model.eval().requires_grad_(False)


def hf_text_state_for(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers 5's CLIPTextModel has no "text_model." level; the WithProjection class keeps it."""
    if hasattr(model, "text_model"):
        return state
    return {k.removeprefix("text_model."): v for k, v in state.items() if k != "text_projection.weight"}


def hf_text_state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A text encoder's weights in the Hugging Face file layout (with "text_model.")."""
    state = model.state_dict()
    if hasattr(model, "text_model"):
        return dict(state)
    return {"text_model." + k: v for k, v in state.items()}


def tokenizers_for(arch: Arch) -> list[CLIPTokenizer]:
    """SD1: CLIP-L's tokenizer; SD2: OpenCLIP's (pads with "!"); SDXL: both, in text encoder order."""
    from transformers import CLIPTokenizer

    folders = {
        Arch.SD1: [paths.CLIP_L_TOKENIZER],
        Arch.SD2: [paths.OPEN_CLIP_TOKENIZER],
        Arch.SDXL: [paths.CLIP_L_TOKENIZER, paths.OPEN_CLIP_TOKENIZER],
    }[arch]
    return [CLIPTokenizer.from_pretrained(folder) for folder in folders]


def _to_device(bundle: ModelBundle, device: torch.device) -> ModelBundle:
    for module in (bundle.unet, bundle.vae, *bundle.text_encoders):
        module.to(device)
    bundle.device = device
    return bundle


# --- writing ----------------------------------------------------------------------------------------------


def bundle_components(bundle: ModelBundle) -> Components:
    """The bundle's weights in diffusers/HF layout (views of the live parameters, no copies)."""
    return Components(
        unet=dict(bundle.unet.state_dict()),
        vae=dict(bundle.vae.state_dict()),
        text_encoders=[hf_text_state_of(m) for m in bundle.text_encoders],
    )


def config_hints(bundle: ModelBundle) -> dict:
    """What a single file must carry beyond its tensors for this bundle to load back identically."""
    skeleton = detect.skeleton_name(bundle.arch, bundle.unet_in_channels, bundle.prediction_type)
    texts = []
    for i, model in enumerate(bundle.text_encoders):
        reference = detect.load_skeleton(skeleton, "text_encoder" if i == 0 else "text_encoder_2")
        texts.append(detect.hidden_overrides(model.config.to_dict(), reference, detect.TEXT_HIDDEN_FIELDS))
    return {
        "prediction_type": bundle.prediction_type,
        "unet": detect.hidden_overrides(
            bundle.unet.config, detect.load_skeleton(skeleton, "unet"), detect.UNET_HIDDEN_FIELDS
        ),
        "vae": detect.hidden_overrides(
            bundle.vae.config, detect.load_skeleton(skeleton, "vae"), detect.VAE_HIDDEN_FIELDS
        ),
        "text_encoders": texts,
    }


def save_checkpoint(
    bundle: ModelBundle,
    path: Path | str,
    dtype: torch.dtype | None = None,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write the bundle as one original-layout (LDM/SGM) .safetensors or .ckpt file; ``metadata`` adds
    string entries (e.g. ``recommended.encode(...)``) beside the architecture hints."""
    state = components_to_checkpoint(bundle_components(bundle), bundle.arch)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    state = {k: v.detach().cpu() for k, v in state.items()}
    entries = {**(metadata or {}), detect.METADATA_KEY: json.dumps(config_hints(bundle))}
    if bundle.latent_rgb is not None:
        entries[latent_rgb.METADATA_KEY] = bundle.latent_rgb.to_json()
    save_state_dict(state, Path(path), entries)


def save_diffusers(bundle: ModelBundle, folder: Path | str) -> None:
    """Write a diffusers-format folder (model_index.json, one subfolder per network)."""
    folder = Path(folder)
    skeleton = detect.skeleton_name(bundle.arch, bundle.unet_in_channels, bundle.prediction_type)
    bundle.unet.save_pretrained(folder / "unet")
    bundle.vae.save_pretrained(folder / "vae")
    for i, model in enumerate(bundle.text_encoders):
        model.save_pretrained(folder / ("text_encoder" if i == 0 else "text_encoder_2"))
    for i, tokenizer in enumerate(bundle.tokenizers):
        tokenizer.save_pretrained(folder / ("tokenizer" if i == 0 else "tokenizer_2"))
    scheduler = {**detect.load_skeleton(skeleton, "scheduler"), "prediction_type": bundle.prediction_type}
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler, indent=2))
    index = json.loads((paths.CONFIGS / skeleton / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))


# --- diffusers folders ------------------------------------------------------------------------------------


def load_diffusers_folder(folder: Path, dtype: torch.dtype = torch.float32) -> ModelBundle:
    """A diffusers-format pipeline folder; the family is read from its text encoders."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise detect.DetectionError(
            f"{folder.name}: a folder must be a diffusers pipeline (no model_index.json)"
        )
    unet = _load_component(folder / "unet", UNet2DConditionModel.from_config, dtype)
    vae = _load_component(folder / "vae", AutoencoderKL.from_config, dtype)
    text_encoders = [_load_component(folder / "text_encoder", _text_factory(CLIPTextModel), dtype)]
    if (folder / "text_encoder_2").is_dir():
        factory = _text_factory(CLIPTextModelWithProjection)
        text_encoders.append(_load_component(folder / "text_encoder_2", factory, dtype))
    # Published SD2 folders keep 23 of OpenCLIP-H's 24 layers (diffusers bakes in "penultimate"); the
    # conditioning code tells the two apart by layer count, so the encoder is loaded as it is.
    arch = _folder_arch(text_encoders)
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    return ModelBundle(
        unet=unet,
        vae=vae,
        text_encoders=text_encoders,
        tokenizers=tokenizers_for(arch),
        arch=arch,
        prediction_type=scheduler.get("prediction_type", "epsilon"),
        alphas_cumprod=scaled_linear_alphas_cumprod(
            scheduler.get("num_train_timesteps", 1000),
            scheduler.get("beta_start", 0.00085),
            scheduler.get("beta_end", 0.012),
        ),
        dtype=dtype,
    )


def _text_factory(model_class: type) -> Callable[[dict], torch.nn.Module]:
    from transformers import CLIPTextConfig

    return lambda config: model_class(CLIPTextConfig.from_dict(config))


def _load_component(
    folder: Path, factory: Callable[[dict], torch.nn.Module], dtype: torch.dtype
) -> torch.nn.Module:
    """One network of a diffusers folder, read with the same reader (and memory profile) as single files."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    config = json.loads((folder / "config.json").read_text())
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    # Hub folders may hold variants side by side ("model.fp16.safetensors"); prefer the plain files.
    weights = [w for w in weights if len(w.suffixes) == 1] or weights
    state: dict[str, torch.Tensor] = {}
    for file in weights:
        state.update(read_state_dict(file, dtype)[0])
    model = _empty(factory, config)
    if isinstance(model, (CLIPTextModel, CLIPTextModelWithProjection)):
        state = hf_text_state_for(
            model, {k if k.startswith("text_") else "text_model." + k: v for k, v in state.items()}
        )
    return assign_weights(model, state, folder.name)


def _folder_arch(text_encoders: list[torch.nn.Module]) -> Arch:
    if len(text_encoders) == 2:
        return Arch.SDXL
    # OpenCLIP towers use gelu; OpenAI's CLIP-L quick_gelu.
    return Arch.SD2 if text_encoders[0].config.hidden_act == "gelu" else Arch.SD1
