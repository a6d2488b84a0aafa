"""The interrogator end to end on tiny random BLIP and CLIP folders loaded by transformers."""

from __future__ import annotations

import shutil

import pytest
import torch
from PIL import Image

from modules import cmd_args
from modules.interrogate import Interrogator, MissingModel, models, phrases
from modules.interrogate.interrogator import SEPARATOR
from modules.runtime import Runtime
from tests.interrogate.helpers import BLIP_WORDS


def make_runtime(data_dir, clip=None, blip=None) -> Runtime:
    for source, kind in ((clip, "CLIP"), (blip, "BLIP")):
        if source is not None:
            shutil.copytree(source, data_dir / "models" / kind / source.name)
    return Runtime(cmd_args.parse(["--data-dir", str(data_dir), "--device", "cpu", "--no-bundled-models"]))


def picture(colour=(220, 40, 40), background=(40, 70, 220)) -> Image.Image:
    image = Image.new("RGB", (64, 64), background)
    image.paste(colour, (16, 16, 48, 48))
    return image


def general_lists() -> list[phrases.PhraseList]:
    return phrases.load_lists(phrases.DEFAULT_LISTS, None)


def test_blip_caption_then_one_phrase_per_list(tmp_path, tiny_clip_dir, tiny_blip_dir):
    runtime = make_runtime(tmp_path, tiny_clip_dir, tiny_blip_dir)
    text = runtime.interrogate(picture())
    lists = general_lists()
    parts = text.split(SEPARATOR)
    tops = sum(pl.top for pl in lists)
    assert len(parts) == 1 + tops, text
    assert set(parts[0].split()) <= set(BLIP_WORDS), "the first part is the BLIP caption"
    assert parts[0], "min_length 24 makes the tiny BLIP say something"
    position = 1
    for phrase_list in lists:  # in list order, each list's own phrases
        assert set(parts[position : position + phrase_list.top]) <= set(phrase_list.phrases)
        position += phrase_list.top
    assert runtime.interrogator.clip is None and runtime.interrogator.blip is None, "unloaded after use"


def test_fast_mode_takes_each_lists_best_phrases(tmp_path, tiny_clip_dir):
    runtime = make_runtime(tmp_path, tiny_clip_dir)
    image = picture()
    text = runtime.interrogate(image, "fast")
    clip = models.load_clip(tiny_clip_dir, torch.device("cpu"))
    target = models.image_features(clip, image)
    expected = []
    for phrase_list in general_lists():
        scores = [float(s) for s in models.text_features(clip, list(phrase_list.phrases)) @ target]
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[: phrase_list.top]
        expected += [phrase_list.phrases[i] for i in ranked]
    assert text == SEPARATOR.join(expected)


def test_best_mode_adds_only_phrases_that_raise_similarity(tmp_path, tiny_clip_dir):
    runtime = make_runtime(tmp_path, tiny_clip_dir)
    image = picture()
    text = runtime.interrogate(image, "best")
    parts = text.split(SEPARATOR)
    assert 1 <= len(parts) <= runtime.options["interrogate_best_max_phrases"]
    assert len(set(parts)) == len(parts)
    known = {p for pl in general_lists() for p in pl.phrases}
    assert set(parts) <= known
    clip = models.load_clip(tiny_clip_dir, torch.device("cpu"))
    target = models.image_features(clip, image)
    prefixes = [SEPARATOR.join(parts[: i + 1]) for i in range(len(parts))]
    scores = [float(s) for s in models.text_features(clip, prefixes) @ target]
    assert all(b > a for a, b in zip(scores, scores[1:], strict=False)), scores


def test_text_features_cached_on_disk_and_reused(tmp_path, tiny_clip_dir):
    runtime = make_runtime(tmp_path, tiny_clip_dir)
    first = runtime.interrogate(picture())
    count = sum(len(pl.phrases) for pl in general_lists())
    assert runtime.interrogator.encoded_texts == count
    cache = tmp_path / "cache" / "interrogate"
    files = sorted(cache.glob("*.safetensors"))
    assert len(files) == len(general_lists())
    stamps = [f.stat().st_mtime_ns for f in files]
    # A second run, in a fresh interrogator (as after a restart): nothing encoded, same answer.
    fresh = Interrogator(runtime.interrogator.folders, runtime.models.hash_cache)
    runtime.interrogator = fresh
    assert runtime.interrogate(picture()) == first
    assert fresh.encoded_texts == 0
    assert [f.stat().st_mtime_ns for f in files] == stamps
    # A list the user extends is encoded again, and only that list.
    (tmp_path / "interrogate").mkdir()
    (tmp_path / "interrogate" / "mediums.txt").write_text("a red square on blue\n", encoding="utf-8")
    runtime.interrogate(picture())
    mediums = next(pl for pl in phrases.load_lists(["mediums"], tmp_path / "interrogate"))
    assert fresh.encoded_texts == len(mediums.phrases)
    assert mediums.phrases[-1] == "a red square on blue"


