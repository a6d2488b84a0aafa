"""Where the server may write: every output file resolves inside its configured folder.

Settings that shape paths are checked when they are set (``POST /options``, ``override_settings``,
config.json, the Settings tab): a file-name pattern may not hold a path (separators, "..", an absolute
path, control characters) and an ``outdir_*`` folder must lie inside the outputs folder. Saving checks
again (``inside``) after the pattern has been expanded, so a value that slipped through still cannot
leave the folder.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

PATTERN_SETTINGS = ("samples_filename_pattern", "directories_filename_pattern")
FOLDER_SETTINGS = ("outdir_txt2img_samples", "outdir_img2img_samples")


class OutputPathError(ValueError):
    """A path that would leave its output folder."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()  # read once at start: os.umask can only be read by setting it
FILE_MODE = 0o666 & ~UMASK  # what open() would give a new file; mkstemp's 0600 is widened to this


def check_pattern(value: object) -> None:
    """A file-name pattern expands to a name, never to a path."""
    text = str(value)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("must not contain control characters")
    if "/" in text or "\\" in text:
        raise ValueError(
            "must be a file name pattern, without '/' or '\\' (folders come from the folder settings)"
        )
    if text.strip() == "..":
        raise ValueError("must not be '..'")


def check_output_folder(outputs_dir: Path, value: str) -> str:
    """An ``outdir_*`` value: empty (the default folder) or a folder inside the outputs folder; a
    relative value is taken inside it."""
    if not value:
        return value
    if any(ord(c) < 32 for c in value):
        raise ValueError("must not contain control characters")
    folder = resolve_output_folder(outputs_dir, value)
    if not folder.is_relative_to(outputs_dir.resolve()):
        raise OutputPathError(f"must be inside the outputs folder {outputs_dir}")
    return value


def resolve_output_folder(outputs_dir: Path, value: str) -> Path:
    path = Path(value)
    windows_absolute = PureWindowsPath(value).is_absolute() and not PurePosixPath(value).is_absolute()
    if windows_absolute:
        raise OutputPathError(f"must be inside the outputs folder {outputs_dir}")
    return (path if path.is_absolute() else outputs_dir / path).resolve()


def inside(folder: Path, path: Path) -> Path:
    """``path`` resolved, refused unless it lies inside ``folder``."""
    resolved = path.resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise OutputPathError(f"refusing to write {path}: outside {folder}")
    return resolved


def output_folder(outputs_dir: Path, custom: str, default: str) -> Path:
    """The folder a mode's images go to: the ``outdir_*`` setting (inside the outputs folder) or the
    mode's default subfolder."""
    if not custom:
        return outputs_dir / default
    folder = resolve_output_folder(outputs_dir, custom)
    if not folder.is_relative_to(outputs_dir.resolve()):
        raise OutputPathError(f"output folder {custom!r} is outside the outputs folder {outputs_dir}")
    return folder


def name_part(text: str) -> str:
    """An expanded file-name pattern made a plain name: separators and control characters become '_'."""
    return "".join("_" if c in "/\\" or ord(c) < 32 or ord(c) == 127 else c for c in text)
