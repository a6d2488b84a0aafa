"""Saving generated images with their parameters text, and reading that text back from image files.

This module owns: file names from patterns ("[seed]-[prompt_spaces]", A1111's pattern language), the
5-digit sequence number, atomic never-overwrite writes, PNG text chunks and JPEG/WebP EXIF
UserComment metadata laid out as A1111 (piexif) writes it, the batch grid, and the log.csv of saves.
It knows nothing about models or processing: callers pass the values a file name may use.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import hashlib
import io
import json
import math
import os
import re
import string
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from PIL import Image, PngImagePlugin

from modules import output_paths
from modules.infotext import KNOWN_SAMPLERS, canonical_sampler_name

# Characters no common file system accepts in a name (Windows is the strictest), as in A1111.
INVALID_FILENAME_CHARS = '#<>:"/\\|?*\n\r\t'
MAX_FILENAME_PART_LENGTH = 128  # A1111's --filenames-max-length default
MAX_PROMPT_WORDS = 8  # A1111's directories_max_prompt_words default
MAX_NAME_BYTES = 255  # the name limit of ext4, NTFS, APFS
DEFAULT_PATTERN = "[seed]-[prompt_spaces]"
DEFAULT_SUBFOLDER_PATTERN = "[date]"
SUPPORTED_EXTENSIONS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
JPEG_MAX_EXIF = 65533  # a JPEG APP1 segment holds at most this many bytes

EXIF_IFD_POINTER = 0x8769
EXIF_USER_COMMENT = 0x9286
UNICODE_PREFIX = b"UNICODE\0"
ASCII_PREFIX = b"ASCII\0\0\0"

# Keys Pillow puts into Image.info that describe the encoding, not the generation (A1111's list).
IGNORED_INFO_KEYS = {
    "jfif",
    "jfif_version",
    "jfif_unit",
    "jfif_density",
    "dpi",
    "exif",
    "loop",
    "background",
    "timestamp",
    "duration",
    "progressive",
    "progression",
    "icc_profile",
    "chromaticity",
    "photoshop",
}
LOG_FIELDS = (
    "prompt",
    "seed",
    "width",
    "height",
    "sampler",
    "cfgs",
    "steps",
    "filename",
    "negative_prompt",
    "sd_model_name",
    "sd_model_hash",
)

_RE_PATTERN = re.compile(r"(.*?)(?:\[([^\[\]]+)\]|$)")
_RE_PATTERN_ARG = re.compile(r"(.*)<([^>]*)>$")
_RE_NONLETTERS = re.compile(r"[\s" + re.escape(string.punctuation) + "]+")


class _SkipPrevious:
    """Marker: a pattern that has nothing to say removes the literal text just before it too."""


SKIP_PREVIOUS = _SkipPrevious()


def limit_decoded_pixels(megapixels: float) -> None:
    """Make every image this process opens refuse to decode more than ``megapixels`` (Gradio's uploads are
    opened by PIL before the app sees them): PIL warns above ``MAX_IMAGE_PIXELS``, and the warning is made
    an error here, so an oversized upload fails with DecompressionBombWarning instead of taking memory."""
    import warnings

    Image.MAX_IMAGE_PIXELS = int(megapixels * 1_000_000)
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def sanitize_filename_part(text: str, replace_spaces: bool = True) -> str:
    """Make text safe inside a file name, as A1111 does: bad characters to '_', length capped."""
    if replace_spaces:
        text = text.replace(" ", "_")
    text = text.translate({ord(c): "_" for c in INVALID_FILENAME_CHARS})
    # A1111 strips leading spaces and trailing spaces and dots (Windows drops those silently).
    return text.lstrip(" ")[:MAX_FILENAME_PART_LENGTH].rstrip(" .")


@dataclass(frozen=True)
class NameFields:
    """The values a file-name pattern may refer to; callers fill what they know."""

    seed: int | None = None
    prompt: str = ""
    negative_prompt: str = ""
    styles: tuple[str, ...] = ()
    style_prompts: tuple[str, ...] = ()  # the styles' prompt texts, for [prompt_no_styles]
    model_name: str = ""
    model_hash: str = ""
    vae_name: str = ""
    steps: int | None = None
    cfg_scale: float | None = None
    width: int | None = None
    height: int | None = None
    sampler: str = ""
    scheduler: str = ""
    clip_skip: int | None = None
    denoising_strength: float | None = None
    batch_index: int = 0
    batch_size: int = 1
    iteration: int = 0
    n_iter: int = 1
    job_timestamp: str = ""
    user: str = ""
    now: dt.datetime = field(default_factory=dt.datetime.now)


def _hash_arg(text: str, length: str | None) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[: int(length) if length else 8]


def _datetime(f: NameFields, fmt: str | None = None, tz: str | None = None) -> str:
    when = f.now
    if tz:
        try:
            when = when.astimezone(ZoneInfo(tz))
        except (ZoneInfoNotFoundError, ValueError):
            pass  # A1111 ignores an unknown time zone
    return sanitize_filename_part(when.strftime(fmt or "%Y%m%d%H%M%S"), replace_spaces=False)


def _prompt_words(prompt: str) -> str:
    words = [w for w in _RE_NONLETTERS.split(prompt) if w] or ["empty"]
    return sanitize_filename_part(" ".join(words[:MAX_PROMPT_WORDS]), replace_spaces=False)


def _prompt_no_styles(f: NameFields) -> str:
    text = f.prompt
    for style in f.style_prompts:
        for part in style.split("{prompt}"):
            # Same clean-up as A1111: drop the style text, then the comma it leaves behind.
            text = text.replace(part, "").replace(", ,", ",").strip().strip(",")
    return sanitize_filename_part(text, replace_spaces=False)


def _batch_number(f: NameFields) -> object:
    return f.batch_index + 1 if f.batch_size > 1 else SKIP_PREVIOUS


def _generation_number(f: NameFields) -> object:
    if f.n_iter == 1 and f.batch_size == 1:
        return SKIP_PREVIOUS
    return f.iteration * f.batch_size + f.batch_index + 1


def _sampler_scheduler(f: NameFields) -> str:
    if f.scheduler and f.scheduler != "Automatic":
        return sanitize_filename_part(f"{f.sampler} {f.scheduler}", replace_spaces=False)
    return sanitize_filename_part(f.sampler, replace_spaces=False)


def _or_empty(value: object) -> object:
    return "" if value is None else value


_REPLACEMENTS: dict[str, Callable[..., object]] = {
    "seed": lambda f: _or_empty(f.seed),
    "steps": lambda f: _or_empty(f.steps),
    "cfg": lambda f: _or_empty(f.cfg_scale),
    "width": lambda f: _or_empty(f.width),
    "height": lambda f: _or_empty(f.height),
    "styles": lambda f: sanitize_filename_part(
        ", ".join(s for s in f.styles if s != "None") or "None", replace_spaces=False
    ),
    "sampler": lambda f: sanitize_filename_part(f.sampler, replace_spaces=False),
    "scheduler": lambda f: sanitize_filename_part(f.scheduler, replace_spaces=False),
    "sampler_scheduler": _sampler_scheduler,
    "model_hash": lambda f: f.model_hash,
    "model_name": lambda f: sanitize_filename_part(f.model_name, replace_spaces=False),
    "vae_filename": lambda f: sanitize_filename_part(f.vae_name, replace_spaces=False),
    "date": lambda f: f.now.strftime("%Y-%m-%d"),
    "datetime": _datetime,
    "job_timestamp": lambda f: f.job_timestamp,
    "prompt_hash": lambda f, n=None: _hash_arg(f.prompt, n),
    "negative_prompt_hash": lambda f, n=None: _hash_arg(f.negative_prompt, n),
    "full_prompt_hash": lambda f, n=None: _hash_arg(f"{f.prompt} {f.negative_prompt}", n),
    "prompt": lambda f: sanitize_filename_part(f.prompt),
    "prompt_no_styles": _prompt_no_styles,
    "prompt_spaces": lambda f: sanitize_filename_part(f.prompt, replace_spaces=False),
    "prompt_words": lambda f: _prompt_words(f.prompt),
    "batch_number": _batch_number,
    "generation_number": _generation_number,
    "clip_skip": lambda f: _or_empty(f.clip_skip),
    "denoising": lambda f: f.denoising_strength if f.denoising_strength else SKIP_PREVIOUS,
    "user": lambda f: sanitize_filename_part(f.user, replace_spaces=False),
    "none": lambda f: "",
}


def samples_pattern(settings: Mapping[str, Any]) -> str:
    """The file-name pattern of images (generated, saved from the UI, made by Extras): the setting,
    else A1111's default."""
    return settings["samples_filename_pattern"] or DEFAULT_PATTERN


