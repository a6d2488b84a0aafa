"""Shared by the built-in scripts' tests: loading the scripts, a runtime on the tiny model, and a fake job
context whose ``process_images`` records the jobs it gets and returns flat-coloured images at once."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from PIL import Image

from modules import cmd_args, paths
from modules.extensions import loader
from modules.extensions.registry import ExtensionRegistry
from modules.infotext import create_infotext
from modules.lookup import Lookup
from modules.options import Options
from modules.processing.job import GenerationJob, GenerationResult
from modules.processing.pipeline import JobPlan
from modules.progress import Progress
from modules.runtime import Runtime
from modules.sampling.registry import default_registry

SCRIPT_EXTENSIONS = ("xyz_grid", "prompt_matrix", "prompts_from_file", "outpainting")


def load_scripts(names: tuple[str, ...] = SCRIPT_EXTENSIONS) -> ExtensionRegistry:
    registry = ExtensionRegistry()
    found = [
        e
        for e in loader.discover(set(), dirs=((paths.ROOT / "extensions-builtin", True),))
        if e.name in names
    ]
    loader.load_scripts(found, registry)
    assert not registry.errors, registry.errors
    return registry


def script(registry: ExtensionRegistry, title: str) -> Any:
    return next(s for s in registry.scripts if s.title() == title)


def module_of(obj: Any) -> ModuleType:
    return sys.modules[type(obj).__module__]


def tiny_runtime(tmp_path: Path, bundle: Any, registry: ExtensionRegistry | None = None) -> Runtime:
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu"]), registry or load_scripts())
    rt.model_loader = lambda: bundle
    return rt


def colour_of(job: GenerationJob) -> tuple[int, int, int]:
    """A colour that depends on the job's fields, so tests can tell cells apart by their pixels."""
    return (job.steps * 10 % 256, int(job.cfg_scale * 10) % 256, job.seed % 256)


@dataclass
class FakeRuntime:
    progress: Progress = field(default_factory=Progress)
    sampling_registry: Any = field(default_factory=default_registry)
    models: Any = None
    styles: Any = None
    paths: Any = None


@dataclass
class FakeContext:
    """Stands in for a running JobPlan: records every job passed to ``process_images``."""

    job: GenerationJob
    mode: str = "txt2img"
    seed: int = 1234
    subseed: int = 5678
    runtime: Any = field(default_factory=FakeRuntime)
    settings: Any = field(
        default_factory=lambda: MappingProxyType({**Options(None).snapshot(), "grid_save": False})
    )
    jobs: list[GenerationJob] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def extra_generation_params(self) -> dict[str, Any]:
        return self.extra

    # The services a JobPlan offers scripts, over the fake runtime.
    run_jobs = JobPlan.run_jobs

    @property
    def progress(self) -> Progress:
        return self.runtime.progress

    @property
    def interrupted(self) -> bool:
        return bool(self.runtime.progress.interrupted)

    @property
    def lookup(self) -> Lookup:
        return Lookup(self.runtime.sampling_registry, self.runtime.models)

    @property
    def paths(self) -> Any:
        return self.runtime.paths

    def process_images(self, job: GenerationJob) -> GenerationResult:
        job.validate()
        self.jobs.append(job)
        count = job.batch_size * job.n_iter
        seeds = [job.seed + i for i in range(count)]
        params = {
            "Steps": job.steps,
            "Sampler": job.sampler_name,
            "CFG scale": job.cfg_scale,
            "Seed": seeds[0],
            "Size": f"{job.width}x{job.height}",
            **job.extra_generation_params,
            "Version": "test",
        }
        text = create_infotext(job.prompt, job.negative_prompt, params)
        return GenerationResult(
            images=[Image.new("RGB", (job.width, job.height), colour_of(job)) for _ in range(count)],
            seeds=seeds,
            subseeds=[job.subseed] * count,
            prompts=[job.prompt] * count,
            negative_prompts=[job.negative_prompt] * count,
            infotexts=[text] * count,
            parameters={"steps": job.steps},
        )
