"""Reading and writing state dicts: .safetensors, and .ckpt/.pt pickles through a restricted unpickler.

Reading keeps memory near the size of the weights that are kept: safetensors tensors are read one at a
time (only the keys a filter accepts), converted to the target dtype at once so the file's copy is freed,
and pickles are memory-mapped where their format allows. Pickles are read with ``weights_only=True`` and a
short allow-list, so a file that tries to run code is refused before anything in it executes.
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

StateDict = dict[str, torch.Tensor]
KeyFilter = Callable[[str], bool]

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
# Where a .ckpt keeps the string metadata a .safetensors header would hold (written by this project).
PICKLE_METADATA_KEY = "__metadata__"


class ModelFileError(ValueError):
    """A model file that is not what it claims (truncated, offsets past its end, a malformed header);
    the message names the file and what is wrong, and nothing of it has been loaded."""


class UnsafeCheckpointError(ModelFileError):
    """A pickle that references something other than tensors and plain containers."""


# Old training checkpoints carry numpy scalars and arrays (global_step, best scores); A1111's safe
# unpickler allows these too. The old "numpy.core" names are what pickles written before numpy 2 contain.
_NUMPY_GLOBALS = [
    (numpy._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
    (numpy._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
    numpy._core.multiarray.scalar,
    numpy._core.multiarray._reconstruct,
    numpy.ndarray,
    numpy.dtype,
    *(getattr(numpy.dtypes, name) for name in dir(numpy.dtypes) if name.endswith("DType")),
]


def read_state_dict(
    path: Path, dtype: torch.dtype | None = None, keep: KeyFilter | None = None
) -> tuple[StateDict, dict[str, str]]:
    """Tensors (floating ones cast to ``dtype``) and string metadata of a .safetensors or pickle file."""
    path = Path(path)
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        return _read_safetensors(path, dtype, keep)
    return _read_pickle(path, dtype, keep)


def read_keys(path: Path) -> list[str]:
    """Tensor names without reading the tensors (safetensors); pickles have to be loaded."""
    path = Path(path)
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        header, _ = safetensors_header(path)
        return [k for k in header if k != "__metadata__"]
    return list(_read_pickle(path, None, None)[0])


def _cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    if dtype is None or not tensor.is_floating_point():
        return tensor
    return tensor.to(dtype)


_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def safetensors_header(path: Path) -> tuple[dict, int]:
    """The header of a .safetensors file and its size, checked against the file before anything is
    allocated: the safetensors library validates it (offsets contiguous, the data exactly filling the
    file), and each tensor's shape must match its byte range. Raises ModelFileError naming the problem."""
    size = path.stat().st_size
    try:
        with safe_open(str(path), framework="pt"):
            pass  # opening validates the header against the file (it maps, reads nothing)
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{path.name}: not a valid .safetensors file ({error})") from None
    with open(path, "rb") as file:
        header_size = int.from_bytes(file.read(8), "little")
        try:
            header = json.loads(file.read(header_size))
        except (ValueError, UnicodeDecodeError) as error:
            raise ModelFileError(f"{path.name}: unreadable header ({error})") from None
    data_size = size - 8 - header_size
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if info.get("dtype") not in _SAFETENSORS_DTYPES:
            raise ModelFileError(
                f"{path.name}: tensor {key!r} has an unsupported dtype {info.get('dtype')!r}"
            )
        start, end = info["data_offsets"]
        count = math.prod(info["shape"])
        itemsize = torch.empty((), dtype=_SAFETENSORS_DTYPES[info["dtype"]]).element_size()
        if not 0 <= start <= end <= data_size or end - start != count * itemsize:
            raise ModelFileError(
                f"{path.name}: tensor {key!r} ({info['shape']}) does not fit its bytes {start}..{end} "
                f"of {data_size}; the file is truncated or corrupt"
            )
    return header, header_size


