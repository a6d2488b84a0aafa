"""Prompts from file or textbox: one job per line; a line is a prompt, or command-line style options
(--prompt "..." --negative_prompt "..." --steps 10 --seed 5 --sampler_name "Euler a" ...).

The option names, their parsing (shlex; words after --prompt up to the next option join the prompt),
the seed options and where the line's prompt goes follow AUTOMATIC1111's script, so prompt files
written for it work unchanged.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Iterator
from typing import Any

from modules.extensions.api import GenerationJob, GenerationResult, JobContext, Script

log = logging.getLogger("prompts_from_file")

TITLE = "Prompts from file or textbox"


def as_bool(text: str) -> bool:
    return text == "true"  # A1111: only the exact word "true" is true


# A1111's option names and how each value is read.
TAGS: dict[str, Callable[[str], Any]] = {
    "sd_model": str,
    "outpath_samples": str,
    "outpath_grids": str,
    "prompt_for_display": str,
    "prompt": str,
    "negative_prompt": str,
    "styles": str,
    "seed": int,
    "subseed_strength": float,
    "subseed": int,
    "seed_resize_from_h": int,
    "seed_resize_from_w": int,
    "sampler_index": int,
    "sampler_name": str,
    "scheduler": str,  # ours: the schedule type, since samplers and schedules are chosen separately
    "batch_size": int,
    "n_iter": int,
    "steps": int,
    "cfg_scale": float,
    "width": int,
    "height": int,
    "restore_faces": as_bool,
    "tiling": as_bool,
    "do_not_save_samples": as_bool,
    "do_not_save_grid": as_bool,
}
# Accepted for old prompt files, but nothing here uses them (no face restoration, tiling or grid).
IGNORED_TAGS = ("prompt_for_display", "outpath_grids", "restore_faces", "tiling")


def parse_line(line: str) -> dict[str, Any]:
    """The options of one command-line style line; raises ValueError on an unknown or valueless option."""
    args = shlex.split(line)
    result: dict[str, Any] = {}
    pos = 0
    while pos < len(args):
        arg = args[pos]
        if not arg.startswith("--"):
            raise ValueError(f'must start with "--": {arg}')
        if pos + 1 >= len(args):
            raise ValueError(f"missing argument for command line option {arg}")
        tag = arg[2:]
        if tag in ("prompt", "negative_prompt"):
            # Unquoted words after --prompt, up to the next option, are all part of the prompt.
            pos += 1
            words = [args[pos]]
            pos += 1
            while pos < len(args) and not args[pos].startswith("--"):
                words.append(args[pos])
                pos += 1
            result[tag] = " ".join(words)
            continue
        if tag not in TAGS:
            raise ValueError(f"unknown commandline option: {arg}")
        result[tag] = TAGS[tag](args[pos + 1])
        pos += 2
    return result


def parse_lines(text: str) -> list[dict[str, Any]]:
    """One option dict per non-empty line; a line that does not parse as options is a plain prompt."""
    jobs = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        if "--" not in line:
            jobs.append({"prompt": line})
            continue
        try:
            jobs.append(parse_line(line))
        except ValueError as error:
            log.warning("Error parsing line %s as commandline: %s", line, error)
            jobs.append({"prompt": line})  # as A1111: the whole line becomes the prompt
    return jobs


def apply_options(p: JobContext, job: GenerationJob, options: dict[str, Any]) -> None:
    """Set a line's options on its job, resolving names (checkpoint, sampler) against the runtime."""
    for tag, value in options.items():
        if tag in IGNORED_TAGS:
            continue
        if tag == "sd_model":
            try:
                job.override_settings["sd_model_checkpoint"] = p.lookup.checkpoint(value)
            except ValueError as error:
                raise ValueError(f"Unknown checkpoint: {value}") from error
        elif tag == "outpath_samples":
            job.override_settings[f"outdir_{p.mode}_samples"] = value
        elif tag == "styles":
            job.styles = [name.strip() for name in value.split(",") if name.strip()]
        elif tag == "sampler_name":
            job.sampler_name = p.lookup.sampler(value)  # names and aliases, any case
        elif tag == "sampler_index":
            job.sampler_name = p.lookup.sampler_names()[value]
        elif tag == "scheduler":
            job.scheduler = p.lookup.schedule_type(value)
        elif tag not in ("prompt", "negative_prompt"):
            setattr(job, tag, value)


def line_job(p: JobContext, options: dict[str, Any], seed: int, position: str) -> GenerationJob:
    base = p.job
    job = base.derive(seed=seed, do_not_save_grid=True)
    apply_options(p, job, options)
    for field in ("prompt", "negative_prompt"):
        line_text, job_text = options.get(field), getattr(base, field)
        if line_text:
            joined = [line_text, job_text] if position == "start" else [job_text, line_text]
            setattr(job, field, " ".join(t for t in joined if t))
    return job


class PromptsFromFile(Script):
    def title(self) -> str:
        return TITLE

    def ui(self, is_img2img: bool) -> list[Any]:
        import gradio as gr

        iterate = gr.Checkbox(label="Iterate seed every line", value=False)
        same_seed = gr.Checkbox(label="Use same random seed for all lines", value=False)
        position = gr.Radio(["start", "end"], label="Insert prompts at the", value="start")
        prompt_txt = gr.Textbox(label="List of prompt inputs", lines=1)
        upload = gr.File(label="Upload prompt inputs", type="binary")
        upload.change(
            lambda data: data.decode("utf8", errors="ignore") if data else "", [upload], [prompt_txt]
        )
        return [iterate, same_seed, position, prompt_txt]

    def run(
        self,
        p: JobContext,
        checkbox_iterate: bool = False,
        checkbox_iterate_batch: bool = False,
        prompt_position: str = "start",
        prompt_txt: str = "",
    ) -> GenerationResult:
        lines = parse_lines(prompt_txt or "")
        jobs_count = sum(int(o.get("n_iter", p.job.n_iter)) for o in lines)
        # Without either seed option each line draws its own seed (the job's -1 stays -1).
        seed = p.seed if checkbox_iterate or checkbox_iterate_batch else p.job.seed

        def jobs() -> Iterator[GenerationJob]:
            nonlocal seed
            for options in lines:
                yield line_job(p, options, seed, prompt_position)
                if checkbox_iterate:
                    seed += p.job.batch_size * p.job.n_iter  # A1111 steps by the job's counts, not the line's

        return GenerationResult.merged(p.run_jobs(jobs(), job_count=jobs_count), p.interrupted)
