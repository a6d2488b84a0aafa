"""Tests for modules/infotext.py: writing, parsing (real texts of several tools), typing."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from modules.infotext import (
    RE_PARAM,
    create_infotext,
    infotext_to_settings,
    old_hires_fix_first_pass_size,
    parse_infotext,
    parse_version,
    quote,
    split_sampler_name,
    unquote,
    uses_emphasis,
)

# ---------------------------------------------------------------- writing


def test_create_infotext_layout_and_order():
    params = {
        "Version": "v1.10.1",
        "Lora hashes": "add_detail: 7c6bad76eb54",
        "Size": "512x768",
        "Hires upscaler": "Latent",
        "Seed": 965400086,
        "My extension": "on",
        "Steps": 20,
        "Sampler": "DPM++ 2M",
        "Schedule type": "Karras",
        "CFG scale": 7.5,
        "Hires upscale": 2,
        "Clip skip": None,
    }
    text = create_infotext("a cat", "blurry, lowres", params)
    assert text == (
        "a cat\n"
        "Negative prompt: blurry, lowres\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 965400086, "
        "Size: 512x768, Hires upscale: 2, Hires upscaler: Latent, My extension: on, "
        'Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.10.1'
    )


def test_create_infotext_without_negative_and_prompt():
    assert create_infotext("cat", "", {"Steps": 1}) == "cat\nSteps: 1"
    assert create_infotext("", "", {"Steps": 1, "Seed": 2}) == "Steps: 1, Seed: 2"


def test_flag_key_written_bare():
    assert create_infotext("p", "", {"Steps": 3, "Tiled Diffusion": "Tiled Diffusion"}).endswith(
        "Steps: 3, Tiled Diffusion"
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain", "plain"),
        ("a, b", '"a, b"'),
        ("a: b", '"a: b"'),
        ("a\nb", '"a\\nb"'),
        ('say "hi"', 'say "hi"'),  # A1111 does not quote for a quote character alone
        ('x, "y"', '"x, \\"y\\""'),
        ("日本: 語", '"日本: 語"'),  # ensure_ascii=False, as A1111
        (7, "7"),
        (True, "True"),
        ({"a": 1}, '{"a": 1}'),  # a dict goes through json.dumps, as in A1111
        ((512, 768), "512x768"),
    ],
)
def test_quote_matches_a1111(value, written):
    assert quote(value) == written


@pytest.mark.parametrize("value", ["", " lead", "trail ", '"wrapped"'])
def test_quote_protects_values_a1111_would_misread(value):
    assert quote(value) == json.dumps(value, ensure_ascii=False)
    assert unquote(quote(value)) == value


def test_unquote_leaves_invalid_json_alone():
    assert unquote('"a" and "b"') == '"a" and "b"'
    assert unquote('"') == '"'


# ---------------------------------------------------------------- round trips

KEY = st.from_regex(r"[A-Za-z][A-Za-z0-9 /\-]{0,12}[A-Za-z0-9]", fullmatch=True).filter(
    lambda k: "  " not in k and not k.startswith(("Hypernet", "Sampler", "Hires", "First pass", "Version"))
)
# "WxH" values are split into two keys by design (A1111's regex, whose "$" also accepts a final "\n").
VALUE = st.text(st.characters(exclude_categories=("Cs",)), max_size=30).filter(
    lambda v: not re.match(r"^(\d+)x(\d+)$", v)
)
LINE = st.text(st.characters(exclude_categories=("Cs",)), max_size=25).map(
    lambda s: s.replace("\n", " ").strip()
)


def _prompt(lines):
    return "\n".join(lines).strip()


@settings(max_examples=150, deadline=None)
@given(params=st.dictionaries(KEY, VALUE, min_size=3, max_size=8))
# Found by a random draw: a value starting with '"' (not quoted at both ends) swallowed the next pairs.
@example(params={"Lg": "@", "F3": '"', "EP": '"'})
@example(params={"Ak": '"x', "Bk": "y", "Ck": 'z"'})
def test_params_round_trip(params):
    parsed = parse_infotext(create_infotext("prompt", "", params))
    for key, value in params.items():
        if value == key:
            continue  # written bare, as A1111 does; not a pair on reading
        assert parsed[key] == value


@settings(max_examples=150, deadline=None)
@given(prompt_lines=st.lists(LINE, max_size=4), negative_lines=st.lists(LINE, max_size=3))
def test_prompt_round_trip(prompt_lines, negative_lines):
    lines = [line for line in prompt_lines + negative_lines if not line.startswith("Negative prompt:")]
    prompt = _prompt(lines[: len(prompt_lines)])
    negative = _prompt(lines[len(prompt_lines) :])
    parsed = parse_infotext(create_infotext(prompt, negative, {"Steps": 20, "Seed": 1, "CFG scale": 7}))
    assert parsed["Prompt"] == prompt
    assert parsed["Negative prompt"] == negative
    assert parsed["Steps"] == "20"


def test_unicode_and_odd_values_round_trip():
    params = {"Steps": 20, "Seed": -1, "Note": 'a, "b": c\nd', "Emoji": "🐱, 猫", "Path": "C:\\models\\x"}
    parsed = parse_infotext(create_infotext("猫 (cat:1.2)", "bad, worse", params))
    assert parsed["Note"] == 'a, "b": c\nd'
    assert parsed["Emoji"] == "🐱, 猫"
    assert parsed["Path"] == "C:\\models\\x"
    assert parsed["Prompt"] == "猫 (cat:1.2)"


# ---------------------------------------------------------------- parsing real texts

A1111_EARLY = """girl with an artist's beret, determined, blue eyes, ((eyeshadow)), (coquettish), detailed
Negative prompt: ugly, fat, obese, (((deformed))), [blurry], bad anatomy
Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b"""

A1111_OLD_HIRES = """a castle on a hill
Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 11, Seed: 1234, Size: 1024x768, Model hash: 7460a6fa, \
Denoising strength: 0.7, First pass size: 0x0, Hypernet: anime_3, Hypernet strength: 0.8"""

A1111_1_2 = """masterpiece, best quality, 1girl, <lora:add_detail:0.6>
Negative prompt: EasyNegative, (worst quality, low quality:1.4)
Steps: 28, Sampler: DPM++ SDE Karras, CFG scale: 8, Seed: 3452377417, Size: 512x768, \
Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, Clip skip: 2, ENSD: 31337, \
Hires upscale: 2, Hires steps: 15, Hires upscaler: R-ESRGAN 4x+ Anime6B"""

A1111_1_6 = """(photo of a red fox:1.1), forest, [autumn:winter:0.5]
Negative prompt: cartoon
Steps: 25, Sampler: DPM++ 2M SDE Exponential, CFG scale: 6.5, Seed: 42, Size: 832x1216, \
Model hash: 31e35c80fc, Model: sd_xl_base_1.0, VAE hash: 235745af8d, VAE: sdxl_vae.safetensors, \
Variation seed: 99, Variation seed strength: 0.3, Seed resize from: 768x1152, \
Lora hashes: "fox_v2: 5a3b0c1d2e3f, detail: 0011aabbccdd", TI hashes: "negative_hand: 73b524a2da12", \
Version: v1.6.0"""

A1111_1_7_DEV = """a lighthouse at dusk
Steps: 20, Sampler: DDIM, CFG scale: 7, Seed: 7, Size: 512x512, Model hash: 6ce0161689, \
Version: v1.7.0-133-gde03882d"""

A1111_1_9 = """cinematic still of a robot
Negative prompt: text, watermark
Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 2024, Size: 1024x1024, \
Model hash: e6bb9ea85b, Model: juggernautXL_v9, RNG: CPU, Emphasis: No norm, \
Hires upscale: 1.5, Hires steps: 10, Hires upscaler: 4x-UltraSharp, Hires sampler: Euler a Karras, \
Version: v1.9.4"""

A1111_1_10 = """portrait of a woman, (freckles:0.8)
Negative prompt: lowres
Steps: 40, Sampler: Euler, Schedule type: Align Your Steps, CFG scale: 4.5, Seed: 11, Size: 896x1152, \
Model hash: 0f1b80cfe8, Model: dreamshaperXL, Hires CFG Scale: 3, Hires prompt: "portrait, sharp: eyes", \
Hires upscale: 2, Hires upscaler: Latent, Downcast alphas_cumprod: True, Version: v1.10.1"""

FORGE = """a cozy cabin in the snow
Steps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, Seed: 12345, \
Size: 896x1152, Model hash: bea01d51bd, Model: flux1-dev-bnb-nf4-v2, \
Diffusion in Low Bits: bnb-nf4 (fp16 LoRA), Module 1: ae, Module 2: clip_l, Module 3: t5xxl_fp8_e4m3fn, \
Version: f2.0.1v1.10.1-previous-313-g8a042934, Beta schedule alpha: 0.6"""

SDNEXT = """astronaut riding a horse on mars
Negative prompt: ugly
Steps: 20, Seed: 1931035637, Sampler: DPM++ 2M, CFG scale: 6, Size: 1024x1024, Batch: 1x1, \
Parser: Full parser, Model: sdxl-base-1.0, Model hash: 31e35c80fc, Backend: Diffusers, App: SD.Next, \
Version: 5b7bd46, Operations: txt2img, Pipeline: StableDiffusionXLPipeline"""

COMMA_IN_PROMPT_ONLY = """just a prompt, with, commas: and colons"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            A1111_EARLY,
            {
                "Prompt": (
                    "girl with an artist's beret, determined, blue eyes, ((eyeshadow)), (coquettish), detailed"
                ),
                "Negative prompt": "ugly, fat, obese, (((deformed))), [blurry], bad anatomy",
                "Steps": "20",
                "Sampler": "Euler a",
                "Schedule type": "Automatic",
                "Size-1": "512",
                "Size-2": "512",
                "Model hash": "45dee52b",
                "Clip skip": "1",
                "RNG": "GPU",
                "Emphasis": "Original",
                "Hires resize-1": 0,
                "Hires sampler": "Use same sampler",
                "Hires schedule type": "Use same scheduler",
                "Refiner switch by sampling steps": False,
            },
        ),
        (
            A1111_OLD_HIRES,
            {
                "Prompt": "a castle on a hill<hypernet:anime_3:0.8>",
                "Sampler": "DPM++ 2M",
                "Schedule type": "Karras",
                "Size-1": 640,  # first pass from the pre-1.0 automatic rule: ~512x512, sides up to 64
                "Size-2": 448,
                "Hires resize-1": 1024,
                "Hires resize-2": 768,
                "Denoising strength": "0.7",
            },
        ),
        (
            A1111_1_2,
            {
                "Negative prompt": "EasyNegative, (worst quality, low quality:1.4)",
                "Sampler": "DPM++ SDE",
                "Schedule type": "Karras",
                "Clip skip": "2",
                "ENSD": "31337",
                "Hires upscale": "2",
                "Hires steps": "15",
                "Hires upscaler": "R-ESRGAN 4x+ Anime6B",
                "Model": "v1-5-pruned-emaonly",
            },
        ),
        (
            A1111_1_6,
            {
                "Sampler": "DPM++ 2M SDE",
                "Schedule type": "Exponential",
                "CFG scale": "6.5",
                "VAE": "sdxl_vae.safetensors",
                "Seed resize from-1": "768",
                "Seed resize from-2": "1152",
                "Lora hashes": "fox_v2: 5a3b0c1d2e3f, detail: 0011aabbccdd",
                "TI hashes": "negative_hand: 73b524a2da12",
                "Downcast alphas_cumprod": True,  # made before v1.7.0-225
                "Emphasis": "Original",
            },
        ),
        (A1111_1_7_DEV, {"Sampler": "DDIM", "Downcast alphas_cumprod": True}),
        (
            A1111_1_9,
            {
                "Sampler": "DPM++ 2M",
                "Schedule type": "Karras",
                "RNG": "CPU",
                "Emphasis": "No norm",
                "Hires sampler": "Euler a",
                "Hires schedule type": "Karras",
                "Hires upscale": "1.5",
            },
        ),
        (
            A1111_1_10,
            {
                "Schedule type": "Align Your Steps",
                "Hires CFG Scale": "3",
                "Hires prompt": "portrait, sharp: eyes",
                "Downcast alphas_cumprod": "True",
            },
        ),
        (
            FORGE,
            {
                "Schedule type": "Simple",
                "Distilled CFG Scale": "3.5",
                "Diffusion in Low Bits": "bnb-nf4 (fp16 LoRA)",
                "Module 1": "ae",
                "Module 3": "t5xxl_fp8_e4m3fn",
                "Version": "f2.0.1v1.10.1-previous-313-g8a042934",
                "Beta schedule alpha": "0.6",
            },
        ),
        (
            SDNEXT,
            {
                "Negative prompt": "ugly",
                "Batch-1": "1",
                "Batch-2": "1",
                "Parser": "Full parser",
                "App": "SD.Next",
                "Version": "5b7bd46",
                "Pipeline": "StableDiffusionXLPipeline",
            },
        ),
        (COMMA_IN_PROMPT_ONLY, {"Prompt": COMMA_IN_PROMPT_ONLY, "Negative prompt": "", "Clip skip": "1"}),
    ],
)
def test_parse_real_texts(text, expected):
    parsed = parse_infotext(text)
    for key, value in expected.items():
        assert parsed[key] == value, key


