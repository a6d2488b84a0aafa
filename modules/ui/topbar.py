"""The bar above the tabs ("quicksettings"): checkpoint, SD VAE and CLIP skip.

Each change is written to the settings at once, so it applies to the next generation without a
restart. These settings are left out of the Settings tab, as A1111 does with quicksettings, so an
"Apply settings" there never overwrites a newer choice made here.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from modules.models.vae import AUTOMATIC, NONE
from modules.runtime import Runtime
from modules.ui import icons

KEYS = ("sd_model_checkpoint", "sd_vae", "CLIP_stop_at_last_layers")


@dataclass
class TopBar:
    checkpoint: gr.Dropdown
    refresh: gr.Button
    vae: gr.Dropdown
    clip_skip: gr.Slider


def current_checkpoint(runtime: Runtime) -> str | None:
    """The title of the checkpoint the next generation uses."""
    titles = runtime.models.titles()
    wanted = runtime.options.get("sd_model_checkpoint")
    if wanted:
        try:
            return runtime.models.find(wanted).title
        except KeyError:
            pass
    return titles[0] if titles else None


def vae_choices(runtime: Runtime) -> list[str]:
    return [AUTOMATIC, NONE, *(vae.name for vae in runtime.models.vaes())]


def build(runtime: Runtime) -> TopBar:
    with gr.Row(elem_id="quicksettings"):
        checkpoint = gr.Dropdown(
            label="Stable Diffusion checkpoint",
            choices=runtime.models.titles(),
            value=lambda: current_checkpoint(runtime),
            # A title gains its hash when the file is first hashed (its first load), after the choices
            # were built: without this Gradio refuses such a value and a page opened later shows none.
            allow_custom_value=True,
            elem_id="setting_sd_model_checkpoint",
            scale=3,
        )
        refresh = icons.button("refresh", "refresh_sd_model_checkpoint", scale=0)
        vae = gr.Dropdown(
            label="SD VAE",
            choices=vae_choices(runtime),
            value=lambda: runtime.options.get("sd_vae"),
            elem_id="setting_sd_vae",
            scale=2,
        )
        clip_skip = gr.Slider(
            1,
            12,
            step=1,
            value=lambda: runtime.options.get("CLIP_stop_at_last_layers"),
            label="Clip skip",
            elem_id="setting_CLIP_stop_at_last_layers",
            scale=2,
        )
    bar = TopBar(checkpoint, refresh, vae, clip_skip)
    wire(runtime, bar)
    return bar


def wire(runtime: Runtime, bar: TopBar) -> None:
    def select_checkpoint(title: str | None) -> dict:
        """Load the chosen checkpoint; if that fails, say why once and show the one still in use."""
        if not title:
            return gr.update()
        try:
            runtime.select_checkpoint(title)
        except (KeyError, OSError, ValueError) as error:
            in_use = current_checkpoint(runtime)
            gr.Warning(f"{error}. Still using {in_use}.")
            return gr.update(value=in_use)
        return gr.update(value=current_checkpoint(runtime))

    def refresh() -> tuple[dict, dict]:
        runtime.models.refresh()
        return (
            gr.update(choices=runtime.models.titles(), value=current_checkpoint(runtime)),
            gr.update(choices=vae_choices(runtime)),
        )

    private = {"show_progress": "hidden", "api_visibility": "private"}
    bar.checkpoint.input(
        select_checkpoint, bar.checkpoint, bar.checkpoint, concurrency_id="models", **private
    )
    bar.refresh.click(refresh, None, [bar.checkpoint, bar.vae], **private)
    bar.vae.input(runtime.select_vae, bar.vae, None, concurrency_id="models", **private)
    # .change, not .input: pasting "Clip skip: 2" from a parameters text sets it too.
    bar.clip_skip.change(
        lambda v: runtime.options.set("CLIP_stop_at_last_layers", int(v)), bar.clip_skip, None, **private
    )
