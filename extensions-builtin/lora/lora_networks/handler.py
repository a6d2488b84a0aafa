"""The ``<lora:...>`` extra network: per batch, patch the model with the batch's LoRAs; after the job,
restore it. Also writes "Lora hashes" (of the LoRAs that loaded and fit the model) into the parameters
text and notes, for the UI and the API's ``info``, tags that were malformed, not found, unreadable or
did not fit.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modules.extensions.api import Paths

from .files import LoraFile, LoraLibrary
from .patcher import Network, Patcher
from .requests import LoraRequest, parse_args

if TYPE_CHECKING:
    from modules.extensions.api import JobContext

log = logging.getLogger("lora")

HASHES_KEY = "Lora hashes"
HASHES_OPTION = "lora_add_hashes_to_infotext"
_NAME_SYMBOLS = str.maketrans("", "", ":,")  # A1111 drops these from names in "Lora hashes"


class LoraHandler:
    """One app's LoRA state: the file library per folder set and the patcher of the loaded model.

    The same handler serves several tag names ("lora", and A1111's old "lyco"): each name's calls are
    kept, and the model always carries the union, so two names never undo each other's patches.
    """

    def __init__(self, bundled_folder: Path) -> None:
        self.bundled_folder = bundled_folder
        self.patcher = Patcher()
        self._libraries: dict[tuple[Path, ...], LoraLibrary] = {}
        self._requested: dict[str, list[Any]] = {}

    def library(self, paths: Paths) -> LoraLibrary:
        folders = (Path(paths.lora_dir), self.bundled_folder)
        if folders not in self._libraries:
            self._libraries[folders] = LoraLibrary(list(folders))
        return self._libraries[folders]

    def activate(self, p: JobContext, tag: str, calls: list[Any]) -> None:
        self._requested[tag] = list(calls)
        requests = self._requests(p, [c for tag_calls in self._requested.values() for c in tag_calls])
        library = self.library(p.paths)
        found: list[tuple[LoraRequest, LoraFile]] = []
        missing: list[str] = []
        for request in requests:
            lora = library.find(request.name)
            if lora is None:
                missing.append(request.name)
            else:
                found.append((request, lora))
        networks, unreadable = [], []
        for request, lora in found:
            try:
                identity = (str(lora.path), lora.path.stat().st_mtime)
                networks.append(Network(request, library.tensors(lora), identity))
            except Exception as error:  # a broken file must not stop the others (nor the job)
                unreadable.append(f"LoRA {request.name}: {lora.path.name} could not be read: {error}")
        changed, warnings = self.patcher.apply(p.model, networks)
        if changed:
            p.conditioning.clear_cache()  # texts encoded with the old text-encoder weights are stale
        if missing:
            # A1111's wording; generation goes on without them.
            warnings.insert(0, f"Networks not found: {', '.join(missing)}")
        for warning in unreadable + warnings:
            _comment(p, warning)
        applied = set(self.patcher.applied)
        self._write_hashes(p, [(r, f) for r, f in found if r in applied])

    def deactivate(self, p: JobContext) -> None:
        self._requested.clear()
        self.patcher.restore()

    def _requests(self, p: JobContext, calls: list[Any]) -> list[LoraRequest]:
        requests = []
        for call in calls:
            try:
                requests.append(parse_args(call.args))
            except ValueError as error:
                # A1111 stops loading every LoRA of the prompt here; we skip only this tag, and say so.
                _comment(p, f"<{call.name}:{':'.join(call.args)}> ignored: {error}")
        return requests

    @staticmethod
    def _write_hashes(p: JobContext, found: list[tuple[LoraRequest, LoraFile]]) -> None:
        hashes = {}
        if p.settings.get(HASHES_OPTION, True):
            # Keyed by the name as typed in the prompt (A1111's "mentioned name").
            hashes = {r.name.translate(_NAME_SYMBOLS): f.shorthash for r, f in found if f.shorthash}
        if hashes:
            p.extra_generation_params[HASHES_KEY] = ", ".join(f"{k}: {v}" for k, v in hashes.items())
        else:
            # A1111 leaves a previous batch's value behind; a batch without LoRAs should not claim any.
            p.extra_generation_params.pop(HASHES_KEY, None)


def _comment(p: JobContext, text: str) -> None:
    if text not in p.comments:
        log.warning(text)
        p.comments.append(text)