def test_a_damaged_cache_file_is_re_encoded(tmp_path, tiny_clip_dir):
    runtime = make_runtime(tmp_path, tiny_clip_dir)
    first = runtime.interrogate(picture())
    for file in (tmp_path / "cache" / "interrogate").glob("*.safetensors"):
        file.write_bytes(b"not a safetensors file")
    runtime.interrogator = Interrogator(runtime.interrogator.folders, runtime.models.hash_cache)
    assert runtime.interrogate(picture()) == first
    assert runtime.interrogator.encoded_texts > 0


def test_user_lists_extend_and_add(tmp_path):
    user = tmp_path / "lists"
    user.mkdir()
    (user / "mediums.txt").write_text("a crayon drawing\nan oil painting\n\n", encoding="utf-8")
    (user / "moods.top2.txt").write_text("calm\nbusy\ncalm\n", encoding="utf-8")
    lists = {pl.name: pl for pl in phrases.load_lists(["mediums", "artists"], user)}
    assert list(lists) == ["mediums", "artists", "moods"]
    assert lists["mediums"].phrases[-1] == "a crayon drawing"
    assert lists["mediums"].phrases.count("an oil painting") == 1
    assert lists["moods"].phrases == ("calm", "busy") and lists["moods"].top == 2
    assert all(len(pl.phrases) <= 3 for pl in phrases.load_lists(["mediums"], user, limit=3))


def test_missing_clip_says_which_folder_to_fill(tmp_path):
    runtime = make_runtime(tmp_path)
    with pytest.raises(MissingModel, match="no CLIP model") as caught:
        runtime.interrogate(picture())
    assert str(tmp_path / "models" / "CLIP") in str(caught.value)


def test_named_models_that_are_missing_are_errors(tmp_path, tiny_clip_dir):
    runtime = make_runtime(tmp_path, tiny_clip_dir)
    runtime.options.set("interrogate_blip_model", "blip-large")
    with pytest.raises(MissingModel, match="BLIP model 'blip-large' not found") as caught:
        runtime.interrogate(picture())
    assert str(tmp_path / "models" / "BLIP" / "blip-large") in str(caught.value)
    runtime.options.set("interrogate_blip_model", "")
    runtime.options.set("interrogate_clip_model", "nope")
    with pytest.raises(MissingModel, match="CLIP model 'nope' not found"):
        runtime.interrogate(picture())


def test_keep_models_in_memory(tmp_path, tiny_clip_dir):
    runtime = make_runtime(tmp_path, tiny_clip_dir)
    runtime.options.set("interrogate_keep_models_in_memory", True)
    runtime.interrogate(picture())
    assert runtime.interrogator.clip is not None
    runtime.options.set("interrogate_keep_models_in_memory", False)
    runtime.interrogate(picture())
    assert runtime.interrogator.clip is None


def test_unknown_mode_is_refused(tmp_path, tiny_clip_dir):
    runtime = make_runtime(tmp_path, tiny_clip_dir)
    with pytest.raises(ValueError, match="mode: 'slow'"):
        runtime.interrogate(picture(), "slow")


def test_batch_writes_captions_beside_images_and_never_overwrites(tmp_path, tiny_clip_dir):
    runtime = make_runtime(tmp_path / "data", tiny_clip_dir)
    folder = tmp_path / "pictures"
    (folder / "sub").mkdir(parents=True)
    picture().save(folder / "one.png")
    picture((40, 170, 60)).save(folder / "sub" / "two.jpg")
    picture().save(folder / "kept.png")
    (folder / "kept.txt").write_text("mine\n", encoding="utf-8")
    (folder / "broken.png").write_bytes(b"not an image")
    outside = tmp_path / "outside.txt"
    (folder / "link.png").write_bytes((folder / "one.png").read_bytes())
    (folder / "link.txt").symlink_to(outside)  # a caption written here would land outside the folder
    report = runtime.interrogate_folder(folder, None)
    assert sorted(p.name for p in report.written) == ["one.txt", "two.txt"]
    assert (folder / "sub" / "two.txt").read_text(encoding="utf-8").strip()
    assert (folder / "kept.txt").read_text(encoding="utf-8") == "mine\n"
    assert not outside.exists()
    assert sorted(s.split(":")[0] for s in report.skipped) == ["broken.png", "kept.png", "link.png"]
    assert runtime.interrogator.clip is None, "unloaded after the batch"
    # With an output folder the captions go there, at the images' relative places.
    out = tmp_path / "captions"
    report = runtime.interrogate_folder(folder, out)
    assert sorted(str(p.relative_to(out)) for p in report.written) == [
        "kept.txt",
        "link.txt",
        "one.txt",
        "sub/two.txt",
    ]


def test_batch_refuses_a_missing_folder(tmp_path, tiny_clip_dir):
    runtime = make_runtime(tmp_path, tiny_clip_dir)
    with pytest.raises(ValueError, match="input_dir"):
        runtime.interrogate_folder(tmp_path / "nowhere", None)
