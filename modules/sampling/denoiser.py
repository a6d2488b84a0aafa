"""The CFG denoiser: where the prompt schedules meet the UNet.

At every model call it picks the conditioning in force for that call (positive AND sub-prompts and the
negative prompt, each a per-step schedule), runs every branch of every image in ONE batched UNet call,
combines the AND sub-prompts with their weights (composable diffusion) and applies classifier-free
guidance. Positive conditionings of different token lengths are padded by repeating their last vector,
as A1111 does; a negative of another length than the positives is zero-padded and masked in
cross-attention, which gives what A1111's separate UNet call for it gives.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from modules.models.bundle import Arch, ModelBundle
from modules.prompting.schedule import index_at_call


class SamplingInterrupted(Exception):
    """Raised between model calls when the user pressed Interrupt or Skip."""


class NansError(RuntimeError):
    """A network produced NaNs or infinities; the message names the likely cause and the fix."""


def check_finite(tensor: torch.Tensor, where: str, dtype: torch.dtype) -> None:
    """Raise NansError when ``tensor`` holds NaNs or infinities, naming the flag that fixes it."""
    if tensor.is_meta:
        return  # the tests' device stand-in: shapes and devices only, no values to check
    if torch.isfinite(tensor).all():
        return
    raise NansError(f"A tensor with NaNs or infinities was produced in the {where}. {nan_fix(where, dtype)}")


def nan_fix(where: str, dtype: torch.dtype) -> str:
    """What to try when a network overflows: the A1111 flags users already know."""
    if dtype not in (torch.float16, torch.bfloat16):
        return "The checkpoint may be corrupt or incompatible with its detected architecture."
    if where.startswith("VAE"):
        return "The VAE overflows in half precision: start with --no-half-vae (or --no-half)."
    return (
        "The UNet overflows in half precision: start with --upcast-sampling (half-size weights, "
        "float32 maths) or --no-half (float32 weights)."
    )


class TextConditioning(Protocol):
    """What the denoiser needs of an encoded text: token features and, for SDXL, the pooled vector."""

    tokens: torch.Tensor  # [1, 77*k, dim]
    pooled: torch.Tensor | None


@dataclass(frozen=True)
class ScheduledConditioning:
    """One text's conditioning over the run: ``(end_step, conditioning)`` pairs, as prompt schedules give."""

    entries: tuple[tuple[int, TextConditioning], ...]

    def at_call(self, call_index: int) -> TextConditioning:
        # The one rule for "which entry at call i" (A1111's, quirks included): prompting.index_at_call.
        return self.entries[index_at_call(self.entries, call_index)][1]


@dataclass(frozen=True)
class ComposableConditioning:
    """A positive prompt split on AND: each sub-prompt's schedule with its weight."""

    parts: tuple[tuple[ScheduledConditioning, float], ...]


@dataclass
class DenoiserStep:
    """What a step hook sees and may change before the UNet runs (extensions read/replace fields)."""

    x: torch.Tensor
    sigma: torch.Tensor
    call_index: int
    total_steps: int
    text_cond: list[list[torch.Tensor]]  # per image, per AND part
    text_uncond: list[torch.Tensor]  # per image


@dataclass
class AfterCFG:
    """What an after-CFG hook sees: the guided prediction, which it may replace."""

    denoised: torch.Tensor
    sigma: torch.Tensor
    call_index: int
    total_steps: int


@dataclass
class DenoiserHooks:
    before_step: list[Callable[[DenoiserStep], None]] = field(default_factory=list)
    after_cfg: list[Callable[[AfterCFG], None]] = field(default_factory=list)