def test_parse_keeps_no_combined_size_key_and_no_backcompat_for_forge():
    parsed = parse_infotext(FORGE)
    assert "Size" not in parsed  # A1111 replaces "Size" by "Size-1"/"Size-2"
    assert "Downcast alphas_cumprod" not in parsed
    assert "Emphasis" not in parsed  # no weighted text in the prompt


def test_version_backcompat_flags():
    old = parse_infotext("a [b:c:5] cat\nSteps: 20, Sampler: PLMS, Seed: 1, Refiner: x, Version: v1.5.2")
    assert old["Old prompt editing timelines"] is True
    assert old["Pad conds v0"] is True
    assert old["Refiner switch by sampling steps"] is True
    new = parse_infotext("a [b:c:5] cat\nSteps: 20, Sampler: PLMS, Seed: 1, Refiner: x, Version: v1.8.0")
    assert "Old prompt editing timelines" not in new
    assert "Downcast alphas_cumprod" not in new
    assert new["Refiner switch by sampling steps"] is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [("v1.7.0-225-gabc", "1.7.0.post225"), ("1.6.0", "1.6.0"), ("f2.0.1v1.10.1-previous-3-gx", None)],
)
def test_parse_version(text, expected):
    parsed = parse_version(text)
    assert (str(parsed) if parsed else None) == expected


