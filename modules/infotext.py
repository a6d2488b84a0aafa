"""Generation parameters text ("infotext"): writing it, parsing it, and typing the parsed result.

This module owns the text format that AUTOMATIC1111's web UI stores in every image and shows under
it: prompt line(s), an optional "Negative prompt: ..." block, and one line of ``Key: value`` pairs.
Users paste these texts between tools (A1111 1.x, Forge, SD.Next, NovelAI exports), so reading
follows A1111's ``parse_generation_parameters`` rules exactly, quirks included; each quirk is noted
where it is implemented. See docs/PARAMETERS.md for the key list and the type decisions.

No torch, no UI: plain text in, plain dicts out.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from packaging import version

from modules.fields import Field
from modules.options import OptionInfo, builtin_definitions
from modules.processing.job import JOB_FIELDS

# A1111's pattern for one "Key: value" pair; a key is a word character then words, spaces, '-' or '/'.
RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
# A1111 splits every value of the form "WxH" (not only Size) into "<key>-1" and "<key>-2".
RE_IMAGE_SIZE = re.compile(r"^(\d+)x(\d+)$")
NEGATIVE_PROMPT_PREFIX = "Negative prompt:"

# The order A1111 1.10's create_infotext writes its fixed keys in; anything else follows.
HEAD_KEYS = (
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Image CFG scale",
    "Seed",
    "Face restoration",
    "Size",
    "Model hash",
    "Model",
    "FP8 weight",
    "Cache FP16 weight for LoRA",
    "VAE hash",
    "VAE",
    "Variation seed",
    "Variation seed strength",
    "Seed resize from",
    "Denoising strength",
    "Conditional mask weight",
    "Clip skip",
    "ENSD",
    "Token merging ratio",
    "Token merging ratio hr",
    "Init image hash",
    "RNG",
    "Tiling",
)
HIRES_KEYS = (
    "Hires upscale",
    "Hires resize",
    "Hires steps",
    "Hires upscaler",
    "Hires checkpoint",
    "Hires sampler",
    "Hires schedule type",
    "Hires CFG Scale",
    "Hires prompt",
    "Hires negative prompt",
)
# Extra-network hashes and the program version close the line, as in A1111's output.
TAIL_KEYS = ("Lora hashes", "TI hashes", "Version", "User")

# Sampler names of A1111 1.10 with their aliases (k-diffusion function names, NovelAI's names).
SAMPLER_ALIASES: dict[str, tuple[str, ...]] = {
    "DPM++ 2M": ("k_dpmpp_2m",),
    "DPM++ SDE": ("k_dpmpp_sde",),
    "DPM++ 2M SDE": ("k_dpmpp_2m_sde",),
    "DPM++ 2M SDE Heun": ("k_dpmpp_2m_sde_heun",),
    "DPM++ 2S a": ("k_dpmpp_2s_a", "k_dpmpp_2s_ancestral"),
    "DPM++ 3M SDE": ("k_dpmpp_3m_sde",),
    "Euler a": ("k_euler_a", "k_euler_ancestral"),
    "Euler": ("k_euler",),
    "LMS": ("k_lms",),
    "Heun": ("k_heun",),
    "DPM2": ("k_dpm_2",),
    "DPM2 a": ("k_dpm_2_a", "k_dpm_2_ancestral"),
    "DPM fast": ("k_dpm_fast",),
    "DPM adaptive": ("k_dpm_ad",),
    "Restart": ("restart",),
    "DDIM": ("ddim",),
    "DDIM CFG++": ("ddim_cfgpp",),
    "PLMS": ("plms",),
    "UniPC": ("unipc",),
    "LCM": ("k_lcm",),
}
KNOWN_SAMPLERS = tuple(SAMPLER_ALIASES)
# Scheduler labels of A1111 1.10 with their internal names and aliases, as accepted in a name suffix.
SCHEDULER_NAMES: dict[str, tuple[str, ...]] = {
    "Uniform": ("uniform",),
    "Karras": ("karras",),
    "Exponential": ("exponential",),
    "Polyexponential": ("polyexponential",),
    "SGM Uniform": ("sgm_uniform", "SGMUniform"),
    "KL Optimal": ("kl_optimal",),
    "Align Your Steps": ("align_your_steps",),
    "Simple": ("simple",),
    "Normal": ("normal",),
    "DDIM": ("ddim",),
    "Beta": ("beta",),
}

_V160 = version.parse("1.6.0")
_V170_TSNR = version.parse("v1.7.0-225")
_V180 = version.parse("1.8.0")


def _format_value(value: object) -> str:
    # A (width, height) pair is written "WxH" like Size; everything else as str() does, as A1111.
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}x{value[1]}"
    return str(value)


def quote(value: object) -> str:
    """Format one value for the parameters line, quoting it JSON-style when it must be.

    A1111 quotes exactly when the text contains ',', ':' or a newline; a '"' alone does not quote.
    We also quote the few texts A1111's own parser would read back wrongly (empty, leading/trailing
    whitespace, or starting with '"'); A1111 reads the quoted form back correctly, so its texts and ours
    stay interchangeable.
    """
    text = _format_value(value)
    needs_quotes = any(c in text for c in ",:\n")
    # A value starting with '"' would be read as the start of a quoted value and swallow the pairs up to
    # the next '"' (A1111's regex does the same); quoting it keeps it whole.
    misread = text != text.strip() or text == "" or text.startswith('"')
    if not (needs_quotes or misread):
        return text
    # json.dumps of the original object, as A1111 does: a dict value becomes a JSON object text.
    return json.dumps(value, ensure_ascii=False, default=str)


def unquote(text: str) -> str:
    """Undo :func:`quote`; text that is not a valid JSON string is returned as it is (A1111 does so)."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        result = json.loads(text)
    except ValueError:
        return text
    return result if isinstance(result, str) else text