def repeat_last_to_longest(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """[tokens, dim] tensors brought to the longest one's length by repeating each one's last vector.

    A1111 compatibility: this is how it stacks the positive conditionings of one model call (AND parts
    of 1 and 2 chunks, or a batch's prompts of different lengths), so the shorter part sees its last
    token vector 77 more times instead of nothing; the image depends on it.
    """
    longest = max(t.shape[0] for t in tensors)
    return [
        t if t.shape[0] == longest else torch.cat([t, t[-1:].expand(longest - t.shape[0], -1)])
        for t in tensors
    ]


def pad_and_stack(tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stack [tokens, dim] tensors of possibly different lengths; return the mask when any were padded."""
    longest = max(t.shape[0] for t in tensors)
    if all(t.shape[0] == longest for t in tensors):
        return torch.stack(list(tensors)), None
    first = tensors[0]
    padded = first.new_zeros(len(tensors), longest, first.shape[-1])
    mask = torch.zeros(len(tensors), longest, dtype=torch.bool, device=first.device)
    for i, t in enumerate(tensors):
        padded[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = True
    return padded, mask


@dataclass(frozen=True)
class UncondSkip:
    """When a call runs without the negative prompt (A1111's "Negative Guidance minimum sigma" and
    "Ignore negative prompt during early sampling"). Skipped calls stand the first AND part of each
    image in for its negative, as A1111 does; at CFG 1 with AND weights summing to 1 that gives exactly
    the guided result, so those calls always skip it (half the UNet batch, as ComfyUI does)."""

    s_min_uncond: float = 0.0
    all_steps: bool = False  # below s_min_uncond skip every call, not every other one
    early: float = 0.0  # the share of calls at the start that skip it

    def skips(self, call_index: int, total: int, sigma: float) -> bool:
        if self.early > 0 and call_index / max(total, 1) <= self.early:
            return True
        return bool(
            (call_index % 2 or self.all_steps) and self.s_min_uncond > 0 and sigma < self.s_min_uncond
        )


class CFGDenoiser:
    """``(x, sigma) -> denoised`` with classifier-free guidance over per-call scheduled conditioning.

    ``model(x, sigma, cond=..., cond_mask=..., pooled=..., image_cond=..., time_ids=...)`` is a
    k-diffusion-style denoiser of the UNet (see ``model_wrap``). ``image_cond`` holds the extra UNet input
    channels of inpainting/depth models, one row per image.
    """

    def __init__(
        self,
        model: Callable[..., torch.Tensor],
        conds: Sequence[ComposableConditioning],
        unconds: Sequence[ScheduledConditioning],
        cfg_scale: float,
        total_steps: int,
        *,
        image_cond: torch.Tensor | None = None,
        time_ids: torch.Tensor | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        hooks: DenoiserHooks | None = None,
        dtype: torch.dtype = torch.float32,
        uncond_skip: UncondSkip | None = None,
    ) -> None:
        if len(conds) != len(unconds):
            raise ValueError("need one negative conditioning per image")
        self.model = model
        self.conds = list(conds)
        self.unconds = list(unconds)
        self.cfg_scale = cfg_scale
        self.total_steps = total_steps
        self.image_cond = image_cond
        self.time_ids = time_ids
        self.should_stop = should_stop
        self.hooks = hooks or DenoiserHooks()
        self.dtype = dtype  # the UNet's weights dtype, for the NaN message
        self.uncond_skip = uncond_skip or UncondSkip()
        # CFG 1 with weights summing to 1: uncond + 1 * sum(w * (c - uncond)) is sum(w * c) exactly.
        self.guidance_free = cfg_scale == 1 and all(
            abs(sum(w for _, w in c.parts) - 1) < 1e-9 for c in self.conds
        )
        self.call_index = 0
        self.unet_calls = 0
        self._rows: dict[tuple[tuple[int, ...], bool, torch.device], torch.Tensor] = {}

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **_: Any) -> torch.Tensor:
        if self.should_stop():
            raise SamplingInterrupted
        step = self._gather(x, sigma)
        for hook in self.hooks.before_step:
            hook(step)
        denoised = self._guided(step)
        after = AfterCFG(denoised, step.sigma, self.call_index, self.total_steps)
        for hook in self.hooks.after_cfg:
            hook(after)
        self.call_index += 1
        return after.denoised

    def _gather(self, x: torch.Tensor, sigma: torch.Tensor) -> DenoiserStep:
        text_cond = [[part.at_call(self.call_index).tokens[0] for part, _ in c.parts] for c in self.conds]
        text_uncond = [u.at_call(self.call_index).tokens[0] for u in self.unconds]
        return DenoiserStep(x, sigma, self.call_index, self.total_steps, text_cond, text_uncond)

    def _pooled(self, with_uncond: bool) -> torch.Tensor | None:
        pooled = [[part.at_call(self.call_index).pooled for part, _ in c.parts] for c in self.conds]
        if pooled[0][0] is None:
            return None
        flat = [p[0] for parts in pooled for p in parts]
        if with_uncond:
            flat += [u.at_call(self.call_index).pooled[0] for u in self.unconds]
        return torch.stack(flat)

    def skips_uncond(self, step: DenoiserStep) -> bool:
        if self.guidance_free:
            return True
        skip = self.uncond_skip
        # The sigma is read back from the device only when the minimum-sigma rule needs its value.
        sigma = float(step.sigma.reshape(-1)[0]) if skip.s_min_uncond > 0 else 0.0
        return skip.skips(step.call_index, step.total_steps, sigma)

    def _guided(self, step: DenoiserStep) -> torch.Tensor:
        counts = [len(parts) for parts in step.text_cond]
        with_uncond = not self.skips_uncond(step)
        # Batch layout: every AND part of every image, then (unless skipped) every image's negative.
        x_in = self._layout(step.x, counts, with_uncond)
        sigma = step.sigma.reshape(-1)
        sigma_per_image = sigma.expand(len(counts)) if sigma.numel() == 1 else sigma
        sigma_in = self._layout(sigma_per_image, counts, with_uncond)
        # Positives among themselves, and negatives among themselves, repeat their last vector (A1111's
        # stacking); positives against negatives are masked, which equals A1111's separate UNet calls
        # for a cond and an uncond of different lengths.
        tokens = repeat_last_to_longest([t for parts in step.text_cond for t in parts])
        if with_uncond:
            tokens += repeat_last_to_longest(step.text_uncond)
        cond_in, cond_mask = pad_and_stack(tokens)
        extra: dict[str, Any] = {"cond": cond_in, "cond_mask": cond_mask, "pooled": self._pooled(with_uncond)}
        if self.image_cond is not None:
            extra["image_cond"] = self._layout(self.image_cond, counts, with_uncond)
        if self.time_ids is not None:
            extra["time_ids"] = self._layout(self.time_ids, counts, with_uncond)
        out = self.model(x_in, sigma_in, **extra)
        self.unet_calls += 1
        check_finite(out, "UNet", self.dtype)
        if not with_uncond:
            # A1111 compatibility: the first AND part of each image stands in for its negative.
            firsts = torch.tensor([sum(counts[:i]) for i in range(len(counts))])
            out = torch.cat([out, out[firsts]])
        return self._combine(out, counts)

    def _layout(self, per_image: torch.Tensor, counts: list[int], with_uncond: bool = True) -> torch.Tensor:
        """Rows per image -> rows per UNet batch entry: one per AND part, then one for the negative."""
        # The row index is built once per layout and device: a fresh host tensor at every call would be
        # a host-to-device copy inside the sampling loop.
        key = (tuple(counts), with_uncond, per_image.device)
        if key not in self._rows:
            rows = [image for image, count in enumerate(counts) for _ in range(count)]
            rows += list(range(len(counts))) if with_uncond else []
            self._rows[key] = torch.tensor(rows, device=per_image.device)
        return per_image.index_select(0, self._rows[key])

    def _combine(self, out: torch.Tensor, counts: list[int]) -> torch.Tensor:
        n_cond = sum(counts)
        uncond = out[n_cond:]
        result = uncond.clone()
        index = 0
        for image, composable in enumerate(self.conds):
            for _, weight in composable.parts:
                result[image] += (out[index] - uncond[image]) * (weight * self.cfg_scale)
                index += 1
        return result


class UNetApply:
    """Calls the bundle's diffusers UNet as ``(x, timestep, cond, ...) -> eps or v`` in float32 out.

    Inputs are cast to the UNet's compute dtype on the bundle's device (a no-op when they are already
    there, as in the sampling loop); the output stays on that device.
    """

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle

    def __call__(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor,
        *,
        cond: torch.Tensor,
        cond_mask: torch.Tensor | None = None,
        pooled: torch.Tensor | None = None,
        image_cond: torch.Tensor | None = None,
        time_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        bundle = self.bundle
        dtype = bundle.unet_compute_dtype
        if image_cond is not None:
            x = torch.cat([x, image_cond.to(x)], dim=1)
        added = None
        if bundle.arch is Arch.SDXL:
            added = {
                "text_embeds": pooled.to(bundle.device, dtype),
                # A1111 and diffusers both hand SDXL its size conditioning in the UNet's dtype.
                "time_ids": time_ids.to(bundle.device, dtype),
            }
        # A1111 compatibility: it casts the fractional timestep to the UNet's fp16 too, so in half
        # precision the timestep embedding sees t rounded to fp16 (bf16, which A1111 does not default
        # to, would round t to multiples of 4: it keeps float32).
        t_dtype = torch.float16 if dtype == torch.float16 else torch.float32
        with unet_autocast(bundle.device, dtype):
            out = bundle.unet(
                x.to(bundle.device, dtype),
                timestep.to(bundle.device, t_dtype),
                encoder_hidden_states=cond.to(bundle.device, dtype),
                encoder_attention_mask=None if cond_mask is None else cond_mask.to(bundle.device),
                added_cond_kwargs=added,
            ).sample
        return out.float()


def unet_autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """fp16 on CUDA runs under torch.autocast, as A1111 samples (norms and softmax then run in float32)."""
    if device.type == "cuda" and dtype == torch.float16:
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()
