"""Batch img2img from a folder: names kept, parameters inside, masks by name, PNG info, one seed."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, PngImagePlugin

from modules.images import read_info_from_image
from modules.infotext import parse_infotext
from modules.processing import batch
from modules.processing.job import GenerationJob

from .scripts_helpers import tiny_runtime


def picture(colour) -> Image.Image:
    image = Image.new("RGB", (64, 64), colour)
    ImageDraw.Draw(image).rectangle((16, 16, 48, 48), fill=(250, 250, 250))
    return image


def base_job(**kw) -> GenerationJob:
    defaults = dict(
        prompt="a square", steps=2, width=64, height=64, seed=-1, sampler_name="Euler", denoising_strength=0.5
    )
    return GenerationJob(**{**defaults, **kw})


@pytest.fixture
def folders(tmp_path):
    source, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    (source / "sub").mkdir(parents=True)
    masks.mkdir()
    picture((200, 30, 30)).save(source / "first.png")
    picture((30, 200, 30)).save(source / "sub" / "second.jpg")
    (source / "notes.txt").write_text("not an image")
    (source / "broken.png").write_bytes(b"not a png")
    return source, masks, out


def test_image_files_and_masks(folders, tmp_path):
    source, _, _ = folders
    assert [p.name for p in batch.image_files(source)] == ["broken.png", "first.png", "second.jpg"]
    assert (
        batch.find_mask([tmp_path / "a.png", tmp_path / "first.webp"], source / "first.png").name
        == "first.webp"
    )
    assert batch.find_mask([tmp_path / "only.png"], source / "x.png").name == "only.png"
    with pytest.raises(ValueError, match="input_dir"):
        batch.image_files(tmp_path / "missing")


def test_output_settings_keep_the_name():
    options = batch.BatchOptions("in", output_dir="out")
    assert batch.output_settings(options, base_job(), "cat")["samples_filename_pattern"] == "cat"
    several = batch.output_settings(options, base_job(n_iter=2), "cat")
    assert several["samples_filename_pattern"] == "cat-[generation_number]"
    assert batch.output_settings(batch.BatchOptions("in"), base_job(), "cat") == {}


@pytest.mark.slow
def test_batch_keeps_names_and_parameters(folders, tmp_path, tiny_bundle):
    source, _, out = folders
    runtime = tiny_runtime(tmp_path / "data", tiny_bundle)
    done = batch.run_batch(runtime, base_job(), batch.BatchOptions(source, output_dir=out))
    assert sorted(p.name for p in out.iterdir()) == ["first.png", "second.png"]
    assert [p.name for p in done.processed] == ["first.png", "second.jpg"]
    assert len(done.skipped) == 1 and done.skipped[0].startswith("broken.png")
    seeds = set(done.result.seeds)
    assert len(seeds) == 1  # one seed for the whole folder
    text, _ = read_info_from_image(Image.open(out / "first.png"))
    params = parse_infotext(text)
    assert params["Prompt"] == "a square" and params["Denoising strength"] == "0.5"
    assert params["Seed"] == str(seeds.pop())
    assert len(done.result.images) == 2 and not (tmp_path / "data" / "outputs" / "img2img-images").exists()


@pytest.mark.slow
def test_batch_masks_by_name_and_png_info(folders, tmp_path, tiny_bundle):
    source, masks, out = folders
    (source / "broken.png").unlink()
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 31, 63), fill=255)
    mask.save(masks / "first.png")
    mask.save(masks / "unrelated.png")  # with one mask only, it would be used for every image
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters", "a cat\nNegative prompt: dark\nSteps: 3, Sampler: Euler a, CFG scale: 4, Seed: 77"
    )
    picture((0, 0, 200)).save(source / "first.png", pnginfo=info)
    runtime = tiny_runtime(tmp_path / "data", tiny_bundle)
    options = batch.BatchOptions(source, output_dir=out, mask_dir=masks, use_png_info=True)
    done = batch.run_batch(runtime, base_job(), options)
    assert [p.name for p in done.processed] == ["first.png"]
    assert done.skipped == [f"second.jpg: no mask named second.* in {masks}"]
    params = parse_infotext(done.result.infotexts[0])
    assert (
        params["Prompt"],
        params["Negative prompt"],
        params["Seed"],
        params["Steps"],
        params["Sampler"],
    ) == ("a square a cat", "dark", "77", "3", "Euler a")
    assert params["Mask blur"] == "4"
    result = Image.open(out / "first.png").convert("RGB")
    assert result.getpixel((60, 2)) == (0, 0, 200)  # unmasked right half: the original pixels


@pytest.mark.slow
def test_batch_in_a_queued_task_is_one_bar(folders, tmp_path, tiny_bundle):
    """As the UI runs it (inside its task): the bar goes on from image to image, never restarts."""
    source, _, out = folders
    runtime = tiny_runtime(tmp_path / "data", tiny_bundle)
    seen = []

    def on_image(path, done):
        report = runtime.progress.report()
        seen.append((report.job_no, report.job_count, report.progress))

    options = batch.BatchOptions(source, output_dir=out)
    task = runtime.queue.submit(lambda: batch.run_batch(runtime, base_job(n_iter=2), options, on_image))
    done = task.future.result(timeout=120)
    assert len(done.processed) == 2
    # Three files forecast (one turns out unreadable), two batches each: 6; the second file's
    # batches come after the first's.
    assert [(job, count) for job, count, _ in seen] == [(1, 6), (3, 6)]
    assert seen[0][2] < seen[1][2]