def apply_pattern(pattern: str, fields: NameFields) -> str:
    """Expand "[seed]-[prompt_words]"-style patterns; unknown tags stay as written (A1111 keeps them)."""
    out = []
    for text, tag in _RE_PATTERN.findall(pattern):
        if not tag:
            out.append(text)
            continue
        name, args = tag, []
        while m := _RE_PATTERN_ARG.match(name):
            name, arg = m.groups()
            args.insert(0, arg)
        replacement = _replace(name.lower(), fields, args)
        if replacement is SKIP_PREVIOUS:
            continue
        out.append(text + (f"[{tag}]" if replacement is None else str(replacement)))
    return "".join(out)


def _replace(name: str, fields: NameFields, args: list[str]) -> object:
    fun = _REPLACEMENTS.get(name)
    if fun is None:
        return None
    try:
        return fun(fields, *args)
    except (TypeError, ValueError):
        return None  # wrong arguments: keep the tag literally, like A1111


def next_sequence_number(folder: Path, basename: str = "") -> int:
    """One more than the largest leading number of the folder's files (A1111's counting).

    Every file counts, whatever its extension, as in A1111, so numbers keep rising across formats.
    """
    prefix = f"{basename}-" if basename else ""
    result = -1
    for name in os.listdir(folder):
        if not name.startswith(prefix):
            continue
        head = os.path.splitext(name[len(prefix) :])[0].split("-")[0]
        if head.isdigit():
            result = max(result, int(head))
    return result + 1


