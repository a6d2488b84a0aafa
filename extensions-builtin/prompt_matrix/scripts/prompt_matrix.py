"""Prompt matrix: "a city street|illustration|cinematic lighting" makes one image per combination of the
optional parts (2^n), laid out as a grid whose labels show which parts each image has.

Combination order, the joining of parts, the seeds and the grid layout follow AUTOMATIC1111's script,
so the same prompt gives the same matrix.
"""

from __future__ import annotations

from typing import Any

from modules.extensions import api
from modules.extensions.api import GenerationJob, GenerationResult, JobContext, Script, image_grid

TITLE = "Prompt matrix"
DELIMITERS = {"comma": ", ", "space": " "}


def combinations(prompt: str, put_at_start: bool = False, delimiter: str = "comma") -> list[str]:
    """Every prompt of the matrix; bit n of the image's index switches optional part n on."""
    if delimiter not in DELIMITERS:
        raise ValueError(f"Prompt matrix: unknown joining char {delimiter!r} (comma or space)")
    parts = prompt.split("|")
    prompts = []
    for number in range(2 ** (len(parts) - 1)):
        # As A1111: optional parts are stripped of spaces and commas; the fixed part is kept as typed.
        chosen = [text.strip().strip(",") for n, text in enumerate(parts[1:]) if number & (1 << n)]
        ordered = [*chosen, parts[0]] if put_at_start else [parts[0], *chosen]
        prompts.append(DELIMITERS[delimiter].join(ordered))
    return prompts


def image_job(base: GenerationJob, prompt: str, negative: bool, seed: int) -> GenerationJob:
    """One image of the matrix: its prompt (or negative prompt), one image, no script."""
    field = "negative_prompt" if negative else "prompt"
    return base.derive(**{field: prompt}, seed=seed, batch_size=1, n_iter=1)


class PromptMatrix(Script):
    def title(self) -> str:
        return TITLE

    def ui(self, is_img2img: bool) -> list[Any]:
        import gradio as gr

        with gr.Row():
            with gr.Column():
                put_at_start = gr.Checkbox(label="Put variable parts at start of prompt", value=False)
                different_seeds = gr.Checkbox(label="Use different seed for each picture", value=False)
            with gr.Column():
                prompt_type = gr.Radio(["positive", "negative"], label="Select prompt", value="positive")
                delimiter = gr.Radio(["comma", "space"], label="Select joining char", value="comma")
            with gr.Column():
                margin_size = gr.Slider(label="Grid margins (px)", minimum=0, maximum=500, value=0, step=2)
        return [put_at_start, different_seeds, prompt_type, delimiter, margin_size]

    def run(
        self,
        p: JobContext,
        put_at_start: bool = False,
        different_seeds: bool = False,
        prompt_type: str = "positive",
        variations_delimiter: str = "comma",
        margin_size: int = 0,
    ) -> GenerationResult:
        if prompt_type not in ("positive", "negative"):
            raise ValueError(f"Prompt matrix: unknown prompt type {prompt_type!r} (positive or negative)")
        negative = prompt_type == "negative"
        source = p.job.negative_prompt if negative else p.job.prompt
        prompts = combinations(source, bool(put_at_start), variations_delimiter)
        # p.seed is the job's seed with -1 already drawn, so every image shares it unless asked.
        jobs = (
            image_job(p.job, prompt, negative, p.seed + (index if different_seeds else 0))
            for index, prompt in enumerate(prompts)
        )
        result = GenerationResult.merged(p.run_jobs(jobs, job_count=len(prompts)), p.interrupted)
        if not result.images:
            return result
        parts = source.split("|")
        grid = image_grid(result.images, rows=1 << ((len(parts) - 1) // 2))
        grid = api.draw_prompt_matrix(
            grid, result.images[0].width, result.images[0].height, parts, int(margin_size or 0)
        )
        text = api.add_params(result.infotexts[0], {"Script": TITLE})
        result.images.insert(0, grid)
        result.infotexts.insert(0, text)
        result.index_of_first_image = 1
        saved = api.save_grid(p, grid, "prompt_matrix", text, source, p.seed)
        if saved:
            result.saved_paths.append(str(saved))
        return result
