"""Interrogate: turn an image back into a prompt (BLIP caption + CLIP-ranked phrases), offline."""

from modules.interrogate.interrogator import MODES, BatchReport, Folders, Interrogator
from modules.interrogate.models import MissingModel

__all__ = ["MODES", "BatchReport", "Folders", "Interrogator", "MissingModel"]
