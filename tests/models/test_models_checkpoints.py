"""Discovery of checkpoints in the user's folders, titles, and lookup by what users type."""

from __future__ import annotations

import hashlib

from modules.models import checkpoints
from modules.models.hashes import HashCache


def _layout(root):  # noqa: ANN001, ANN202
    (root / "sub").mkdir(parents=True)
    (root / "a.safetensors").write_bytes(b"a" * 100)
    (root / "sub" / "b.ckpt").write_bytes(b"b" * 0x110000)  # long enough for a distinct legacy hash
    (root / "a.vae.pt").write_bytes(b"v")  # a VAE beside a checkpoint, not a checkpoint
    (root / "notes.txt").write_text("x")
    pipe = root / "pipe"
    (pipe / "unet").mkdir(parents=True)
    (pipe / "model_index.json").write_text("{}")
    (pipe / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"u")
    return root


def test_scan_lists_files_and_diffusers_folders(tmp_path) -> None:
    root = _layout(tmp_path / "Stable-diffusion")
    found = checkpoints.scan([root], HashCache(None))
    assert [c.name for c in found] == ["a.safetensors", "pipe", "sub/b.ckpt"]
    assert [c.title for c in found] == [c.name for c in found]  # no hash known yet


def test_a_file_or_diffusers_folder_given_itself_is_listed(tmp_path) -> None:
    root = _layout(tmp_path / "Stable-diffusion")
    elsewhere = tmp_path / "elsewhere" / "c.safetensors"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"c" * 10)
    found = checkpoints.scan([root, elsewhere, root / "pipe"], HashCache(None))
    assert [c.name for c in found] == ["a.safetensors", "c.safetensors", "pipe", "sub/b.ckpt"]
    assert checkpoints.find(found, str(elsewhere)).path == elsewhere  # --ckpt's path selects it


def test_titles_carry_short_hash_when_computed(tmp_path) -> None:
    root = _layout(tmp_path / "models")
    found = {c.name: c for c in checkpoints.scan([root], HashCache(None), compute_sha256=True)}
    expected = hashlib.sha256(b"a" * 100).hexdigest()
    assert found["a.safetensors"].title == f"a.safetensors [{expected[:10]}]"
    assert found["sub/b.ckpt"].model_name == "b"


def test_find_by_aliases(tmp_path) -> None:
    root = _layout(tmp_path / "models")
    found = checkpoints.scan([root], HashCache(None), compute_sha256=True)
    b = next(c for c in found if c.name == "sub/b.ckpt")
    for query in [
        b.title,
        "sub/b.ckpt",
        "b",
        b.sha256,
        b.short_hash,
        b.legacy_hash,
        "sub/b.ckpt [0123456789]",
    ]:
        assert checkpoints.find(found, query) is b, query
    assert checkpoints.find(found, "b.ck") is b  # shortest title containing the text
    assert checkpoints.find(found, "zzz") is None
