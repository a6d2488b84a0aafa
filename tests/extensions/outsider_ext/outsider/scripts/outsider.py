"""A third-party-style extension using every part of the public extension API (modules/extensions/api.py).

Every hook and callback appends ``(event, data)`` to ``EVENTS`` so tests can check what each one saw.
"""

from __future__ import annotations

import gradio as gr
from PIL import ImageOps

from modules.extensions.api import (
    API_VERSION,
    AlwaysVisible,
    ExtraNetwork,
    OptionInfo,
    Script,
    on_after_cfg,
    on_app_started,
    on_before_image_saved,
    on_cfg_denoiser,
    on_image_saved,
    on_infotext_pasted,
    on_model_loaded,
    on_ui_settings,
    on_ui_tabs,
    register_extra_network,
)

EVENTS: list[tuple[str, object]] = []
SEED_OFFSET = 1000


def record(event: str, data: object = None) -> None:
    EVENTS.append((event, data))


class OutsiderAlways(Script):
    """Always on. Args (from the UI or the API's alwayson_scripts): enabled, strength."""

    events = EVENTS

    def title(self):
        return "Outsider always"

    def show(self, is_img2img):
        return AlwaysVisible

    def ui(self, is_img2img):
        enabled = gr.Checkbox(False, label="Outsider enabled")
        strength = gr.Slider(0, 1, value=0.5, label="Outsider strength")
        self.infotext_fields = [(enabled, "Outsider"), (strength, "Outsider strength")]
        return [enabled, strength]

    def process(self, p, enabled=False, strength=0.5):
        record("process", {"api": API_VERSION, "prompts": list(p.all_prompts), "seeds": list(p.all_seeds)})
        if not enabled:
            return
        p.all_prompts[:] = [f"{prompt}, outsider" for prompt in p.all_prompts]
        p.all_seeds[:] = [seed + SEED_OFFSET for seed in p.all_seeds]
        p.extra_generation_params["Outsider"] = True
        p.extra_generation_params["Outsider strength"] = strength

    def before_process_batch(self, p, *args, batch_number, prompts, seeds, subseeds):
        record(
            "before_process_batch", {"batch": batch_number, "prompts": list(prompts), "seeds": list(seeds)}
        )

    def process_batch(self, p, *args, batch_number, prompts, seeds, subseeds):
        record("process_batch", {"batch": batch_number, "prompts": list(prompts)})

    def post_sample(self, p, *args, batch_number, samples):
        record("post_sample", {"batch": batch_number, "shape": tuple(samples.shape)})

    def postprocess_batch(self, p, *args, batch_number, images):
        record("postprocess_batch", {"batch": batch_number, "count": len(images)})

    def postprocess_image(self, p, pp, enabled=False, strength=0.5):
        record("postprocess_image", {"index": pp.index, "size": pp.image.size})
        if enabled:
            pp.image = ImageOps.invert(pp.image.convert("RGB"))

    def before_hr(self, p, *args):
        record("before_hr", {"width": p.job.width})

    def postprocess(self, p, result, *args):
        record("postprocess", {"images": len(result.images), "seeds": list(result.seeds)})


class OutsiderTwice(Script):
    """Selectable: runs the job twice (seed, seed + 1) through p.process_images and joins the results."""

    def title(self):
        return "Outsider twice"

    def ui(self, is_img2img):
        return [gr.Textbox("", label="Suffix")]

    def run(self, p, suffix=""):
        from dataclasses import replace

        first = p.process_images(replace(p.job, script_name=None, prompt=p.job.prompt + suffix))
        second = p.process_images(replace(p.job, script_name=None, seed=p.seed + 1))
        record("run", {"seeds": first.seeds + second.seeds})
        first.images += second.images
        first.seeds += second.seeds
        first.infotexts += second.infotexts
        first.prompts += second.prompts
        return first


def activate(p, calls):
    record("network_activate", [call.args for call in calls])
    if calls:
        p.extra_generation_params["Outsider network"] = ",".join(call.args[0] for call in calls)


def deactivate(p):
    record("network_deactivate", None)


register_extra_network(ExtraNetwork("outsider", activate, deactivate))


@on_app_started
def app_started(demo, app):
    record("app_started", (demo, app))


@on_model_loaded
def model_loaded(bundle):
    record("model_loaded", bundle.name)


@on_ui_tabs
def ui_tabs():
    record("ui_tabs")
    return []


@on_ui_settings
def ui_settings(options):
    options.add(OptionInfo("outsider_option", 3, "Outsider option", "Outsider", "number"))
    record("ui_settings")


@on_cfg_denoiser
def cfg_denoiser(step):
    record(
        "cfg_denoiser",
        {
            "shape": tuple(step.x.shape),
            "sigma": float(step.sigma.flatten()[0]),
            "call": step.call_index,
            "total": step.total_steps,
            "conds": len(step.text_cond),
            "uncond_shape": tuple(step.text_uncond[0].shape),
        },
    )


@on_after_cfg
def after_cfg(after):
    record("after_cfg", {"shape": tuple(after.denoised.shape), "call": after.call_index})


@on_before_image_saved
def before_image_saved(params):
    record("before_image_saved", {"mode": params.mode, "filename": params.filename})
    if params.infotext is not None:
        params.infotext += ", Saved by: outsider"


@on_image_saved
def image_saved(params):
    record("image_saved", {"filename": params.filename, "infotext": params.infotext})


@on_infotext_pasted
def infotext_pasted(text, params):
    record("infotext_pasted", text)
    if "Outsider strength" in params:
        params["Outsider strength"] = float(params["Outsider strength"])
