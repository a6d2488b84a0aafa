"""Build the CLIP BPE tokenizer files that ship in assets/tokenizers/.

The byte-pair merges list of CLIP (``bpe_simple_vocab_16e6.txt.gz``) is published inside the
open-clip-torch wheel on PyPI. This script downloads that wheel with pip (without installing it),
reads the merges list and writes the Hugging Face layout (vocab.json, merges.txt and the tokenizer
settings) for the two text-encoder families Stable Diffusion uses:

* ``clip-vit-large-patch14``: SD 1.x and SDXL's first encoder; pads with ``<|endoftext|>``.
* ``open-clip-vit-h-14``: SD 2.x and SDXL's second encoder; same vocabulary, pads with ``!`` (id 0).

Run once: ``python scripts/build_tokenizer.py``; the output is committed, so users never need it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "tokenizers"
WHEEL = "open-clip-torch==3.3.0"
MERGES_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
VOCAB_SIZE = 49408


def byte_alphabet() -> list[str]:
    """The 256 printable characters that stand for bytes in byte-level BPE, in CLIP's order."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    # CLIP lists the printable bytes first, then the remapped ones, in this order.
    ordered = printable + [b for b in range(256) if b not in printable]
    return [chars[b] for b in ordered]


def read_merges(merges_gz: bytes) -> list[str]:
    lines = gzip.decompress(merges_gz).decode("utf-8").split("\n")
    # Line 0 is a version header; CLIP keeps exactly the merges that fill its 49408-token vocabulary
    # next to the 512 byte tokens and the two special tokens.
    return lines[1 : 1 + VOCAB_SIZE - 512 - 2]


def build_vocab(merges: list[str]) -> dict[str, int]:
    alphabet = byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet]
    tokens += ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    if len(tokens) != VOCAB_SIZE:
        raise SystemExit(f"vocabulary has {len(tokens)} entries, expected {VOCAB_SIZE}")
    return {t: i for i, t in enumerate(tokens)}


def tokenizer_config(pad_token: str) -> dict:
    return {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": pad_token,
        "do_lower_case": True,
        "errors": "replace",
        "clean_up_tokenization_spaces": False,
        "add_prefix_space": False,
    }


def write_tokenizer(folder: Path, vocab: dict[str, int], merges: list[str], pad_token: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = tokenizer_config(pad_token)
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")


def fetch_merges_gz() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, WHEEL], check=True
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(MERGES_MEMBER)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merges-gz", type=Path, help="use this bpe_simple_vocab_16e6.txt.gz instead of pip")
    args = parser.parse_args()
    data = args.merges_gz.read_bytes() if args.merges_gz else fetch_merges_gz()
    merges = read_merges(data)
    vocab = build_vocab(merges)
    write_tokenizer(OUT / "clip-vit-large-patch14", vocab, merges, pad_token="<|endoftext|>")
    write_tokenizer(OUT / "open-clip-vit-h-14", vocab, merges, pad_token="!")
    print(f"wrote {len(vocab)} tokens and {len(merges)} merges to {OUT}")


if __name__ == "__main__":
    main()