def _read_safetensors(
    path: Path, dtype: torch.dtype | None, keep: KeyFilter | None
) -> tuple[StateDict, dict]:
    # Read tensor by tensor into fresh (aligned, private) memory instead of memory-mapping: peak memory is
    # the kept weights plus one tensor, the file can change on disk afterwards, and results do not depend
    # on where in the file a tensor happened to sit (misaligned mmapped weights take other SIMD paths).
    # The library validates the header first; its get_tensor would then hold the file's copy and the
    # cast copy of each tensor at once, which this loop avoids.
    header, header_size = safetensors_header(path)
    with open(path, "rb") as file:
        metadata = header.pop("__metadata__", None) or {}
        out = {}
        for key, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            if keep is not None and not keep(key):
                continue
            start, end = info["data_offsets"]
            tensor = torch.empty(info["shape"], dtype=_SAFETENSORS_DTYPES[info["dtype"]])
            file.seek(8 + header_size + start)
            if end > start:
                file.readinto(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
            out[key] = _cast(tensor, dtype)
    return out, metadata


def _read_pickle(path: Path, dtype: torch.dtype | None, keep: KeyFilter | None) -> tuple[StateDict, dict]:
    loaded = _torch_load_restricted(path)
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path.name}: expected a dict of tensors, found {type(loaded).__name__}")
    metadata = loaded.get(PICKLE_METADATA_KEY) or {}
    # Training checkpoints nest the weights under "state_dict"; exported ones are the dict itself.
    state = loaded.get("state_dict", loaded)
    # Copy out of the memory map so the loaded weights do not depend on the file staying unchanged.
    out = {
        k: _owned(v, dtype)
        for k, v in state.items()
        if isinstance(v, torch.Tensor) and (keep is None or keep(k))
    }
    return out, {str(k): str(v) for k, v in metadata.items()}


def _owned(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    cast = _cast(tensor, dtype)
    return cast.clone() if cast is tensor else cast


def _torch_load_restricted(path: Path) -> object:
    try:
        with torch.serialization.safe_globals(_NUMPY_GLOBALS):
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as error:
                if "mmap" not in str(error):
                    raise
                # Files in torch's legacy (pre-1.6, non-zip) format cannot be memory-mapped.
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = next((line.strip() for line in str(error).splitlines() if "GLOBAL" in line), "")
        if not reason:
            raise ModelFileError(f"{path.name}: not a readable checkpoint ({error})") from None
        raise UnsafeCheckpointError(
            f"{path.name}: refused to load this pickle, it references code outside the allowed tensor "
            f"types and nothing in it was run. {reason} Convert it to .safetensors with a tool you trust "
            "if you trust its source."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ModelFileError(f"{path.name}: not a readable checkpoint ({error})") from None


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]) -> None:
    """Write .safetensors (tensors made contiguous) or, for other suffixes, a pickle with a state_dict key."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in state_dict.items()}
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        save_file(tensors, str(path), metadata=dict(metadata))
        if len(metadata) > 1:
            # The library writes metadata in hash-map order, different on every run: rewrite it sorted
            # so the same weights and metadata always give the same file (and hash). The same entries
            # reordered fit where the header was, so only the header is written again, not the weights.
            _sort_metadata_in_place(path, dict(sorted(metadata.items())))
    else:
        torch.save({"state_dict": tensors, PICKLE_METADATA_KEY: dict(metadata)}, path)


def replace_metadata(path: Path, metadata: Mapping[str, str]) -> None:
    """Give a .safetensors file new string metadata, its tensor bytes copied unchanged (only the header
    is rewritten, so the weights stay byte-identical; the file's hash changes). Atomic: written beside
    the file, then moved over it."""
    path = Path(path)
    header, header_size = safetensors_header(path)
    text = _header_bytes(header, metadata)
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes with spaces
    partial = path.with_name(path.name + ".partial")
    with open(path, "rb") as source, open(partial, "wb") as target:
        source.seek(8 + header_size)
        target.write(len(text).to_bytes(8, "little") + text)
        while chunk := source.read(1 << 20):
            target.write(chunk)
    partial.replace(path)


def _header_bytes(header: Mapping[str, object], metadata: Mapping[str, str]) -> bytes:
    """The header JSON with ``metadata`` as its string metadata, compact as the library writes it."""
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    return json.dumps({"__metadata__": dict(metadata), **tensors}, separators=(",", ":")).encode()


def _sort_metadata_in_place(path: Path, metadata: Mapping[str, str]) -> None:
    """Rewrite a file's header with ``metadata`` in the bytes the old header took (padded with spaces,
    as the format allows), leaving the tensor bytes where they are; when it does not fit (the library
    escaped text differently), the whole file is rewritten by ``replace_metadata``."""
    header, header_size = safetensors_header(path)
    text = _header_bytes(header, metadata)
    if len(text) > header_size:
        replace_metadata(path, metadata)
        return
    with open(path, "r+b") as file:
        file.seek(8)
        file.write(text + b" " * (header_size - len(text)))