_folder_locks: dict[str, threading.Lock] = {}
_folder_locks_guard = threading.Lock()


def _folder_lock(folder: Path) -> threading.Lock:
    # One lock per output folder, so UI and API saves in one process never take the same number.
    key = os.path.realpath(folder)
    with _folder_locks_guard:
        return _folder_locks.setdefault(key, threading.Lock())


def exif_user_comment(text: str) -> bytes:
    """EXIF block holding ``text`` as UserComment, laid out as piexif writes it for A1111.

    Big-endian TIFF header, IFD0 with only the Exif IFD pointer, the Exif IFD with UserComment
    (type UNDEFINED) = b"UNICODE\\0" + UTF-16BE text; A1111 reads exactly that.
    """
    comment = UNICODE_PREFIX + text.encode("utf-16-be", errors="surrogatepass")
    exif_ifd_offset = 8 + 2 + 12 + 4
    data_offset = exif_ifd_offset + 2 + 12 + 4
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8)
    tiff += struct.pack(">H", 1) + struct.pack(">HHII", EXIF_IFD_POINTER, 4, 1, exif_ifd_offset) + b"\0" * 4
    tiff += struct.pack(">H", 1) + struct.pack(">HHII", EXIF_USER_COMMENT, 7, len(comment), data_offset)
    tiff += b"\0" * 4
    return b"Exif\x00\x00" + tiff + comment


