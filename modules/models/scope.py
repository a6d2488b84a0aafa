"""Job-scoped model views: what one job changes about a loaded model is seen by that job alone.

The loaded bundles belong to the model manager and reflect the live settings. A job whose settings
ask for another VAE gets a *view*: a shallow copy of the bundle that shares the UNet and text encoders
and owns a copy of the VAE carrying the job's weights (ComfyUI's patcher idea: patch a cheap clone,
never the shared model). The shared bundle is never touched, so it is "restored" exactly by
construction, and nothing outside the job (the token counter, another request) sees the change.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from modules.models import vae as vae_selection
from modules.models.bundle import ModelBundle
from modules.models.manager import ModelManager


def vae_file(manager: ModelManager, bundle: ModelBundle, choice: str) -> Path | None:
    """The VAE file ``choice`` means for this bundle (None: the checkpoint's own)."""
    return vae_selection.resolve_vae(
        choice, bundle.path, manager.vaes(), manager.options.prefer_near_checkpoint_vae
    )


def with_vae(manager: ModelManager, bundle: ModelBundle, choice: str) -> ModelBundle:
    """``bundle`` itself when it already runs with ``choice``'s VAE, else a view with that VAE."""
    if bundle.path is None:
        return bundle  # a bundle built in memory has no files to choose from
    path = vae_file(manager, bundle, choice)
    if (path.name if path is not None else None) == bundle.vae_name:
        return bundle
    view = dataclasses.replace(bundle, vae=copy.deepcopy(bundle.vae))
    vae_selection.apply_vae(view, path)
    if path is not None and manager.options.hash_on_load:
        view.vae_sha256 = manager.hash_cache.sha256(path)
    return view
