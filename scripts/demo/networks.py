"""The demo model's networks: SD1-family configs at toy width, text encoding with gradients, and LoRA.

The configs keep every field the checkpoint loader cannot read from tensor shapes at the SD1 skeleton's
value or in the loader's metadata hint lists, so the saved file loads back into identical networks.
"""

from __future__ import annotations

import json

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel
from transformers.masking_utils import create_causal_mask

from modules import paths
from modules.conditioning.emphasis import ORIGINAL, apply_emphasis
from modules.models.bundle import Arch, ModelBundle, scaled_linear_alphas_cumprod
from modules.models.loader import tokenizers_for
from modules.models.tiny import tiny_vae_config
from modules.prompting import parse_attention

TEXT_WIDTH = 64
MAX_TOKENS = 77


def unet_config() -> dict:
    """About 4 M parameters on 8x8x4 latents: two levels (8x8, 4x4), cross-attention at both."""
    return {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "layers_per_block": 1,
        "block_out_channels": [64, 128],
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "cross_attention_dim": TEXT_WIDTH,
        "attention_head_dim": 8,  # SD1's misnomer: a head count (8 heads of 8 and 16 channels)
        "norm_num_groups": 32,
    }


def vae_config(scaling_factor: float = 1.0) -> dict:
    """64 px <-> 8x8x4 (three downsamplings), the tiny models' VAE; the scaling factor is set after training."""
    return {**tiny_vae_config(), "scaling_factor": scaling_factor}


def text_config() -> CLIPTextConfig:
    """CLIP-L's config at width 64: the full 49408-token table (only the caption words ever train)."""
    skeleton = json.loads((paths.CONFIGS / "sd1" / "text_encoder" / "config.json").read_text())
    fields = {k: v for k, v in skeleton.items() if not k.startswith("_") and k != "architectures"}
    return CLIPTextConfig(
        **{
            **fields,
            "hidden_size": TEXT_WIDTH,
            "intermediate_size": 4 * TEXT_WIDTH,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "projection_dim": TEXT_WIDTH,
        }
    )


def build_vae(seed: int) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(**vae_config())


# The web UI's "Original" emphasis rescales the weighted conditioning back to its old overall mean. A
# final layer norm with zero bias gives a mean near 0 (measured -0.001), where that ratio is noise and
# can even flip the sign; real CLIP's output has a clear mean. A fixed bias of 1 gives ours one too, so
# weighting a token changes that token and rescales the rest by about 77 / (76 + weight).
FINAL_NORM_BIAS = 1.0


def build_unet_and_text(seed: int) -> tuple[UNet2DConditionModel, CLIPTextModel]:
    torch.manual_seed(seed)
    unet, text = UNet2DConditionModel(**unet_config()), CLIPTextModel(text_config())
    with torch.no_grad():
        text.final_layer_norm.bias.fill_(FINAL_NORM_BIAS)
    return unet, text


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Every parameter except the fixed final-norm bias of the text encoder."""
    return [p for name, p in model.named_parameters() if not name.endswith("final_layer_norm.bias")]


def make_bundle(unet: torch.nn.Module, vae: torch.nn.Module, text: torch.nn.Module) -> ModelBundle:
    return ModelBundle(
        unet=unet.eval(),
        vae=vae.eval(),
        text_encoders=[text.eval()],
        tokenizers=tokenizers_for(Arch.SD1),
        arch=Arch.SD1,
        prediction_type="epsilon",
        alphas_cumprod=scaled_linear_alphas_cumprod(),
        name="demo-shapes-sd1",
    )


class CaptionTokenizer:
    """Captions -> 77 ids framed like the web UI's SD1 chunks: BOS, words, EOS, then EOS as padding.

    Captions may carry emphasis, "a (red:1.4) circle": the app's own attention parser splits them and each
    token gets its fragment's weight, as the web UI does when it encodes a prompt.
    """

    def __init__(self) -> None:
        self.tokenizer = tokenizers_for(Arch.SD1)[0]
        self.cache: dict[str, tuple[list[int], list[float]]] = {}

    def ids_and_weights(self, caption: str) -> tuple[list[int], list[float]]:
        if caption not in self.cache:
            words: list[int] = []
            weights: list[float] = []
            for text, weight in parse_attention(caption):
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                words += ids
                weights += [weight] * len(ids)
            words, weights = words[: MAX_TOKENS - 2], weights[: MAX_TOKENS - 2]
            bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
            padding = MAX_TOKENS - 2 - len(words)
            self.cache[caption] = (
                [bos, *words, eos] + [eos] * padding,
                [1.0, *weights, 1.0] + [1.0] * padding,
            )
        return self.cache[caption]

    def ids(self, caption: str) -> list[int]:
        return self.ids_and_weights(caption)[0]

    def batch(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``[B, 77]`` and their emphasis weights ``[B, 77]``."""
        pairs = [self.ids_and_weights(c) for c in captions]
        return (
            torch.tensor([ids for ids, _ in pairs], dtype=torch.long),
            torch.tensor([weights for _, weights in pairs], dtype=torch.float32),
        )


