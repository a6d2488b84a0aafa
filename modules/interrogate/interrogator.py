"""Interrogation: an image back into a prompt (A1111's "Interrogate CLIP", the clip-interrogator way).

A BLIP caption when a BLIP model is there, extended by the phrases a CLIP ranks closest to the image:

- "fast": each list's best phrase(s), ranked one by one against the image (the list's ``top``);
- "best": greedy, keep adding the phrase (from all lists) that raises the whole prompt's similarity to
  the image most, until none does or "interrogate_best_max_phrases" are added.

Without a BLIP the caption is the chosen phrases alone. The phrases' text features are cached on disk
per CLIP model (keyed by the model's sha256 and the list's content hash), so a list is encoded once per
model. Models are loaded on first use and, unless "interrogate_keep_models_in_memory", dropped after
each call so interrogation does not keep memory from generation. One interrogation at a time: the
caller holds the runtime's queue lock (the models would otherwise be loaded twice).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from modules.interrogate import models, phrases
from modules.interrogate.models import LoadedModel, MissingModel
from modules.models.hashes import HashCache

log = logging.getLogger("interrogate")

MODES = ("fast", "best")
BEST_POOL = 64  # "best" mode only tries the phrases ranked highest one by one (clip-interrogator does too)
SEPARATOR = ", "  # A1111 joins the caption and each list's phrases with commas


@dataclass(frozen=True)
class Folders:
    clip_dir: Path  # models/CLIP
    blip_dir: Path  # models/BLIP
    user_lists: Path  # <data dir>/interrogate: the user's phrase lists
    cache_dir: Path  # text features per model and list
    bundled_clip: Path | None = models.BUNDLED_CLIP


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: why"


class Interrogator:
    """Loads the models it needs, ranks phrases, writes captions; one per runtime."""

    def __init__(self, folders: Folders, hashes: HashCache, device: torch.device | None = None) -> None:
        self.folders = folders
        self.hashes = hashes
        self.device = device or torch.device("cpu")
        self.clip: LoadedModel | None = None
        self.blip: LoadedModel | None = None
        self._features: dict[tuple[str, str], torch.Tensor] = {}
        self.encoded_texts = 0  # phrases encoded by CLIP for the cache (tests check reuse with it)

    # --- models -----------------------------------------------------------------------------------

    def clip_folder(self, settings: Mapping[str, Any]) -> Path:
        return models.find_folder(
            self.folders.clip_dir, str(settings["interrogate_clip_model"]), "CLIP", self.folders.bundled_clip
        )

    def blip_folder(self, settings: Mapping[str, Any]) -> Path | None:
        choice = str(settings["interrogate_blip_model"])
        try:
            return models.find_folder(self.folders.blip_dir, choice, "BLIP")
        except MissingModel:
            if choice:  # a named model that is not there is an error; no BLIP at all is a choice
                raise
            return None

    def _load(self, settings: Mapping[str, Any]) -> tuple[LoadedModel, LoadedModel | None]:
        clip_folder, blip_folder = self.clip_folder(settings), self.blip_folder(settings)
        if self.clip is None or self.clip.folder != clip_folder:
            self.clip = models.load_clip(clip_folder, self.device)
        if blip_folder is None:
            self.blip = None
        elif self.blip is None or self.blip.folder != blip_folder:
            self.blip = models.load_blip(blip_folder, self.device)
        return self.clip, self.blip

    def unload(self) -> None:
        self.clip = self.blip = None
        self._features.clear()

    # --- phrase features ----------------------------------------------------------------------------

    def lists(self, clip: LoadedModel, settings: Mapping[str, Any]) -> list[phrases.PhraseList]:
        names = phrases.list_names(clip.folder)
        limit = int(settings["interrogate_clip_dict_limit"])
        return phrases.load_lists(names, self.folders.user_lists, limit=limit)

    def list_features(self, clip: LoadedModel, phrase_list: phrases.PhraseList) -> torch.Tensor:
        """The list's unit text features: from memory, from the disk cache, or encoded and cached."""
        key = (self.hashes.sha256(clip.folder), phrase_list.digest)
        if key in self._features:
            return self._features[key]
        path = self.folders.cache_dir / f"{key[0][:16]}-{phrase_list.name}-{key[1][:16]}.safetensors"
        tensor = None
        if path.is_file():
            try:
                tensor = load_file(path)["features"]
            except (OSError, ValueError, KeyError, SafetensorError) as error:  # costs only re-encoding
                log.warning("interrogate: ignoring cache file %s (%s)", path, error)
            if tensor is not None and tensor.shape[0] != len(phrase_list.phrases):
                tensor = None
        if tensor is None:
            tensor = models.text_features(clip, list(phrase_list.phrases)).cpu()
            self.encoded_texts += len(phrase_list.phrases)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            save_file({"features": tensor.contiguous()}, str(temporary))
            temporary.replace(path)
        self._features[key] = tensor
        return tensor

    # --- interrogation ------------------------------------------------------------------------------

    def interrogate(self, image: Image.Image, settings: Mapping[str, Any], mode: str | None = None) -> str:
        mode = mode or str(settings["interrogate_mode"])
        if mode not in MODES:
            raise ValueError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
        image = image.convert("RGB")
        try:
            clip, blip = self._load(settings)
            start = []
            if blip is not None:
                text = models.caption(
                    blip,
                    image,
                    int(settings["interrogate_clip_num_beams"]),
                    int(settings["interrogate_clip_min_length"]),
                    int(settings["interrogate_clip_max_length"]),
                )
                start = [text] if text else []
            target = models.image_features(clip, image).cpu()
            lists = self.lists(clip, settings)
            if mode == "fast":
                chosen = start + self._fast(clip, target, lists)
            else:
                chosen = self._best(clip, target, lists, start, int(settings["interrogate_best_max_phrases"]))
            return SEPARATOR.join(chosen)
        finally:
            if not settings["interrogate_keep_models_in_memory"]:
                self.unload()

    def _fast(self, clip: LoadedModel, target: torch.Tensor, lists: list[phrases.PhraseList]) -> list[str]:
        chosen = []
        for phrase_list in lists:
            similarity = self.list_features(clip, phrase_list) @ target
            best = similarity.topk(min(phrase_list.top, len(phrase_list.phrases))).indices
            chosen += [phrase_list.phrases[int(i)] for i in best]
        return chosen

    def _best(
        self,
        clip: LoadedModel,
        target: torch.Tensor,
        lists: list[phrases.PhraseList],
        start: list[str],
        max_phrases: int,
    ) -> list[str]:
        pool = _unique_ranked(
            (p, float(s))
            for phrase_list in lists
            for p, s in zip(phrase_list.phrases, self.list_features(clip, phrase_list) @ target, strict=True)
        )[:BEST_POOL]
        chosen = list(start)
        current = float(models.text_features(clip, [SEPARATOR.join(chosen)])[0] @ target) if chosen else None
        for _ in range(max_phrases):
            candidates = [p for p in pool if p not in chosen]
            if not candidates:
                break
            texts = [SEPARATOR.join([*chosen, p]) for p in candidates]
            scores = models.text_features(clip, texts).cpu() @ target
            index = int(scores.argmax())
            if current is not None and float(scores[index]) <= current:
                break
            chosen.append(candidates[index])
            current = float(scores[index])
        return chosen

    # --- batch --------------------------------------------------------------------------------------

    def interrogate_folder(
        self, input_dir: str | Path, output_dir: str | Path | None, settings: Mapping[str, Any]
    ) -> BatchReport:
        """A ``.txt`` caption for every image of ``input_dir`` (subfolders too), beside the image or at
        the same relative place under ``output_dir``. Nothing is written outside that folder and no file
        is overwritten (A1111 appends to an existing one; we skip it and say so)."""
        from modules.processing.batch import image_files

        source = Path(input_dir)
        files = image_files(source)  # ValueError naming input_dir when it is not a folder
        target_root = Path(output_dir) if output_dir else source
        report = BatchReport()
        keep = dict(settings)
        keep["interrogate_keep_models_in_memory"] = True  # load once for the whole folder
        try:
            for file in files:
                relative = file.relative_to(source)
                target = (target_root / relative).with_suffix(".txt")
                if not target.resolve().is_relative_to(target_root.resolve()):
                    report.skipped.append(f"{relative}: its caption would land outside {target_root}")
                    continue
                if target.exists() or target.is_symlink():
                    report.skipped.append(f"{relative}: {target.name} exists (not overwritten)")
                    continue
                try:
                    with Image.open(file) as image:
                        text = self.interrogate(image, keep)
                except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
                    report.skipped.append(f"{relative}: not a readable image ({error})")
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "x", encoding="utf-8") as handle:  # "x": never replace a file
                    handle.write(text + "\n")
                report.written.append(target)
        finally:
            if not settings["interrogate_keep_models_in_memory"]:
                self.unload()
        return report


def _unique_ranked(scored: Any) -> list[str]:
    best: dict[str, float] = {}
    for phrase, score in scored:
        best[phrase] = max(score, best.get(phrase, score))
    return sorted(best, key=lambda p: -best[p])