def _ordered_keys(params: Mapping[str, object]) -> list[str]:
    head = [k for k in HEAD_KEYS if k in params]
    hires = [k for k in HIRES_KEYS if k in params]
    tail = [k for k in TAIL_KEYS if k in params]
    fixed = set(HEAD_KEYS) | set(HIRES_KEYS) | set(TAIL_KEYS)
    rest = [k for k in params if k not in fixed]
    return head + hires + rest + tail


def create_infotext(prompt: str, negative_prompt: str, params: Mapping[str, object]) -> str:
    """Write the parameters text: prompt, "Negative prompt: ..." (only if non-empty), the pairs line.

    Pairs are written in A1111's order (fixed keys, hires keys, other keys as given, hashes and
    Version last); None values are skipped. A pair whose value equals its key is written as the key
    alone, as A1111 does for flag-like extension parameters.
    """
    pairs = []
    for key in _ordered_keys(params):
        value = params[key]
        if value is None:
            continue
        pairs.append(key if isinstance(value, str) and value == key else f"{key}: {quote(value)}")
    negative = f"\n{NEGATIVE_PROMPT_PREFIX} {negative_prompt}" if negative_prompt else ""
    # A1111 strips the whole text, so an empty prompt does not leave a leading blank line.
    return f"{prompt}{negative}\n{', '.join(pairs)}".strip()


