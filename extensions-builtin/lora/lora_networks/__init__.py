"""LoRA and LyCORIS networks for ``<lora:name:weight>`` prompts: files, key mapping, weight patching."""

from .files import LoraFile, LoraLibrary, addnet_hash, read_metadata
from .handler import HASHES_KEY, HASHES_OPTION, LoraHandler
from .patcher import Network, Patcher
from .requests import LoraRequest, parse_args

__all__ = [
    "HASHES_KEY",
    "HASHES_OPTION",
    "LoraFile",
    "LoraHandler",
    "LoraLibrary",
    "LoraRequest",
    "Network",
    "Patcher",
    "addnet_hash",
    "parse_args",
    "read_metadata",
]