def emphasise(z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The app's "Original" emphasis applied to each caption as its own prompt (one mean per caption)."""
    if bool((weights == 1).all()):
        return z
    return torch.cat([apply_emphasis(z[i : i + 1], weights[i : i + 1], ORIGINAL) for i in range(len(z))])


def encode_text(
    text: CLIPTextModel, ids: torch.Tensor, replace: tuple[int, torch.Tensor] | None = None
) -> torch.Tensor:
    """The last layer's final-normed hidden states, as the web UI conditions SD1 (Clip skip 1).

    ``replace`` = (token id, vector) swaps that token's embedding for a trainable vector, which is how
    a textual-inversion embedding is spliced in at inference.
    """
    embeds = text.embeddings.token_embedding(ids)
    if replace is not None:
        token, vector = replace
        embeds = torch.where((ids == token).unsqueeze(-1), vector.to(embeds.dtype), embeds)
    hidden = text.embeddings(inputs_embeds=embeds)
    mask = create_causal_mask(
        config=text.config, inputs_embeds=hidden, attention_mask=None, past_key_values=None
    )
    for layer in text.encoder.layers:
        hidden = layer(hidden, mask, is_causal=True)
    return text.final_layer_norm(hidden)


# --- LoRA -------------------------------------------------------------------------------------------------


class LoRALinear(torch.nn.Module):
    """A frozen Linear plus a trainable low-rank update ``up(down(x)) * alpha / rank`` (kohya's form)."""

    def __init__(self, base: torch.nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.down = torch.nn.Linear(base.in_features, rank, bias=False)
        self.up = torch.nn.Linear(rank, base.out_features, bias=False)
        torch.nn.init.kaiming_uniform_(self.down.weight, a=5**0.5)
        torch.nn.init.zeros_(self.up.weight)  # starts as the unchanged model
        self.scale = alpha / rank
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.up(self.down(x)) * self.scale


UNET_LORA_PARENTS = ("attn1", "attn2", "ff")
TEXT_LORA_PARENTS = ("self_attn", "mlp")


def lora_targets(model: torch.nn.Module, parents: tuple[str, ...]) -> list[str]:
    """Names of the Linear layers inside attention and feed-forward blocks (kohya's default targets)."""
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and any(f".{p}." in f".{name}" for p in parents)
    ]


def inject_lora(model: torch.nn.Module, names: list[str], rank: int, alpha: float) -> dict[str, LoRALinear]:
    """Replace each named Linear by a LoRALinear wrapping it; returns the wrappers by original name."""
    wrappers = {}
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        wrapper = LoRALinear(getattr(parent, child), rank, alpha)
        setattr(parent, child, wrapper)
        wrappers[name] = wrapper
    return wrappers


def kohya_state(wrappers: dict[str, LoRALinear], prefix: str) -> dict[str, torch.Tensor]:
    """kohya-ss key names: ``<prefix>_<module path with _>.lora_down.weight`` / ``.lora_up.weight`` / ``.alpha``."""
    state = {}
    for name, wrapper in wrappers.items():
        key = f"{prefix}_{name.replace('.', '_')}"
        state[f"{key}.lora_down.weight"] = wrapper.down.weight.detach().clone()
        state[f"{key}.lora_up.weight"] = wrapper.up.weight.detach().clone()
        state[f"{key}.alpha"] = torch.tensor(float(wrapper.alpha))
    return state


def merge_kohya_lora(unet: torch.nn.Module, text: torch.nn.Module, state: dict, multiplier: float) -> None:
    """Add ``multiplier * alpha / rank * up @ down`` to each targeted weight (what a LoRA loader does)."""
    roots = {"lora_unet": unet, "lora_te_text_model": text}
    flat = {
        prefix: {n.replace(".", "_"): m for n, m in root.named_modules()} for prefix, root in roots.items()
    }
    for key in [k for k in state if k.endswith(".lora_down.weight")]:
        module_key = key.removesuffix(".lora_down.weight")
        prefix = next(p for p in roots if module_key.startswith(p + "_"))
        module = flat[prefix][module_key.removeprefix(prefix + "_")]
        down, up = state[key].float(), state[f"{module_key}.lora_up.weight"].float()
        scale = float(state[f"{module_key}.alpha"]) / down.shape[0]
        with torch.no_grad():
            module.weight += multiplier * scale * (up @ down).to(module.weight.dtype)
