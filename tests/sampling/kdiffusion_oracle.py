"""Test-only references: k-diffusion 0.1.1.post1's sampling/external modules, loaded without its package.

k-diffusion's package __init__ and utils import torchvision-based modules; only ``append_dims`` from
utils is needed, so a stub package provides it and the two source files are loaded by path.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from functools import cache
from pathlib import Path

import pytest

_PACKAGE = "_kdiffusion_oracle"


def _append_dims(x, target_dims):
    return x[(...,) + (None,) * (target_dims - x.ndim)]


@cache
def _load() -> types.ModuleType:
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("k-diffusion (test oracle, requirements-test-nodeps.txt) is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    package = types.ModuleType(_PACKAGE)
    package.__path__ = []
    package.utils = types.SimpleNamespace(append_dims=_append_dims)
    sys.modules[_PACKAGE] = package
    sys.modules[f"{_PACKAGE}.utils"] = package.utils
    for name in ("sampling", "external"):
        file_spec = importlib.util.spec_from_file_location(f"{_PACKAGE}.{name}", root / f"{name}.py")
        module = importlib.util.module_from_spec(file_spec)
        sys.modules[file_spec.name] = module
        file_spec.loader.exec_module(module)
        setattr(package, name, module)
    return package


def kdiffusion_sampling() -> types.ModuleType:
    """k_diffusion.sampling."""
    return _load().sampling


def kdiffusion_external() -> types.ModuleType:
    """k_diffusion.external."""
    return _load().external