def test_last_line_with_fewer_than_three_pairs_is_prompt():
    parsed = parse_infotext("a cat\nSteps: 20, Seed: 5")
    assert parsed["Prompt"] == "a cat\nSteps: 20, Seed: 5"
    assert "Steps" not in parsed


def test_multiline_prompt_and_negative():
    text = "line one\n  line two  \nNegative prompt: bad\nworse\nSteps: 1, Seed: 2, CFG scale: 3"
    parsed = parse_infotext(text)
    assert parsed["Prompt"] == "line one\nline two"
    assert parsed["Negative prompt"] == "bad\nworse"


def test_empty_value_dropped_like_a1111():
    parsed = parse_infotext("p\nSteps: 20, Foo: , Seed: 3, CFG scale: 7")
    assert "Foo" not in parsed
    assert parsed["Seed"] == "3"


def test_regex_is_a1111s():
    assert RE_PARAM.findall('Steps: 20, Lora hashes: "a: b, c", Size: 1x2') == [
        ("Steps", "20"),
        ("Lora hashes", '"a: b, c"'),
        ("Size", "1x2"),
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DPM++ 2M Karras", ("DPM++ 2M", "Karras")),
        ("DPM++ 2M SDE Heun Exponential", ("DPM++ 2M SDE Heun", "Exponential")),
        ("DPM2 a karras", ("DPM2 a", "Karras")),
        ("Euler SGM Uniform", ("Euler", "SGM Uniform")),
        ("Euler a", ("Euler a", None)),
        ("DPM++ 2M SDE Heun", ("DPM++ 2M SDE Heun", None)),
        ("Karras", ("Karras", None)),
    ],
)
def test_split_sampler_name(name, expected):
    assert split_sampler_name(name) == expected


