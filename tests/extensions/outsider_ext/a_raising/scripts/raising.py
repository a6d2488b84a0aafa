"""Raises in a hook and in callbacks: each failure is reported, generation still succeeds."""

from modules.extensions.api import AlwaysVisible, Script, on_cfg_denoiser, on_model_loaded


class Raising(Script):
    def title(self):
        return "Raising"

    def show(self, is_img2img):
        return AlwaysVisible

    def process_batch(self, p, *args, **kwargs):
        raise RuntimeError("raising in process_batch")


@on_model_loaded
def fail_on_model(bundle):
    raise ValueError("raising in model_loaded")


@on_cfg_denoiser
def fail_on_step(step):
    raise ValueError("raising in cfg_denoiser")
