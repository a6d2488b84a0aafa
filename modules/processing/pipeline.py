"""What every generation mode shares: planning a job into batches, and finishing a batch into images.

``plan_job`` resolves everything that can fail before any sampling starts (seeds, sampler name, prompt
parsing), so a bad request fails fast with a clear message and wastes no compute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from PIL import Image

from modules import output_paths, prompting
from modules.extensions.payloads import ImageSavedParams, PostprocessImageArgs
from modules.models.bundle import ModelBundle
from modules.processing import image_cond, vae
from modules.processing import seeds as seeding
from modules.processing.job import GenerationJob, GenerationResult
from modules.processing.job import infotext_key as key
from modules.processing.prompt_conds import ConditioningBuilder

if TYPE_CHECKING:
    from modules.lookup import Lookup
    from modules.paths import Paths
    from modules.processing.sampling_pass import SamplingPlan
    from modules.progress import Progress
    from modules.runtime import Runtime

VERSION = "sdwebui-0.1.0"


@dataclass
class Batch:
    index: int
    prompts: list[str]
    negative_prompts: list[str]
    seeds: list[int]
    subseeds: list[int]
    extra_networks: list[list[prompting.ExtraNetworkCall]] = field(default_factory=list)


@dataclass
class JobPlan:
    """A job being run: what scripts see as ``p`` (the extension API's ``JobContext``).

    ``all_prompts``/``all_negative_prompts``/``all_seeds``/``all_subseeds`` are per image and may be
    changed by scripts before the first batch; ``extra`` (alias ``extra_generation_params``) holds
    parameters-text pairs; ``bundle`` (alias ``model``) is the model in use. What else a script needs
    of the app is offered here, typed: ``progress``, ``interrupted``, ``lookup`` (sampler, schedule,
    checkpoint and VAE names), ``paths`` (the app's folders), ``process_images`` and ``run_jobs``.
    """

    job: GenerationJob
    bundle: ModelBundle
    settings: Mapping[str, Any]
    seed: int
    subseed: int
    all_prompts: list[str]
    all_negative_prompts: list[str]
    all_seeds: list[int]
    all_subseeds: list[int]
    conditioning: ConditioningBuilder
    mode: str = "txt2img"
    extra: dict[str, Any] = field(default_factory=dict)  # infotext pairs set while running (Schedule type...)
    runtime: Runtime | None = None
    extra_images: list[Any] = field(default_factory=list)  # shown after the results (e.g. the depth map)
    generate: Callable[..., GenerationResult] | None = None  # this mode's entry point, for scripts' run()
    comments: list[str] = field(default_factory=list)  # notes for the user, shown with the result
    first_pass: SamplingPlan | None = None  # the planned (first) sampling pass
    active: ModelBundle | None = None  # the model sampling now when not ``bundle`` (a hires checkpoint)

    @property
    def extra_generation_params(self) -> dict[str, Any]:
        return self.extra

    @property
    def model(self) -> ModelBundle:
        """The model sampling now: ``bundle`` except during a hires pass on another checkpoint. The
        parameters text always names ``bundle``, the job's checkpoint, as A1111's does."""
        return self.active or self.bundle

    @property
    def progress(self) -> Progress:
        """This job's progress: its job count, ``next_job()``, ``textinfo`` and interrupt state."""
        return self._runtime.progress

    @property
    def interrupted(self) -> bool:
        """True once the user pressed Interrupt: a script running sub-jobs stops starting new ones."""
        return bool(self._runtime.progress.interrupted)

    @property
    def lookup(self) -> Lookup:
        return self._runtime.lookup

    @property
    def paths(self) -> Paths:
        return self._runtime.paths

    @property
    def _runtime(self) -> Runtime:
        if self.runtime is None:
            raise RuntimeError("this job context is not attached to a running app")
        return self.runtime

    def run_jobs(self, jobs: Iterable[GenerationJob], job_count: int) -> list[GenerationResult]:
        """Run sub-jobs of this mode one after another as one progress bar of ``job_count`` batches in
        all; at Interrupt the remaining jobs are not started (nor built: ``jobs`` may be a generator).
        Merge the results with ``GenerationResult.merged`` where one result is wanted."""
        progress = self.progress
        progress.job_count = job_count
        results: list[GenerationResult] = []
        for number, job in enumerate(jobs):
            if number:
                progress.next_job()
            if self.interrupted:
                break
            results.append(self.process_images(job))
        return results

    def process_images(self, job: GenerationJob) -> GenerationResult:
        """Run another job of this mode inside the current one (selectable scripts' ``run``).

        The job's own ``override_settings`` apply on top of this job's snapshot (an X/Y/Z cell's
        checkpoint, VAE, RNG source...).
        """
        job.validate()
        settings = MappingProxyType({**self.settings, **job.override_settings})
        return self.generate(self.runtime, job, settings)

    def batches(self) -> Iterator[Batch]:
        size = self.job.batch_size
        for index in range(self.job.n_iter):
            window = slice(index * size, (index + 1) * size)
            yield Batch(
                index,
                self.all_prompts[window],
                self.all_negative_prompts[window],
                self.all_seeds[window],
                self.all_subseeds[window],
            )

    def empty_result(self) -> GenerationResult:
        return GenerationResult(
            images=[],
            seeds=[],
            subseeds=[],
            prompts=[],
            negative_prompts=[],
            infotexts=[],
            parameters=self.parameters(),
            comments=self.comments,
        )

    def parameters(self) -> dict[str, Any]:
        job = self.job
        return {
            "steps": job.steps,
            "sampler_name": job.sampler_name,
            "scheduler": job.scheduler,
            "cfg_scale": job.cfg_scale,
            "width": job.width,
            "height": job.height,
            "batch_size": job.batch_size,
            "n_iter": job.n_iter,
            "clip_skip": self.clip_skip,
            "subseed_strength": job.subseed_strength,
            "sd_model_name": self.bundle.name,
            "sd_model_hash": self.bundle.short_hash,
        }

    @property
    def clip_skip(self) -> int:
        return self.job.clip_skip or int(self.settings["CLIP_stop_at_last_layers"])

    def generation_params(self, index_in_job: int) -> dict[str, Any]:
        """The ``Key: value`` pairs of one image's infotext, in A1111's order."""
        job, settings = self.job, self.settings
        params: dict[str, Any] = {
            key("steps"): job.steps,
            key("sampler_name"): job.sampler_name,
            key("scheduler"): self.extra.get(key("scheduler")),
            key("cfg_scale"): job.cfg_scale,
            key("seed"): self.all_seeds[index_in_job],
            key("width"): f"{job.width}x{job.height}",
            key("sd_model_checkpoint"): self.bundle.short_hash,
            "Model": self.bundle.name,
            "VAE hash": self.bundle.vae_sha256[:10] if self.bundle.vae_sha256 else None,
            key("sd_vae"): self.bundle.vae_name,
        }
        if job.subseed_strength > 0:
            params[key("subseed")] = self.all_subseeds[index_in_job]
            params[key("subseed_strength")] = job.subseed_strength
        if job.seed_resize_from_w > 0 and job.seed_resize_from_h > 0:
            params[key("seed_resize_from_w")] = f"{job.seed_resize_from_w}x{job.seed_resize_from_h}"
        if self.clip_skip > 1:
            params[key("CLIP_stop_at_last_layers")] = self.clip_skip
        if settings["randn_source"] != "GPU":
            params[key("randn_source")] = settings["randn_source"]
        params.update(self.conditioning.encoder.extra_generation_params)  # TI hashes, Emphasis
        if self.conditioning.old_scheduling_changed:
            params[key("use_old_scheduling")] = True
        params.update(self.extra)
        params.update(job.extra_generation_params)
        params["Version"] = VERSION
        return params


def make_encoder(
    runtime: Runtime, bundle: ModelBundle, job: GenerationJob, settings: Mapping[str, Any]
) -> Any:
    from modules.conditioning import PromptEncoder

    return PromptEncoder(
        bundle,
        clip_skip=job.clip_skip or int(settings["CLIP_stop_at_last_layers"]),
        emphasis=settings["emphasis"],
        embeddings=getattr(runtime, "embeddings", None),
        comma_padding_backtrack=int(settings["comma_padding_backtrack"]),
        text_cache=getattr(runtime, "text_cache", None),
    )


def plan_job(
    runtime: Runtime,
    bundle: ModelBundle,
    job: GenerationJob,
    settings: Mapping[str, Any],
    first_pass: SamplingPlan,
    mode: str = "txt2img",
) -> JobPlan:
    """Resolve seeds and prompts; prompt schedules count the first pass's model calls."""
    count = job.batch_size * job.n_iter
    seed = seeding.resolve_seed(job.seed)
    subseed = seeding.resolve_seed(job.subseed)
    all_seeds = seeding.all_seeds(seed, count, job.subseed_strength)
    builder = ConditioningBuilder(
        make_encoder(runtime, bundle, job, settings),
        first_pass.schedule_steps,
        use_old_scheduling=bool(settings["use_old_scheduling"]),
    )
    extra = dict(first_pass.infotext)
    if image_cond.uses_inpainting_cond(bundle):
        # A1111 records the mask strength whenever an inpainting model's extra channels are fed.
        extra[key("inpainting_mask_weight")] = float(settings["inpainting_mask_weight"])
    return JobPlan(
        job=job,
        bundle=bundle,
        settings=settings,
        seed=seed,
        subseed=subseed,
        all_prompts=[styled(runtime, job.prompt, job.styles, negative=False, settings=settings)] * count,
        all_negative_prompts=[
            styled(runtime, job.negative_prompt, job.styles, negative=True, settings=settings)
        ]
        * count,
        all_seeds=all_seeds,
        all_subseeds=seeding.all_subseeds(subseed, job.subseed_strength, all_seeds),
        conditioning=builder,
        mode=mode,
        extra=extra,
        runtime=runtime,
        first_pass=first_pass,
    )


def styled(
    runtime: Runtime, prompt: str, styles: list[str], negative: bool, settings: Mapping[str, Any]
) -> str:
    """The prompt with the job's styles (styles.csv) applied and, with "Enable comments" on, its ``#``
    comments stripped, as A1111 does at generation time: what a comment hides (``<lora:...>`` tags
    included) reaches neither the extra networks, the encoder nor the parameters text."""
    comments = bool(settings["enable_prompt_comments"])
    database = getattr(runtime, "styles", None)
    if not styles or database is None:
        return prompting.strip_comments(prompt) if comments else prompt
    if negative:
        return database.apply_negative_styles_to_prompt(prompt, styles, comments=comments)
    return database.apply_styles_to_prompt(prompt, styles, comments=comments)


def run_selected_script(
    runtime: Runtime,
    job: GenerationJob,
    settings: Mapping[str, Any],
    mode: str,
    generate: Callable[[Any, GenerationJob, Mapping[str, Any]], GenerationResult],
) -> GenerationResult:
    """A selectable script (X/Y/Z plot, prompt matrix...) runs the job its own way, or falls through."""
    from modules.processing.sampling_pass import plan_pass

    script = runtime.scripts.find(job.script_name, is_img2img=mode == "img2img")
    bundle = runtime.model(settings)
    # The script's own plan (what it sees as ``p``); the jobs it runs plan their passes themselves.
    first_pass = plan_pass(
        runtime,
        bundle,
        job,
        settings,
        steps=job.steps,
        sampler_name=job.sampler_name,
        scheduler=job.scheduler,
    )
    plan = plan_job(runtime, bundle, job, settings, first_pass, mode=mode)
    plan.generate = generate
    result = script.run(plan, *job.script_args)
    return result if result is not None else generate(runtime, job, settings)


def run_batches(
    runtime: Runtime,
    plan: JobPlan,
    sample_batch: Callable[[Batch], Any],
    postprocess: Callable[[int, Image.Image], Image.Image] | None = None,
) -> GenerationResult:
    """The batch loop every mode shares, with the scripts' and extra networks' hooks around it."""
    scripts = runtime.scripts
    scripts.call(plan, "process")
    result = plan.empty_result()
    try:
        for batch in plan.batches():
            if runtime.progress.interrupted:
                break
            if batch.index:
                runtime.share_turn(plan)  # another user's waiting job may run first: fair per image
                if runtime.progress.interrupted:
                    break
                runtime.progress.next_job()
            hook_args = dict(
                batch_number=batch.index, prompts=batch.prompts, seeds=batch.seeds, subseeds=batch.subseeds
            )
            scripts.call(plan, "before_process_batch", **hook_args)
            strip_extra_networks(batch)
            # process_batch sees the text without <lora:...> tags, as in A1111.
            hook_args["prompts"] = batch.prompts
            scripts.activate_networks(plan, batch.extra_networks)
            scripts.call(plan, "process_batch", **hook_args)
            latents = sample_batch(batch)
            scripts.call(plan, "post_sample", batch_number=batch.index, samples=latents)
            finish_batch(runtime, plan, batch, latents, result, postprocess)
        result.interrupted = runtime.progress.interrupted
        add_grid(runtime, plan, result)
        result.extra_images = list(plan.extra_images)
        scripts.call(plan, "postprocess", result)
    finally:
        scripts.deactivate_networks(plan)
    return result


def add_grid(runtime: Runtime, plan: JobPlan, result: GenerationResult) -> None:
    """Several images: make a grid, save it (grids folder) and show it first, as users expect.

    As in A1111, a job that does not save its grid gets none at all (the API's save_images: false),
    and one image gets a grid only with "Do not save grids consisting of one picture" off."""
    settings, job = plan.settings, plan.job
    one_image = len(result.images) < 2 and settings["grid_only_if_multiple"]
    if job.do_not_save_grid or one_image or not (settings["return_grid"] or settings["grid_save"]):
        return
    from modules import images as image_files

    grid = image_files.image_grid(result.images, batch_size=job.batch_size)
    text = result.infotexts[0]
    if settings["grid_save"]:
        folder = runtime.paths.outputs_dir / f"{plan.mode}-grids"
        image_files.save_image(
            grid,
            folder,
            basename="grid",
            pattern="",
            extension=settings["samples_format"],
            infotext=text if settings["enable_pnginfo"] else None,
        )
    if settings["return_grid"]:
        result.images.insert(0, grid)
        result.infotexts.insert(0, text)
        result.index_of_first_image = 1


def use_model(runtime: Runtime, plan: JobPlan, bundle: ModelBundle, batch: Batch) -> bool:
    """Sample with ``bundle`` from now on (a hires checkpoint, or back to the job's own): the batch's
    extra networks move with it, restored on the model left. True when the model changed."""
    if plan.model is bundle:
        return False
    runtime.scripts.deactivate_networks(plan)
    plan.active = None if bundle is plan.bundle else bundle
    runtime.scripts.activate_networks(plan, batch.extra_networks)
    return True


def strip_extra_networks(batch: Batch) -> None:
    """Take ``<lora:...>``-style tags out of the batch's prompts, keeping them as structured calls."""
    parsed = [prompting.extract_extra_networks(text) for text in batch.prompts]
    batch.prompts = [text for text, _ in parsed]
    batch.extra_networks = [calls for _, calls in parsed]
    batch.negative_prompts = [prompting.extract_extra_networks(t)[0] for t in batch.negative_prompts]


def infotext(plan: JobPlan, index_in_job: int) -> str:
    from modules.infotext import create_infotext

    return create_infotext(
        plan.all_prompts[index_in_job],
        plan.all_negative_prompts[index_in_job],
        plan.generation_params(index_in_job),
    )


def finish_batch(
    runtime: Runtime,
    plan: JobPlan,
    batch: Batch,
    latents: Any,
    result: GenerationResult,
    postprocess: Callable[[int, Image.Image], Image.Image] | None = None,
) -> None:
    """Decode a batch, let the mode finish each image (e.g. paste back over the original), record and save."""
    images = vae.decode(plan.model, latents)
    start = batch.index * plan.job.batch_size
    if postprocess is not None:
        images = [postprocess(offset, image) for offset, image in enumerate(images)]
    runtime.scripts.call(plan, "postprocess_batch", batch_number=batch.index, images=images)
    for offset, image in enumerate(images):
        index = start + offset
        pp = PostprocessImageArgs(image, index)
        runtime.scripts.postprocess_image(plan, pp)
        image = pp.image
        text = infotext(plan, index)
        result.images.append(image)
        result.seeds.append(plan.all_seeds[index])
        result.subseeds.append(plan.all_subseeds[index])
        result.prompts.append(plan.all_prompts[index])
        result.negative_prompts.append(plan.all_negative_prompts[index])
        result.infotexts.append(text)
        saved = save_output(runtime, plan, image, index, text)
        if saved:
            result.saved_paths.append(str(saved))


def save_output(runtime: Runtime, plan: JobPlan, image: Any, index: int, text: str) -> Any:
    settings, job = plan.settings, plan.job
    if job.do_not_save_samples or not settings["samples_save"]:
        return None
    from modules import images as image_files

    fields = image_files.NameFields(
        seed=plan.all_seeds[index],
        prompt=plan.all_prompts[index],
        negative_prompt=plan.all_negative_prompts[index],
        styles=tuple(job.styles),
        model_name=plan.bundle.name,
        model_hash=plan.bundle.short_hash or "",
        steps=job.steps,
        cfg_scale=job.cfg_scale,
        width=job.width,
        height=job.height,
        sampler=job.sampler_name,
        scheduler=job.scheduler,
        clip_skip=plan.clip_skip,
        batch_index=index % job.batch_size,
        batch_size=job.batch_size,
        iteration=index // job.batch_size,
        n_iter=job.n_iter,
    )
    outputs = runtime.paths.outputs_dir
    if plan.job.outpath_samples:
        folder = Path(plan.job.outpath_samples)  # img2img batch: a folder chosen in the UI
    else:
        folder = output_paths.output_folder(
            outputs, settings[f"outdir_{plan.mode}_samples"], f"{plan.mode}-images"
        )
    # Extensions may change the image or its text before it is written (filename is known only after).
    saving = ImageSavedParams(image, "", text if settings["enable_pnginfo"] else None, plan.mode)
    runtime.extensions.call("before_image_saved", saving)
    path = image_files.save_image(
        saving.image,
        folder,
        extension=settings["samples_format"],
        infotext=saving.infotext,
        fields=fields,
        pattern=image_files.samples_pattern(settings),
        add_number=bool(settings["save_images_add_number"]),
        subfolder_pattern=settings["directories_filename_pattern"] if settings["save_to_dirs"] else None,
    )
    saving.filename = str(path)
    runtime.extensions.call("image_saved", saving)
    return path