def decode_user_comment(data: bytes | str) -> str:
    """Read an EXIF UserComment: its 8-byte charset prefix, then the text.

    A1111 writes UTF-16BE; some tools write UTF-16LE under the same "UNICODE" prefix, so the byte
    order is guessed from where the zero bytes of ASCII characters fall.
    """
    if isinstance(data, str):
        return data
    prefix, body = data[:8], data[8:]
    if prefix == UNICODE_PREFIX:
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            return body.decode("utf-16", errors="replace")
        even_zeros = body[0::2].count(0)
        odd_zeros = body[1::2].count(0)
        return body.decode("utf-16-le" if odd_zeros > even_zeros else "utf-16-be", errors="replace")
    if prefix == ASCII_PREFIX or prefix == b"\0" * 8:
        return body.decode("utf-8", errors="ignore").rstrip("\0")
    # No known prefix: A1111 falls back to reading the whole value as UTF-8.
    return data.decode("utf-8", errors="ignore").rstrip("\0")


def _exif_fits(fmt: str, infotext: str) -> bool:
    # A JPEG marker segment is limited to 64 KiB; about 32,000 characters of UTF-16 text.
    return fmt != "JPEG" or len(exif_user_comment(infotext)) <= JPEG_MAX_EXIF


def encode(
    image: Image.Image, fmt: str, infotext: str | None, extra_info: Mapping[str, object], quality: int = 80
) -> bytes:
    """The image file's bytes as saved (PNG chunks, or EXIF UserComment for JPEG/WebP); ``fmt`` is PIL's."""
    buf = io.BytesIO()
    if fmt == "PNG":
        pnginfo = PngImagePlugin.PngInfo()
        for key, value in {
            **extra_info,
            **({"parameters": infotext} if infotext is not None else {}),
        }.items():
            pnginfo.add_text(key, str(value))  # non-Latin-1 text becomes an iTXt chunk automatically
        image.save(buf, format="PNG", pnginfo=pnginfo)
        return buf.getvalue()
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    kwargs: dict[str, object] = {"quality": quality}
    if infotext is not None and _exif_fits(fmt, infotext):
        kwargs["exif"] = exif_user_comment(infotext)
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _write_temp(folder: Path, data: bytes, suffix: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.fchmod(fd, output_paths.FILE_MODE)  # the user's umask, not mkstemp's 0600
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return Path(tmp)


def _publish(tmp: Path, target: Path) -> bool:
    """Give the finished temp file its final name unless that name exists; True on success."""
    try:
        os.link(tmp, target)  # atomic and fails if the name exists: never overwrites, never partial
        return True
    except FileExistsError:
        return False
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    # File systems without hard links: reserve the name exclusively, then move the data over it.
    try:
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    os.replace(tmp, target)
    return True


def _fit_name(stem: str, extension: str) -> str:
    limit = MAX_NAME_BYTES - len(extension.encode()) - 1
    encoded = stem.encode()
    if len(encoded) > limit:
        stem = encoded[:limit].decode(errors="ignore").rstrip(" .")
    return f"{stem}.{extension}"


def _candidate_names(
    folder: Path, decoration: str, basename: str, add_number: bool, ext: str
) -> Iterator[str]:
    if add_number:
        start = next_sequence_number(folder, basename)
        for i in range(1_000_000):
            number = f"{start + i:05}" if not basename else f"{basename}-{start + i:04}"
            yield _fit_name(number + (f"-{decoration}" if decoration else ""), ext)
    else:
        # A1111 would overwrite here; we add "-1", "-2"... instead: saving never destroys a file.
        yield _fit_name(decoration, ext)
        for i in range(1, 1_000_000):
            yield _fit_name(f"{decoration}-{i}", ext)
    raise FileExistsError(f"no free file name in {folder}")


def save_image(
    image: Image.Image,
    folder: str | os.PathLike[str],
    *,
    basename: str = "",
    extension: str = "png",
    infotext: str | None = None,
    fields: NameFields | None = None,
    pattern: str = DEFAULT_PATTERN,
    suffix: str = "",
    add_number: bool = True,
    forced_filename: str | None = None,
    subfolder_pattern: str | None = None,
    extra_info: Mapping[str, object] | None = None,
    jpeg_quality: int = 80,
    save_txt: bool = False,
) -> Path:
    """Save ``image`` under ``folder`` and return its path; never overwrites an existing file.

    The name is "<number>-<pattern><suffix>.<ext>" (5-digit number, or "<basename>-<4 digits>"), or
    ``forced_filename``; ``subfolder_pattern`` (e.g. "[date]") adds a folder level. PNG stores
    ``infotext`` in a "parameters" text chunk (plus ``extra_info`` chunks); JPEG and WebP in EXIF
    UserComment. With ``save_txt`` (or a JPEG text too long for EXIF) a "<name>.txt" holds it too.
    """
    ext = extension.lower().lstrip(".")
    fmt = SUPPORTED_EXTENSIONS.get(ext)
    if fmt is None:
        raise ValueError(f"unsupported image extension: {extension!r}")
    fields = fields or NameFields()
    target_dir = Path(folder)
    if subfolder_pattern:
        sub = sanitize_filename_part(apply_pattern(subfolder_pattern, fields), replace_spaces=False)
        if sub.strip(". "):  # never "." or "..": the subfolder stays a child of the folder
            target_dir /= sub
    target_dir.mkdir(parents=True, exist_ok=True)
    output_paths.inside(Path(folder), target_dir)
    data = encode(image, fmt, infotext, extra_info or {}, jpeg_quality)
    exif_dropped = infotext is not None and not _exif_fits(fmt, infotext)
    if forced_filename is not None:
        decoration, add_number = sanitize_filename_part(forced_filename, replace_spaces=False), False
    else:
        # Values are sanitised where they are expanded; the pattern's own text may not hold a path either.
        decoration = output_paths.name_part(apply_pattern(pattern, fields) + suffix)
    # A1111 numbers the file whenever the pattern expands to nothing, or the name would be ".png".
    add_number = add_number or not decoration
    text = infotext.encode("utf-8") if infotext is not None and (save_txt or exif_dropped) else None
    return _store(data, target_dir, decoration, basename, add_number, ext, text)


def _store(
    data: bytes, folder: Path, decoration: str, basename: str, add_number: bool, ext: str, text: bytes | None
) -> Path:
    """Publish the image under the first free name (and its .txt beside it, when asked); a name whose
    .txt already exists is skipped, so neither file ever replaces another."""
    tmp = _write_temp(folder, data, f".{ext}")
    tmp_text = _write_temp(folder, text, ".txt") if text is not None else None
    try:
        with _folder_lock(folder):
            for name in _candidate_names(folder, decoration, basename, add_number, ext):
                target = output_paths.inside(folder, folder / name)
                if tmp_text is not None and target.with_suffix(".txt").exists():
                    continue
                if not _publish(tmp, target):
                    continue
                if tmp_text is not None and not _publish(tmp_text, target.with_suffix(".txt")):
                    target.unlink()  # the .txt name was taken in the meantime: try the next name
                    continue
                return target
    finally:
        tmp.unlink(missing_ok=True)
        if tmp_text is not None:
            tmp_text.unlink(missing_ok=True)


def read_info_from_image(image: Image.Image) -> tuple[str | None, dict[str, object]]:
    """The parameters text of an image (PNG chunk, EXIF UserComment, GIF comment) and its other items."""
    items = dict(image.info or {})
    geninfo = items.pop("parameters", None)
    if "exif" in items:
        comment = _exif_comment(items.pop("exif"))
        if comment:
            geninfo = comment
    elif "comment" in items:
        comment = items["comment"]
        geninfo = comment.decode("utf-8", errors="ignore") if isinstance(comment, bytes) else str(comment)
    for key in IGNORED_INFO_KEYS:
        items.pop(key, None)
    if items.get("Software") == "NovelAI":
        geninfo = _novelai_infotext(items, image.size) or geninfo
    return geninfo, items


def _exif_comment(exif_data: object) -> str:
    exif = Image.Exif()
    try:
        exif.load(exif_data if isinstance(exif_data, bytes) else b"")
        raw = exif.get_ifd(EXIF_IFD_POINTER).get(EXIF_USER_COMMENT, b"")
    except (OSError, SyntaxError, ValueError, struct.error):
        return ""
    return decode_user_comment(raw) if isinstance(raw, bytes | str) else ""


def _novelai_infotext(items: Mapping[str, object], size: tuple[int, int]) -> str | None:
    # NovelAI keeps the prompt in "Description" and settings as JSON in "Comment"; A1111 converts
    # them and adds the Clip skip 2 / ENSD 31337 that NovelAI's model always used.
    try:
        info = json.loads(str(items["Comment"]))
        sampler = canonical_sampler_name(str(info["sampler"]))
        if sampler not in KNOWN_SAMPLERS:
            sampler = "Euler a"  # an unknown NovelAI sampler: A1111 falls back to Euler a
        return (
            f"{items['Description']}\nNegative prompt: {info['uc']}\n"
            f"Steps: {info['steps']}, Sampler: {sampler}, CFG scale: {info['scale']}, "
            f"Seed: {info['seed']}, Size: {size[0]}x{size[1]}, Clip skip: 2, ENSD: 31337"
        )
    except (KeyError, ValueError, TypeError):
        return None


def grid_layout(
    count: int, rows: int = -1, batch_size: int = 1, prevent_empty_spots: bool = False
) -> tuple[int, int]:
    """Rows and columns of a grid of ``count`` images, as A1111 chooses them.

    rows > 0: that many; rows == 0: one row per batch; rows < 0: automatic, about square
    (with ``prevent_empty_spots``, the largest row count <= sqrt that divides ``count``).
    """
    if count <= 0:
        raise ValueError("a grid needs at least one image")
    if rows == 0:
        rows = batch_size
    elif rows < 0 and prevent_empty_spots:
        rows = math.floor(math.sqrt(count))
        while count % rows != 0:
            rows -= 1
    elif rows < 0:
        rows = round(math.sqrt(count))
    rows = max(1, min(rows, count))
    return rows, math.ceil(count / rows)


def image_grid(
    images: Sequence[Image.Image], rows: int = -1, batch_size: int = 1, prevent_empty_spots: bool = False
) -> Image.Image:
    """Paste images row by row onto a black canvas sized by the first image, as A1111 does."""
    n_rows, n_cols = grid_layout(len(images), rows, batch_size, prevent_empty_spots)
    w, h = images[0].size
    grid = Image.new("RGB", (n_cols * w, n_rows * h), color="black")
    for i, img in enumerate(images):
        grid.paste(img, box=(i % n_cols * w, i // n_cols * h))
    return grid


def append_log(log_path: str | os.PathLike[str], row: Mapping[str, object]) -> None:
    """Append one save to log.csv (A1111's columns), writing the header first if the file is new.

    An older log with fewer columns gets the current header and empty cells, as A1111 upgrades it.
    """
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _folder_lock(path.parent):
        _upgrade_log(path)
        new = not path.exists() or path.stat().st_size == 0
        with open(path, "a", encoding="utf8", newline="") as out:
            writer = csv.writer(out)
            if new:
                writer.writerow(LOG_FIELDS)
            writer.writerow(["" if row.get(k) is None else row.get(k) for k in LOG_FIELDS])


def _upgrade_log(path: Path) -> None:
    if not path.exists():
        return
    with open(path, encoding="utf8", newline="") as src:
        rows = list(csv.reader(src))
    if not rows or len(rows[0]) == len(LOG_FIELDS):
        return
    rows[0] = list(LOG_FIELDS)
    for r in rows[1:]:
        r.extend([""] * (len(LOG_FIELDS) - len(r)))
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    tmp = _write_temp(path.parent, buf.getvalue().encode("utf8"), ".csv")
    os.replace(tmp, path)