def test_old_hires_first_pass_size():
    assert old_hires_fix_first_pass_size(512, 512) == (512, 512)
    assert old_hires_fix_first_pass_size(1024, 1024) == (512, 512)
    assert old_hires_fix_first_pass_size(2048, 512) == (1024, 256)
    assert old_hires_fix_first_pass_size(1024, 768) == (640, 448)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a cat, dog", False),
        ("a (cat)", True),
        ("a [cat]", True),
        ("(cat:1.0)", False),
        ("(cat:1.3)", True),
        (r"\(escaped\)", False),
        ("()", False),
        ("( )", True),  # A1111 counts a weighted space as emphasis
        ("a) b", False),
        ("a (unclosed", True),
        ("[cat:dog:0.5]", True),  # A1111 counts prompt-editing brackets as de-emphasis
    ],
)
def test_uses_emphasis(prompt, expected):
    assert uses_emphasis(prompt) is expected


# ---------------------------------------------------------------- typed settings


def test_infotext_to_settings_types():
    s = infotext_to_settings(parse_infotext(A1111_1_2))
    assert s["steps"] == 28 and isinstance(s["steps"], int)
    assert s["cfg_scale"] == 8.0 and isinstance(s["cfg_scale"], float)
    assert s["seed"] == 3452377417
    assert (s["width"], s["height"]) == (512, 768)
    assert s["sampler_name"] == "DPM++ SDE"
    assert s["scheduler"] == "Karras"
    assert s["denoising_strength"] == 0.45
    assert s["enable_hr"] is True
    assert s["hr_scale"] == 2.0
    assert s["hr_second_pass_steps"] == 15
    assert "hr_sampler_name" not in s  # "Use same sampler"
    assert s["override_settings"]["CLIP_stop_at_last_layers"] == 2
    assert s["override_settings"]["eta_noise_seed_delta"] == 31337
    assert s["override_settings"]["sd_model_checkpoint"] == "6ce0161689"


def test_infotext_to_settings_skips_malformed_and_maps_aliases():
    s = infotext_to_settings(
        {"Steps": "many", "Seed": "18446744073709551615", "Sampler": "k_euler_a", "Model": "foo"}
    )
    assert "steps" not in s
    assert s["seed"] == 18446744073709551615
    assert infotext_to_settings({"Steps": "20.0"})["steps"] == 20
    assert s["sampler_name"] == "Euler a"
    assert s["enable_hr"] is False
    assert s["override_settings"] == {"sd_model_checkpoint": "foo"}


def test_infotext_to_settings_hires_sampler_and_variation():
    s = infotext_to_settings(parse_infotext(A1111_1_9))
    assert s["hr_sampler_name"] == "Euler a"
    assert s["hr_scheduler"] == "Karras"
    s = infotext_to_settings(parse_infotext(A1111_1_6))
    assert (s["subseed"], s["subseed_strength"]) == (99, 0.3)
    assert (s["seed_resize_from_w"], s["seed_resize_from_h"]) == (768, 1152)
    assert s["override_settings"]["sd_vae"] == "sdxl_vae.safetensors"
