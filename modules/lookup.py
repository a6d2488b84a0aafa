"""Names that scripts resolve against the running app: X/Y/Z axis values, prompt-file options.

A ``Lookup`` reads the sampling registry and the model manager and loads nothing. Each method returns
the canonical name and raises ValueError naming what is unknown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modules.models.manager import ModelManager
    from modules.sampling.registry import SamplingRegistry


class Lookup:
    def __init__(self, registry: SamplingRegistry, models: ModelManager) -> None:
        self._registry = registry
        self._models = models

    def sampler(self, name: str) -> str:
        """A sampler's name from its name or alias ("k_euler_a"), any case."""
        return self._registry.resolve_sampler(name)[0].name

    def sampler_names(self) -> list[str]:
        return list(self._registry.samplers)

    def schedule_type(self, name: str) -> str:
        """A schedule type's label from its label, name or alias."""
        return self._registry.schedule_type(name).label

    def checkpoint(self, query: str) -> str:
        """A checkpoint's title from its title, name, file name or hash."""
        try:
            return self._models.find(query).title
        except KeyError as error:
            raise ValueError(error.args[0]) from error

    def checkpoint_titles(self) -> list[str]:
        return self._models.titles()

    def vae_names(self) -> list[str]:
        return [vae.name for vae in self._models.vaes()]
