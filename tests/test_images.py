"""Tests for modules/images.py: names, numbering, atomic saving, metadata, grids, log.csv."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import struct
import threading
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from modules.images import (
    LOG_FIELDS,
    NameFields,
    append_log,
    apply_pattern,
    decode_user_comment,
    exif_user_comment,
    grid_layout,
    image_grid,
    next_sequence_number,
    read_info_from_image,
    sanitize_filename_part,
    save_image,
)

INFOTEXT = 'a "cat", 猫 🐱\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, Seed: 42, Size: 16x16'
FIXED_NOW = dt.datetime(2024, 5, 17, 13, 45, 9)


def _image(color: str = "red", mode: str = "RGB") -> Image.Image:
    return Image.new(mode, (16, 16), color)


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[seed]-[prompt_words]", "42-a cat sitting on a red mat with"),
        ("[prompt]", "a_cat_sitting_on_a_red_mat,_with_two_dogs!"),
        ("[prompt_spaces]", "a cat sitting on a red mat, with two dogs!"),
        ("[steps]-[cfg]-[width]x[height]", "20-7.5-512x768"),
        ("[sampler]", "DPM++ 2M"),
        ("[sampler_scheduler]", "DPM++ 2M Karras"),
        ("[model_name]-[model_hash]", "dreamshaper_8-879db523c3"),
        ("[date]", "2024-05-17"),
        ("[datetime]", "20240517134509"),
        ("[datetime<%Y/%m>]", "2024_05"),
        ("[styles]", "Cinematic, Film"),
        ("x[batch_number]y", "y"),  # batch of one: the tag and the text before it vanish
        ("[generation_number]", ""),
        ("[unknown_tag]-[seed]", "[unknown_tag]-42"),
        ("[SEED]", "42"),
        ("[none]", ""),
    ],
)
def test_apply_pattern(pattern, expected):
    fields = NameFields(
        seed=42,
        prompt="a cat sitting on a red mat, with two dogs!",
        steps=20,
        cfg_scale=7.5,
        width=512,
        height=768,
        sampler="DPM++ 2M",
        scheduler="Karras",
        model_name="dreamshaper_8",
        model_hash="879db523c3",
        styles=("Cinematic", "Film", "None"),
        now=FIXED_NOW,
    )
    assert apply_pattern(pattern, fields) == expected


def test_prompt_hash():
    fields = NameFields(prompt="cat", negative_prompt="dog")
    assert apply_pattern("[prompt_hash<4>]", fields) == hashlib.sha256(b"cat").hexdigest()[:4]
    assert apply_pattern("[prompt_hash]", fields) == hashlib.sha256(b"cat").hexdigest()[:8]
    assert apply_pattern("[full_prompt_hash]", fields) == hashlib.sha256(b"cat dog").hexdigest()[:8]


def test_batch_and_generation_numbers():
    f = NameFields(batch_index=1, batch_size=4, iteration=2, n_iter=3)
    assert apply_pattern("b[batch_number]-g[generation_number]", f) == "b2-g10"


def test_prompt_no_styles():
    f = NameFields(prompt="masterpiece, a fox, cinematic lighting", style_prompts=("masterpiece, {prompt}",))
    assert apply_pattern("[prompt_no_styles]", f) == "a fox, cinematic lighting"


def test_prompt_words_empty_prompt():
    assert apply_pattern("[prompt_words]", NameFields(prompt="!!! ...")) == "empty"


@pytest.mark.parametrize(
    ("text", "spaces", "expected"),
    [
        ('a/b\\c:d*e?f"g<h>i|j#k', True, "a_b_c_d_e_f_g_h_i_j_k"),
        ("  lead and trail. . ", False, "lead and trail"),
        ("tab\there\nnl", True, "tab_here_nl"),
    ],
)
def test_sanitize(text, spaces, expected):
    assert sanitize_filename_part(text, replace_spaces=spaces) == expected


def test_sanitize_caps_length():
    assert len(sanitize_filename_part("x" * 500)) == 128


def test_next_sequence_number(tmp_path):
    assert next_sequence_number(tmp_path) == 0
    for name in ("00007-1-cat.png", "00003.jpg", "log.csv", "notes-12.txt", "00010-x.webp"):
        (tmp_path / name).write_bytes(b"")
    assert next_sequence_number(tmp_path) == 11
    (tmp_path / "grid-0042.png").write_bytes(b"")
    assert next_sequence_number(tmp_path, "grid") == 43


# ---------------------------------------------------------------- saving


def test_save_numbers_and_names(tmp_path):
    f = NameFields(seed=7, prompt="a red cube")
    first = save_image(_image(), tmp_path, fields=f)
    second = save_image(_image(), tmp_path, fields=f)
    grid = save_image(_image(), tmp_path, basename="grid", fields=f, pattern="[seed]")
    assert first.name == "00000-7-a red cube.png"
    assert second.name == "00001-7-a red cube.png"
    assert grid.name == "grid-0000-7.png"


def test_never_overwrites(tmp_path):
    taken = tmp_path / "00000-7.png"
    taken.write_bytes(b"precious")
    path = save_image(_image(), tmp_path, fields=NameFields(seed=7), pattern="[seed]")
    assert path.name == "00001-7.png"
    forced1 = save_image(_image(), tmp_path, forced_filename="fixed")
    forced2 = save_image(_image(), tmp_path, forced_filename="fixed")
    assert (forced1.name, forced2.name) == ("fixed.png", "fixed-1.png")
    assert taken.read_bytes() == b"precious"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_empty_pattern_gets_number(tmp_path):
    path = save_image(_image(), tmp_path, pattern="", add_number=False)
    assert path.name == "00000.png"


def test_long_unicode_name_fits(tmp_path):
    path = save_image(_image(), tmp_path, fields=NameFields(prompt="猫" * 300), pattern="[prompt]" * 3)
    assert len(path.name.encode()) <= 255
    assert path.exists() and path.suffix == ".png"


def test_subfolder_pattern(tmp_path):
    path = save_image(_image(), tmp_path, fields=NameFields(now=FIXED_NOW), subfolder_pattern="[date]")
    assert path.parent == tmp_path / "2024-05-17"


def test_unsupported_extension(tmp_path):
    with pytest.raises(ValueError):
        save_image(_image(), tmp_path, extension="bmp")


def test_concurrent_saves_are_distinct_and_complete(tmp_path):
    threads_n, per_thread = 8, 6
    results: list[Path] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads_n)

    def worker(i: int) -> None:
        barrier.wait()
        for j in range(per_thread):
            img = Image.new("RGB", (64, 64), (i * 30, j * 40, 7))
            path = save_image(
                img,
                tmp_path,
                infotext=f"{INFOTEXT}, Worker: {i}-{j}",
                pattern="[seed]",
                fields=NameFields(seed=i * 100 + j),  # distinct names: numbers alone must not collide
            )
            with lock:
                results.append(path)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == threads_n * per_thread
    numbers = sorted(int(p.name.split("-")[0]) for p in results)
    assert numbers == list(range(threads_n * per_thread))
    for path in results:
        with Image.open(path) as img:
            img.load()  # a truncated file fails here
            info, _ = read_info_from_image(img)
        assert info is not None and info.startswith(INFOTEXT)
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in results)


# ---------------------------------------------------------------- metadata


def test_png_round_trip_with_extra_items(tmp_path):
    path = save_image(_image(), tmp_path, infotext=INFOTEXT, extra_info={"postprocessing": "Upscale: 2"})
    with Image.open(path) as img:
        info, items = read_info_from_image(img)
    assert info == INFOTEXT
    assert items == {"postprocessing": "Upscale: 2"}


@pytest.mark.parametrize("ext", ["jpg", "jpeg", "webp"])
def test_exif_round_trip(tmp_path, ext):
    path = save_image(_image(mode="RGBA"), tmp_path, extension=ext, infotext=INFOTEXT)
    with Image.open(path) as img:
        info, items = read_info_from_image(img)
        assert img.format in ("JPEG", "WEBP")
    assert info == INFOTEXT
    assert "exif" not in items


def test_exif_layout_is_piexif_like():
    data = exif_user_comment("Hi")
    assert data.startswith(b"Exif\x00\x00MM\x00\x2a")
    tiff = data[6:]
    (ifd0,) = struct.unpack(">I", tiff[4:8])
    tag, typ, count, exif_ifd = struct.unpack(">HHII", tiff[ifd0 + 2 : ifd0 + 14])
    assert (tag, typ, count) == (0x8769, 4, 1)
    tag, typ, count, offset = struct.unpack(">HHII", tiff[exif_ifd + 2 : exif_ifd + 14])
    assert (tag, typ) == (0x9286, 7)  # UserComment, UNDEFINED
    assert tiff[offset : offset + count] == b"UNICODE\x00\x00H\x00i"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"UNICODE\x00" + "Steps: 20, 猫".encode("utf-16-be"), "Steps: 20, 猫"),
        (b"UNICODE\x00" + "Steps: 20, 猫".encode("utf-16-le"), "Steps: 20, 猫"),
        (b"ASCII\x00\x00\x00Steps: 5", "Steps: 5"),
        (b"\x00" * 8 + b"Steps: 6\x00", "Steps: 6"),
        (b"already text", "already text"),
    ],
)
def test_decode_user_comment(raw, expected):
    assert decode_user_comment(raw) == expected


def test_read_exif_written_by_pillow_little_endian():
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + "Steps: 3, Seed: 1".encode("utf-16-le")
    buf = io.BytesIO()
    _image().save(buf, format="JPEG", exif=exif.tobytes())
    buf.seek(0)
    with Image.open(buf) as img:
        assert read_info_from_image(img)[0] == "Steps: 3, Seed: 1"


def test_large_jpeg_infotext_goes_to_txt(tmp_path):
    big = "word, " * 7000 + "\nSteps: 1, Seed: 2, CFG scale: 3"
    path = save_image(_image(), tmp_path, extension="jpg", infotext=big)
    assert path.with_suffix(".txt").read_text(encoding="utf-8") == big
    with Image.open(path) as img:
        assert read_info_from_image(img)[0] is None


def test_save_txt_sidecar(tmp_path):
    path = save_image(_image(), tmp_path, infotext=INFOTEXT, save_txt=True)
    assert path.with_suffix(".txt").read_text(encoding="utf-8") == INFOTEXT


def test_novelai_png():
    comment = {"steps": 28, "sampler": "k_euler_ancestral", "scale": 11, "seed": 123, "uc": "lowres, bad"}
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "NovelAI")
    info.add_text("Description", "1girl, solo")
    info.add_text("Comment", json.dumps(comment))
    buf = io.BytesIO()
    Image.new("RGB", (512, 768)).save(buf, format="PNG", pnginfo=info)
    buf.seek(0)
    with Image.open(buf) as img:
        text, items = read_info_from_image(img)
    assert text == (
        "1girl, solo\nNegative prompt: lowres, bad\n"
        "Steps: 28, Sampler: Euler a, CFG scale: 11, Seed: 123, Size: 512x768, Clip skip: 2, ENSD: 31337"
    )
    assert items["Software"] == "NovelAI"


def test_gif_comment():
    buf = io.BytesIO()
    _image().save(buf, format="GIF", comment=b"Steps: 9, Seed: 1, CFG scale: 2")
    buf.seek(0)
    with Image.open(buf) as img:
        assert read_info_from_image(img)[0] == "Steps: 9, Seed: 1, CFG scale: 2"


# ---------------------------------------------------------------- grids and log


@pytest.mark.parametrize(
    ("count", "rows", "batch", "prevent", "expected"),
    [
        (4, -1, 1, False, (2, 2)),
        (3, -1, 1, False, (2, 2)),
        (5, -1, 1, False, (2, 3)),
        (9, -1, 1, False, (3, 3)),
        (1, -1, 1, False, (1, 1)),
        (6, -1, 1, True, (2, 3)),
        (7, -1, 1, True, (1, 7)),
        (8, 0, 4, False, (4, 2)),
        (3, 5, 1, False, (3, 1)),
    ],
)
def test_grid_layout(count, rows, batch, prevent, expected):
    assert grid_layout(count, rows, batch, prevent) == expected


def test_image_grid_places_images():
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    grid = image_grid([Image.new("RGB", (10, 8), c) for c in colors])
    assert grid.size == (20, 16)
    assert grid.getpixel((5, 4)) == colors[0]
    assert grid.getpixel((15, 4)) == colors[1]
    assert grid.getpixel((5, 12)) == colors[2]
    assert grid.getpixel((15, 12)) == (0, 0, 0)


def test_append_log(tmp_path):
    log = tmp_path / "log.csv"
    append_log(log, {"prompt": "a, b", "seed": 1, "filename": "00000-1.png"})
    append_log(log, {"prompt": "c", "seed": 2, "sd_model_hash": "abc"})
    rows = list(csv.reader(log.open(encoding="utf8", newline="")))
    assert rows[0] == list(LOG_FIELDS)
    assert rows[1][:2] == ["a, b", "1"] and rows[1][7] == "00000-1.png"
    assert rows[2][0] == "c" and rows[2][-1] == "abc"


def test_append_log_upgrades_old_header(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(
        "prompt,seed,width,height,sampler,cfgs,steps,filename,negative_prompt\nold,5,1,1,E,7,20,f,n\n"
    )
    append_log(log, {"prompt": "new"})
    rows = list(csv.reader(log.open(encoding="utf8", newline="")))
    assert rows[0] == list(LOG_FIELDS)
    assert rows[1] == ["old", "5", "1", "1", "E", "7", "20", "f", "n", "", ""]
    assert rows[2][0] == "new"


def test_datetime_with_time_zone():
    f = NameFields(now=dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC))
    assert apply_pattern("[datetime<%H><Asia/Tokyo>]", f) == "21"
    assert apply_pattern("[datetime<%H><Not/AZone>]", f) == "12"
