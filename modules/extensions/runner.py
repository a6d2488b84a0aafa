"""Calling scripts and extra networks from a running job, each failure isolated and reported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modules.extensions.api import AlwaysVisible, JobContext, Script
from modules.extensions.registry import ExtensionRegistry
from modules.sampling.denoiser import DenoiserHooks


class ScriptRunner:
    """The scripts of one app, and what a job asked of them (selected script, always-on script args)."""

    def __init__(self, registry: ExtensionRegistry) -> None:
        self.registry = registry

    def _shown(self, script: Script, is_img2img: bool) -> Any:
        try:
            return script.show(is_img2img)
        except Exception as error:
            self.registry.report(script.name or "?", "Script.show", error)
            return False

    def alwayson(self, is_img2img: bool) -> list[Script]:
        return [s for s in self.registry.scripts if self._shown(s, is_img2img) is AlwaysVisible]

    def selectable(self, is_img2img: bool) -> list[Script]:
        return [s for s in self.registry.scripts if self._shown(s, is_img2img) is True]

    def find(self, title: str, is_img2img: bool, selectable: bool = True) -> Script:
        candidates = self.selectable(is_img2img) if selectable else self.alwayson(is_img2img)
        for script in candidates:
            if script.title().lower() == title.lower():
                return script
        valid = ", ".join(s.title() for s in candidates) or "none"
        kind = "script" if selectable else "always-on script"
        raise ValueError(f"script_name: unknown {kind} {title!r}; available: {valid}")

    def alwayson_args(self, script: Script, requested: Mapping[str, Any]) -> list[Any]:
        """Args for an always-on script from the request ({"Title": {"args": [...]}}), case-insensitively."""
        for title, value in requested.items():
            if title.lower() == script.title().lower():
                return list(value.get("args", []) if isinstance(value, Mapping) else value)
        return []

    def call(self, ctx: JobContext, hook: str, *args: Any, **kwargs: Any) -> None:
        """Run a hook of every always-on script for the job's mode with its own args."""
        requested = ctx.job.alwayson_scripts or {}
        for script in self.alwayson(ctx.mode == "img2img"):
            try:
                getattr(script, hook)(ctx, *args, *self.alwayson_args(script, requested), **kwargs)
            except Exception as error:  # one broken extension never stops a generation
                self.registry.report(script.name or "?", f"{script.title()}.{hook}", error)

    def postprocess_image(self, ctx: JobContext, pp: Any) -> None:
        requested = ctx.job.alwayson_scripts or {}
        for script in self.alwayson(ctx.mode == "img2img"):
            try:
                script.postprocess_image(ctx, pp, *self.alwayson_args(script, requested))
            except Exception as error:
                self.registry.report(script.name or "?", f"{script.title()}.postprocess_image", error)

    def activate_networks(self, ctx: JobContext, calls_per_prompt: list[list[Any]]) -> None:
        """Hand each extra-network handler the calls naming it (an empty list resets it).

        Only the batch's first prompt counts, as in A1111: one set of networks patches the model for the
        whole batch, and a batch of identical prompts must not apply each network batch_size times.
        """
        by_name: dict[str, list[Any]] = {name: [] for name in self.registry.extra_networks}
        for call in calls_per_prompt[0] if calls_per_prompt else []:
            by_name.setdefault(call.name, []).append(call)
        for name, calls in by_name.items():
            network = self.registry.extra_networks.get(name)
            if network is None:
                continue  # A1111 also ignores <unknown:...> tags (they are already removed from the text)
            try:
                network.activate(ctx, calls)
            except Exception as error:
                self.registry.report(name, "extra network activate", error)

    def deactivate_networks(self, ctx: JobContext) -> None:
        for name, network in self.registry.extra_networks.items():
            try:
                network.deactivate(ctx)
            except Exception as error:
                self.registry.report(name, "extra network deactivate", error)

    def denoiser_hooks(self) -> DenoiserHooks:
        """The cfg_denoiser / after_cfg callbacks as denoiser hooks."""
        return DenoiserHooks(
            before_step=[lambda step: self.registry.call("cfg_denoiser", step)],
            after_cfg=[lambda after: self.registry.call("after_cfg", after)],
        )
