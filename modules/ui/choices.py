"""Dropdown choices that come from registries (samplers, schedule types), read when the UI is built."""

from __future__ import annotations

from modules.sampling.registry import SamplingRegistry


def samplers(registry: SamplingRegistry) -> list[str]:
    return [info.name for info in registry.samplers.values()]


def schedulers(registry: SamplingRegistry) -> list[str]:
    return [info.label for info in registry.visible_schedule_types()]