def _split_prompt_lines(lines: list[str]) -> tuple[str, str]:
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for raw in lines:
        line = raw.strip()
        if line.startswith(NEGATIVE_PROMPT_PREFIX):
            # A1111 switches to the negative prompt at every such line, even a second one.
            in_negative = True
            line = line[len(NEGATIVE_PROMPT_PREFIX) :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    return "\n".join(prompt_lines), "\n".join(negative_lines)


def _parse_pairs(line: str, res: dict[str, object]) -> None:
    for key, raw in RE_PARAM.findall(line):
        if not raw:
            # A1111 fails on an empty value (it indexes v[0]) and drops the pair; so do we.
            continue
        value = unquote(raw) if raw[0] == '"' and raw[-1] == '"' else raw
        size = RE_IMAGE_SIZE.match(value)
        if size:
            res[f"{key}-1"], res[f"{key}-2"] = size.group(1), size.group(2)
        else:
            res[key] = value


def parse_infotext(text: str) -> dict[str, object]:
    """Parse a parameters text with A1111's parse_generation_parameters semantics.

    Returns "Prompt", "Negative prompt" and every pair of the last line, values as strings
    ("WxH" values split into "<key>-1"/"<key>-2"), plus the defaults A1111 fills in for missing keys
    (those keep A1111's types: 0, False, strings). Old combined sampler names such as
    "DPM++ 2M Karras" are split into "Sampler" and "Schedule type" as A1111's paste does.
    """
    *lines, last = text.strip().split("\n")
    # The last line holds the parameters only if it has at least 3 pairs; else it is prompt text.
    if len(RE_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    res: dict[str, object] = {}
    res["Prompt"], res["Negative prompt"] = _split_prompt_lines(lines)
    _parse_pairs(last, res)
    _apply_hypernet(res)
    _fill_defaults(res)
    _restore_old_hires_fix(res)
    _fill_late_defaults(res)
    _split_sampler_scheduler(res, "Sampler", "Schedule type")
    _split_sampler_scheduler(res, "Hires sampler", "Hires schedule type")
    _apply_version_backcompat(res)
    return res


def _apply_hypernet(res: dict[str, object]) -> None:
    # Pre-LoRA infotexts named the hypernetwork in a key; A1111 turns it back into prompt syntax.
    hypernet = res.get("Hypernet")
    if hypernet is not None:
        strength = res.get("Hypernet strength", "1.0")
        res["Prompt"] = f"{res['Prompt']}<hypernet:{hypernet}:{strength}>"


# Defaults A1111 1.10 fills in before converting old hires-fix parameters; a missing key means the
# setting had its default value when the image was made.
_EARLY_DEFAULTS: dict[str, object] = {
    "Clip skip": "1",
    "Hires resize-1": 0,
    "Hires resize-2": 0,
    "Hires sampler": "Use same sampler",
    "Hires schedule type": "Use same scheduler",
    "Hires checkpoint": "Use same checkpoint",
    "Hires prompt": "",
    "Hires negative prompt": "",
    "Mask mode": "Inpaint masked",
    "Masked content": "original",
    "Inpaint area": "Whole picture",
    "Masked area padding": 32,
}
_LATE_DEFAULTS: dict[str, object] = {
    "RNG": "GPU",
    "Schedule type": "Automatic",
    "Schedule max sigma": 0,
    "Schedule min sigma": 0,
    "Schedule rho": 0,
    "VAE Encoder": "Full",
    "VAE Decoder": "Full",
    "FP8 weight": "Disable",
}


def _fill_defaults(res: dict[str, object]) -> None:
    for key, value in _EARLY_DEFAULTS.items():
        res.setdefault(key, value)


def _fill_late_defaults(res: dict[str, object]) -> None:
    for key, value in _LATE_DEFAULTS.items():
        res.setdefault(key, value)
    if res["FP8 weight"] != "Disable":
        res.setdefault("Cache FP16 weight for LoRA", False)
    # Emphasis is only written when not "Original", and only matters if the prompt weights anything.
    if "Emphasis" not in res and (
        uses_emphasis(str(res["Prompt"])) or uses_emphasis(str(res["Negative prompt"]))
    ):
        res["Emphasis"] = "Original"
    res.setdefault("Refiner switch by sampling steps", False)


def old_hires_fix_first_pass_size(width: int, height: int) -> tuple[int, int]:
    """A1111's pre-1.0 automatic first-pass size: about 512x512 pixels, sides rounded up to 64."""
    scale = math.sqrt(512 * 512 / (width * height))
    return math.ceil(scale * width / 64) * 64, math.ceil(scale * height / 64) * 64


def _restore_old_hires_fix(res: dict[str, object]) -> None:
    # Texts from before A1111 1.0 gave the final size in "Size" and the first pass in "First pass size".
    first_w, first_h = res.get("First pass size-1"), res.get("First pass size-2")
    if first_w is None or first_h is None:
        return
    first_w, first_h = int(str(first_w)), int(str(first_h))
    width, height = int(str(res.get("Size-1", 512))), int(str(res.get("Size-2", 512)))
    if first_w == 0 or first_h == 0:
        first_w, first_h = old_hires_fix_first_pass_size(width, height)
    res["Size-1"], res["Size-2"] = first_w, first_h
    res["Hires resize-1"], res["Hires resize-2"] = width, height


def split_sampler_name(name: str) -> tuple[str, str | None]:
    """Split an old combined sampler name: "DPM++ 2M Karras" -> ("DPM++ 2M", "Karras").

    A1111 strips any known scheduler label, internal name or alias that follows a space. We try the
    longest suffix first, so "Euler SGM Uniform" gives "SGM Uniform" where A1111's list order would
    take "Uniform".
    """
    options = sorted(
        ((option, label) for label, names in SCHEDULER_NAMES.items() for option in (label, *names)),
        key=lambda pair: -len(pair[0]),
    )
    for option, label in options:
        if name.endswith(" " + option) and len(name) > len(option) + 1:
            return name[: -len(option) - 1], label
    return name, None


def _split_sampler_scheduler(res: dict[str, object], sampler_key: str, scheduler_key: str) -> None:
    sampler = res.get(sampler_key)
    if not isinstance(sampler, str) or sampler == "Use same sampler":
        return
    base, scheduler = split_sampler_name(sampler)
    if scheduler is None:
        return
    # The suffix names the schedule the image was made with; it wins over the filled-in "Automatic".
    # We keep it explicit ("Karras") where A1111's paste may show "Automatic" for a sampler whose
    # default it is: both produce the same sigmas.
    res[sampler_key] = base
    res[scheduler_key] = scheduler


def parse_version(text: object) -> version.Version | None:
    """A1111's reading of its "Version" value: "v1.7.0-225-gabc" -> 1.7.0.post225; others -> None."""
    if not isinstance(text, str):
        return None
    m = re.match(r"([^-]+-[^-]+)-.*", text)
    if m:
        text = m.group(1)
    try:
        return version.parse(text)
    except version.InvalidVersion:
        # Forge ("f2.0.1v1.10.1-...") and SD.Next (a git hash) versions are not comparable: no backcompat.
        return None


def _apply_version_backcompat(res: dict[str, object]) -> None:
    # A1111 changed some behaviours over time and turns the old ones back on for images made before.
    ver = parse_version(res.get("Version"))
    if ver is None:
        return
    if ver < _V160 and "[" in str(res.get("Prompt", "")):
        res["Old prompt editing timelines"] = True
    if ver < _V160 and res.get("Sampler") in ("DDIM", "PLMS"):
        res["Pad conds v0"] = True
    if ver < _V170_TSNR:
        res["Downcast alphas_cumprod"] = True
    if ver < _V180 and res.get("Refiner"):
        res["Refiner switch by sampling steps"] = True


# Tokens of A1111's attention syntax: escapes, brackets, ":weight)" and plain text runs.
_RE_ATTENTION = re.compile(r"\\[()\[\]\\]|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:")


def uses_emphasis(prompt: str) -> bool:
    """True if some text of the prompt gets an attention weight other than 1 (A1111's test)."""
    round_open: list[int] = []
    square_open: list[int] = []
    weights: list[float] = []  # one per text run, in order

    def scale(start: int, factor: float) -> None:
        for i in range(start, len(weights)):
            weights[i] *= factor

    for m in _RE_ATTENTION.finditer(prompt):
        token, weight = m.group(0), m.group(1)
        if token == "(":
            round_open.append(len(weights))
        elif token == "[":
            square_open.append(len(weights))
        elif weight is not None and round_open:
            scale(round_open.pop(), float(weight) if _is_float(weight) else 1.0)
        elif token == ")" and round_open:
            scale(round_open.pop(), 1.1)
        elif token == "]" and square_open:
            scale(square_open.pop(), 1 / 1.1)
        else:
            weights.append(1.0)  # plain text, stray closers and ':' are unweighted text (A1111)
    # Unclosed brackets weight everything after them, as in A1111.
    for start in round_open:
        scale(start, 1.1)
    for start in square_open:
        scale(start, 1 / 1.1)
    return any(w != 1.0 for w in weights)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def canonical_sampler_name(name: str) -> str:
    """Map an alias ("k_euler_a") or differently cased name to A1111's sampler name; keep unknowns."""
    lowered = name.strip().lower()
    for canonical, aliases in SAMPLER_ALIASES.items():
        if lowered == canonical.lower() or lowered in (a.lower() for a in aliases):
            return canonical
    return name.strip()


def infotext_to_settings(
    d: Mapping[str, object], settings: Mapping[str, OptionInfo] | None = None
) -> dict[str, object]:
    """Turn a :func:`parse_infotext` dict into typed values named as in A1111's txt2img API payload.

    Derived from the declarations: every job field with a parameters-text key (``GenerationJob``) is
    read into its field, every setting with one (``settings``: the app's definitions, extensions'
    included; the built-in ones by default) into "override_settings". Only keys present in ``d``
    appear; a value its field refuses ("Steps: many") is left out rather than failing the paste.
    ``enable_hr`` is set when a hires pass is described; ``restore_faces`` when face restoration is
    named. Unknown keys are not included: read them from ``d``.
    """
    values = _read_fields({spec.infotext: spec for spec in JOB_FIELDS.values() if spec.infotext}, d)
    if isinstance(values.get("sampler_name"), str):
        values["sampler_name"] = canonical_sampler_name(str(values["sampler_name"]))
    if isinstance(values.get("hr_sampler_name"), str):
        values["hr_sampler_name"] = canonical_sampler_name(str(values["hr_sampler_name"]))
    definitions = settings if settings is not None else builtin_definitions()
    overrides = _read_fields({i.infotext: i.spec for i in definitions.values() if i.infotext}, d)
    # A1111 finds the checkpoint by "Model hash"; texts without a hash still name the model.
    if "sd_model_checkpoint" not in overrides and isinstance(d.get("Model"), str):
        overrides["sd_model_checkpoint"] = d["Model"]
    if overrides:
        values["override_settings"] = overrides
    hires = any(k in d for k in ("Hires upscale", "Hires upscaler", "Hires steps")) or bool(
        values.get("hr_resize_x") or values.get("hr_resize_y")
    )
    values["enable_hr"] = hires
    if "Face restoration" in d:
        values["restore_faces"] = True
    return values


def _read_fields(by_key: Mapping[str, Field], d: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, spec in by_key.items():
        if key not in d:
            continue
        raw = d[key]
        try:
            value = spec.check(raw.strip() if isinstance(raw, str) else raw)
        except ValueError:
            continue  # a malformed value (e.g. "Steps: many") is left out rather than failing the paste
        if value is not None:
            out[spec.name] = value
    return out
