"""X/Y/Z plot: value syntax, axis types, seeds, cell parameters, grid layout and its parameters text."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from modules.infotext import parse_infotext
from modules.lookup import Lookup
from modules.processing.job import GenerationJob
from modules.sampling.registry import default_registry

from .scripts_helpers import FakeContext, colour_of, load_scripts, module_of, script, tiny_runtime

REGISTRY = load_scripts(("xyz_grid",))
XYZ = script(REGISTRY, "X/Y/Z plot")
m = module_of(XYZ)


def values(label: str, text: str, mode: str = "txt2img") -> list:
    return m.parse_values(m.find_axis(mode, label), text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,2,3", [1, 2, 3]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("1-10 (+3)", [1, 4, 7, 10]),
        ("10-1 (-3)", [10, 7, 4]),  # the end is made inclusive with +1 even for negative steps (A1111)
        ("0-100 [5]", [0, 25, 50, 75, 100]),
        ("1-10 [4]", [1, 4, 7, 10]),
        ("1-2 [4]", [1, 1, 1, 2]),  # counts are truncated to int as A1111 does
        ("5, 1-3, 20", [5, 1, 2, 3, 20]),
        ("-5--3", [-5, -4, -3]),
        ("7,,8", [7, 8]),  # empty entries are skipped for numbers
    ],
)
def test_int_values(text, expected):
    assert values("Steps", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5, 2", [1.5, 2.0]),
        ("0-1 (+0.25)", [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("1-3", [1.0, 2.0, 3.0]),
        ("0-1 [5]", [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("2.5-5 [3]", [2.5, 3.75, 5.0]),
    ],
)
def test_float_values(text, expected):
    assert values("CFG Scale", text) == pytest.approx(expected)


def test_float_step_range_keeps_numpy_overshoot():
    # numpy.arange(0.1, 0.4, 0.1) has four values; A1111 plots all four, so we do too.
    assert len(values("CFG Scale", "0.1-0.3 (+0.1)")) == 4


def test_csv_quoting_and_strings():
    assert values("Prompt S/R", 'cat, "dog, black",  bird ') == ["cat", "dog, black", "bird"]


def test_bad_number_names_the_axis():
    with pytest.raises(ValueError, match="Steps"):
        values("Steps", "1, two")


def test_prompt_order_values_are_permutations():
    assert values("Prompt order", "a, b, c")[:3] == [("a", "b", "c"), ("a", "c", "b"), ("b", "a", "c")]
    assert len(values("Prompt order", "a, b, c")) == 6


def test_axis_by_label_or_a1111_index():
    assert m.find_axis("txt2img", 4).label == "Steps"
    assert m.find_axis("txt2img", "9").label == "Sampler"
    assert m.find_axis("img2img", 5).label == "CFG Scale"
    assert m.find_axis("img2img", "denoising").label == "Denoising"
    with pytest.raises(ValueError, match="Image CFG Scale"):
        m.find_axis("img2img", 6)
    with pytest.raises(ValueError, match="Hires steps"):
        m.find_axis("img2img", "Hires steps")


def test_seed_axis_draws_minus_one_once():
    option = m.find_axis("txt2img", "Seed")
    fixed = m.fix_seeds(option, [-1, 5, -1])
    assert fixed[1] == 5 and fixed[0] != -1 and fixed[2] != -1
    steps = m.find_axis("txt2img", "Steps")
    assert m.fix_seeds(steps, [-1]) == [-1]


def run(p, **kw):
    args = dict(x_type="Nothing", x_values="", y_type="Nothing", y_values="", z_type="Nothing", z_values="")
    args.update(kw)
    return XYZ.run(
        p,
        args.pop("x_type"),
        args.pop("x_values"),
        None,
        args.pop("y_type"),
        args.pop("y_values"),
        None,
        args.pop("z_type"),
        args.pop("z_values"),
        None,
        **args,
    )


def context(**kw) -> FakeContext:
    return FakeContext(
        GenerationJob(
            prompt="a cat in a hat", negative_prompt="blurry cat", steps=2, width=64, height=64, seed=-1, **kw
        )
    )


def test_cells_get_their_values_and_the_shared_seed():
    p = context()
    run(p, x_type="Steps", x_values="1-3", y_type="CFG Scale", y_values="5, 7.5")
    assert [(j.steps, j.cfg_scale) for j in p.jobs] == [
        (1, 5.0),
        (2, 5.0),
        (3, 5.0),
        (1, 7.5),
        (2, 7.5),
        (3, 7.5),
    ]
    assert {j.seed for j in p.jobs} == {p.seed}  # -1 resolved once: every cell has the same seed
    assert all(j.script_name is None for j in p.jobs)


def test_keep_minus_one_and_vary_seeds():
    p = context()
    run(p, x_type="Steps", x_values="1,2", no_fixed_seeds=True)
    assert [j.seed for j in p.jobs] == [-1, -1]
    p = context()
    run(
        p,
        x_type="Steps",
        x_values="1,2",
        y_type="CFG Scale",
        y_values="3,4",
        vary_seeds_x=True,
        vary_seeds_y=True,
    )
    assert [j.seed - p.seed for j in p.jobs] == [0, 1, 2, 3]


def test_seed_axis_values_and_fixed_values_in_parameters():
    p = context()
    result = run(p, x_type="Seed", x_values="-1, 10")
    drawn = p.jobs[0].seed
    assert [j.seed for j in p.jobs] == [drawn, 10]
    params = parse_infotext(result.infotexts[0])
    assert params["X Type"] == "Seed" and params["X Values"] == "-1, 10"
    assert params["Fixed X Values"] == f"{drawn}, 10"


def test_prompt_sr_replaces_in_prompt_and_negative():
    p = context()
    run(p, x_type="Prompt S/R", x_values="cat, dog, bird")
    assert [j.prompt for j in p.jobs] == ["a cat in a hat", "a dog in a hat", "a bird in a hat"]
    assert [j.negative_prompt for j in p.jobs] == ["blurry cat", "blurry dog", "blurry bird"]


def test_prompt_sr_missing_text_fails_before_any_cell():
    p = context()
    with pytest.raises(ValueError, match="did not find horse"):
        run(p, x_type="Steps", x_values="1,2", y_type="Prompt S/R", y_values="horse, cow")
    assert p.jobs == []


def test_prompt_order():
    p = FakeContext(GenerationJob(prompt="one, two, three", steps=2, width=64, height=64))
    run(p, x_type="Prompt order", x_values="one, three")
    assert [j.prompt for j in p.jobs] == ["one, two, three", "three, two, one"]


def test_sampler_by_alias_and_unknown_sampler():
    p = context()
    run(p, x_type="Sampler", x_values="k_euler, euler A, DPM++ 2M")
    assert [j.sampler_name for j in p.jobs] == ["Euler", "Euler a", "DPM++ 2M"]
    p = context()
    with pytest.raises(ValueError, match="unknown sampler"):
        run(p, x_type="Sampler", x_values="Euler, Nope")
    assert p.jobs == []


def test_other_axis_types_set_fields_and_settings():
    p = context()
    run(
        p,
        x_type="Size",
        x_values="64x96, 128x64",
        y_type="Clip skip",
        y_values="1, 2",
        z_type="RNG source",
        z_values="NV",
    )
    assert [(j.width, j.height, j.clip_skip) for j in p.jobs] == [
        (64, 96, 1),
        (128, 64, 1),
        (64, 96, 2),
        (128, 64, 2),
    ]
    assert all(j.override_settings["randn_source"] == "NV" for j in p.jobs)
    p = context()
    run(p, x_type="Schedule type", x_values="karras, Exponential", y_type="Styles", y_values="a, b")
    assert [j.scheduler for j in p.jobs[:2]] == ["Karras", "Exponential"]
    assert p.jobs[0].styles == ["a"] and p.jobs[1].styles == ["a"]


def test_invalid_value_for_the_job_fails_fast():
    p = context()
    with pytest.raises(ValueError, match="steps"):
        run(p, x_type="Steps", x_values="2, 0")
    assert p.jobs == []


def test_grid_layout_without_legend_is_exactly_the_cells():
    p = context()
    result = run(p, x_type="Steps", x_values="1-3", y_type="CFG Scale", y_values="5, 7.5", draw_legend=False)
    grid = result.images[0]
    assert grid.size == (3 * 64, 2 * 64)
    assert result.index_of_first_image == 1 and len(result.images) == 1
    # Cell (x=2, y=1) is the job with steps 3 and CFG 7.5.
    cell = np.asarray(grid)[64 + 32, 2 * 64 + 32]
    assert tuple(cell) == colour_of(p.jobs[5])


def test_legend_adds_label_bands_with_text():
    p = context()
    result = run(p, x_type="Steps", x_values="1, 2", y_type="CFG Scale", y_values="5, 7")
    grid = np.asarray(result.images[0])
    assert grid.shape[1] > 2 * 64 and grid.shape[0] > 2 * 64
    pad_top, pad_left = grid.shape[0] - 2 * 64, grid.shape[1] - 2 * 64
    assert pad_left == 64 * 3 // 4  # A1111: row labels get 3/4 of a cell
    top_band = grid[:pad_top, pad_left:]
    assert (top_band < 128).any() and (top_band > 200).any()  # dark text on white


def test_margins_between_cells():
    p = context()
    result = run(p, x_type="Steps", x_values="1, 2", y_type="CFG Scale", y_values="5, 7", margin_size=10)
    plain = run(context(), x_type="Steps", x_values="1, 2", y_type="CFG Scale", y_values="5, 7")
    assert result.images[0].width == plain.images[0].width + 10
    assert result.images[0].height == plain.images[0].height + 10


def test_sub_images_and_z_sub_grids():
    p = context()
    result = run(
        p,
        x_type="Steps",
        x_values="1, 2",
        y_type="CFG Scale",
        y_values="5, 7",
        z_type="Seed",
        z_values="1, 2, 3",
        include_lone_images=True,
        include_sub_grids=True,
        draw_legend=False,
    )
    assert len(p.jobs) == 12
    assert result.index_of_first_image == 4  # main grid + 3 sub grids
    assert len(result.images) == 4 + 12
    assert result.images[0].size == (3 * 128, 128)  # the sub grids side by side
    assert all(image.size == (128, 128) for image in result.images[1:4])
    texts = [parse_infotext(t) for t in result.infotexts[:4]]
    assert texts[0]["Z Type"] == "Seed" and texts[0]["Script"] == "X/Y/Z plot"
    assert [t.get("Seed") for t in texts[1:]] == ["1", "2", "3"]
    assert "Z Type" not in texts[1]
    assert [parse_infotext(t)["Steps"] for t in result.infotexts[4:8]] == ["1", "2", "1", "2"]


def test_costliest_axis_changes_slowest():
    class Models:
        def find(self, query):
            return type("Info", (), {"title": f"{query}.safetensors [abc]"})()

    p = context()
    p.runtime.models = Models()
    run(p, x_type="Checkpoint name", x_values="a, b", y_type="Steps", y_values="1, 2, 3")
    names = [j.override_settings["sd_model_checkpoint"] for j in p.jobs]
    assert names == ["a.safetensors [abc]"] * 3 + ["b.safetensors [abc]"] * 3


def test_interrupt_leaves_blank_cells():
    p = context()
    original = p.process_images

    def interrupt_after_first(job):
        p.runtime.progress.interrupt()
        return original(job)

    p.process_images = interrupt_after_first
    result = run(p, x_type="Steps", x_values="1, 2", draw_legend=False)
    assert len(p.jobs) == 1 and result.interrupted
    assert result.images[0].getpixel((64 + 5, 5)) == (0, 0, 0)


@pytest.mark.slow
def test_2x2_plot_on_the_tiny_model(tmp_path, tiny_bundle):
    runtime = tiny_runtime(tmp_path, tiny_bundle, REGISTRY)
    job = GenerationJob(
        prompt="a red square",
        steps=2,
        width=64,
        height=64,
        seed=3,
        sampler_name="Euler",
        script_name="X/Y/Z plot",
        script_args=["Steps", "1, 2", [], "CFG Scale", "3, 5", [], "Nothing", "", [], True, True],
    )
    result = runtime.txt2img(job)
    grid = result.images[0]
    assert grid.width > 128 and grid.height > 128  # 2x2 cells of 64 plus the label bands
    cells = [parse_infotext(t) for t in result.infotexts[1:]]
    assert [(c["Steps"], c["CFG scale"], c["Seed"]) for c in cells] == [
        ("1", "3.0", "3"),
        ("2", "3.0", "3"),
        ("1", "5.0", "3"),
        ("2", "5.0", "3"),
    ]
    assert all(image.size == (64, 64) for image in result.images[1:])
    grid_params = parse_infotext(result.infotexts[0])
    assert (grid_params["Script"], grid_params["X Type"], grid_params["Y Values"]) == (
        "X/Y/Z plot",
        "Steps",
        "3, 5",
    )
    saved_grids = list((tmp_path / "outputs" / "txt2img-grids").rglob("xyz_grid-*.png"))
    assert len(saved_grids) == 1
    assert "X Type: Steps" in Image.open(saved_grids[0]).info["parameters"]
    assert len(list((tmp_path / "outputs" / "txt2img-images").rglob("*.png"))) == 4


def test_vae_axis_names():
    class Models:
        def vaes(self):
            return [type("Vae", (), {"name": "Good.vae.safetensors"})()]

    lookup = Lookup(default_registry(), Models())
    chosen = []
    for value in ("auto", "None", "good.vae.safetensors", "missing.pt"):
        job = GenerationJob()
        m.apply_vae(lookup, job, value, [])
        chosen.append(job.override_settings["sd_vae"])
    assert chosen == ["Automatic", "None", "Good.vae.safetensors", "Automatic"]


@pytest.mark.slow
def test_checkpoint_axis_switches_models_per_cell(tmp_path):
    from modules import cmd_args
    from modules.models.loader import save_checkpoint
    from modules.models.tiny import build_tiny_bundle
    from modules.runtime import Runtime

    ckpt_dir = tmp_path / "models" / "Stable-diffusion"
    ckpt_dir.mkdir(parents=True)
    for seed in (1, 2):
        save_checkpoint(build_tiny_bundle(seed=seed), ckpt_dir / f"tiny{seed}.safetensors")
    runtime = Runtime(
        cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu", "--ckpt-dir", str(ckpt_dir)]),
        REGISTRY,
    )
    runtime.options.set("sd_model_checkpoint", "tiny1")
    job = GenerationJob(
        prompt="a cat",
        steps=1,
        width=64,
        height=64,
        seed=3,
        sampler_name="Euler",
        do_not_save_samples=True,
        script_name="X/Y/Z plot",
        script_args=[
            "Checkpoint name",
            "tiny2, tiny1",
            [],
            "Nothing",
            "",
            [],
            "Nothing",
            "",
            [],
            False,
            True,
        ],
    )
    result = runtime.txt2img(job)
    assert [parse_infotext(t)["Model"] for t in result.infotexts[1:]] == ["tiny2", "tiny1"]
    assert runtime.options.get("sd_model_checkpoint") == "tiny1"  # the user's choice is left alone
    assert parse_infotext(result.infotexts[0])["X Values"] == "tiny2, tiny1"
