"""The Gradio app: top bar, tabs, and the "send to" links between tabs.

Each tab lives in its own module and only calls the runtime; this module builds them in one
``UiContext`` (no module-level state), applies ui-config.json defaults, adds the tabs extensions make
(``on_ui_tabs``) and the extensions' scripts and styles to the page, and connects the buttons that
carry an image and its parameters from one tab to another.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse

from modules import paths
from modules.extensions.loader import Extension
from modules.processing.job import USE_SAME_CHECKPOINT
from modules.runtime import Runtime
from modules.ui import (
    extensions,
    extra_networks,
    extras,
    icons,
    img2img,
    merger,
    model_defaults,
    pnginfo,
    settings,
    topbar,
    txt2img,
)
from modules.ui.generation import PRIVATE, Session, UiContext, paste_outputs, paste_updates, wire_styles
from modules.ui.results import gallery_paths, pick
from modules.ui.tokens import TokenCounter
from modules.ui.ui_config import UiConfig

TITLE = "Stable Diffusion"


class Tabs:
    """The built tabs, for wiring between them."""

    def __init__(
        self,
        tabs: gr.Tabs,
        t2i: txt2img.Txt2ImgTab,
        i2i: img2img.Img2ImgTab,
        ext: extras.ExtrasTab,
        png: pnginfo.PngInfoTab,
    ) -> None:
        self.tabs, self.txt2img, self.img2img, self.extras, self.pnginfo = tabs, t2i, i2i, ext, png


def build(runtime: Runtime) -> gr.Blocks:
    config = UiConfig(runtime.paths.ui_config_file)
    # Extensions build their Blocks on their own, outside ours (as in A1111); we render them in tabs.
    extension_tabs = collect_extension_tabs(runtime)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        bar = topbar.build(runtime)
        ctx = UiContext(runtime, runtime.styles, TokenCounter(runtime), Session(), bar)
        with gr.Tabs(overflow_behavior="wrap", elem_id="tabs") as tabs:
            with gr.Tab("txt2img", id="txt2img", elem_id="tab_txt2img") as tab:
                t2i = txt2img.build(ctx)
            config.apply(tab, "txt2img")
            with gr.Tab("img2img", id="img2img", elem_id="tab_img2img") as tab:
                i2i = img2img.build(ctx)
            config.apply(tab, "img2img")
            with gr.Tab("Extras", id="extras", elem_id="tab_extras") as tab:
                ext = extras.build(runtime)
            config.apply(tab, "extras")
            with gr.Tab("PNG Info", id="pnginfo", elem_id="tab_pnginfo"):
                png = pnginfo.build()
            with gr.Tab("Checkpoint Merger", id="modelmerger", elem_id="tab_modelmerger"):
                hires_checkpoint = t2i.form.fields["hr_checkpoint_name"]
                merger.build(runtime, [(bar.checkpoint, []), (hires_checkpoint, [USE_SAME_CHECKPOINT])])
            render_extension_tabs(runtime, extension_tabs)
            with gr.Tab("Settings", id="settings", elem_id="tab_settings"):
                settings.build(runtime)
            with gr.Tab("Extensions", id="extensions", elem_id="tab_extensions"):
                extensions.build(runtime)
        for toprow in (t2i.toprow, i2i.toprow):
            wire_styles(ctx, toprow)
        wire_sending(ctx, Tabs(tabs, t2i, i2i, ext, png))
        # After ui-config.json is applied: a default set there is the user's and stays.
        model_defaults.wire(runtime, demo, bar.checkpoint, [t2i.form, i2i.form])
    config.save_if_needed()
    return demo


# --- extensions' tabs ------------------------------------------------------------------------------


def collect_extension_tabs(runtime: Runtime) -> list[tuple[gr.Blocks, str, str]]:
    """The (Blocks, title, elem_id) triples every ui_tabs callback returned; malformed ones reported."""
    found = []
    for returned in runtime.extensions.call("ui_tabs"):
        for entry in returned or []:
            if isinstance(entry, tuple | list) and len(entry) >= 3 and isinstance(entry[0], gr.Blocks):
                found.append((entry[0], str(entry[1]), str(entry[2])))
            else:
                error = TypeError(f"expected (gr.Blocks, title, elem_id), got {entry!r:.80}")
                runtime.extensions.report("?", "callback ui_tabs", error)
    return found


def render_extension_tabs(runtime: Runtime, found: list[tuple[gr.Blocks, str, str]]) -> None:
    """Each extension's Blocks inside a tab after the built-in ones, with A1111's tab ids."""
    for blocks, title, elem_id in found:
        with gr.Tab(title, id=elem_id, elem_id=f"tab_{elem_id}"):
            try:
                blocks.render()
            except Exception as error:  # a broken extension tab must not stop the page
                runtime.extensions.report(title, "ui_tabs render", error)
                gr.HTML(f"<div class='ui-error'>This tab failed to build: {error}</div>")


# --- "send to" ------------------------------------------------------------------------------------


def _open(path: str | None) -> Image.Image | None:
    if not path:
        return None
    with Image.open(path) as image:
        image.load()
        return image


def targets(ctx: UiContext, t: Tabs) -> dict[str, tuple[list[Any], Callable[[str | None, str], list[Any]]]]:
    """Per destination: its output components, and a function (image path, parameters) -> updates."""
    i2i = t.img2img
    t2i_outputs = paste_outputs(ctx, t.txt2img.form)
    i2i_outputs = paste_outputs(ctx, i2i.form)

    def to_img2img(mode: int, sub_tab: str, image: Any) -> list[Any]:
        return [gr.update(selected="img2img"), gr.update(selected=sub_tab), mode, image]

    return {
        "txt2img": (
            [t.tabs, *t2i_outputs],
            lambda path, text: [gr.update(selected="txt2img"), *paste_updates(ctx, t.txt2img.form, text)],
        ),
        "img2img": (
            [t.tabs, i2i.tabs, i2i.mode, i2i.init_image, *i2i_outputs],
            lambda path, text: [
                *to_img2img(img2img.IMG2IMG, img2img.MODES[img2img.IMG2IMG][1], _open(path)),
                *paste_updates(ctx, i2i.form, text),
            ],
        ),
        "inpaint": (
            [t.tabs, i2i.tabs, i2i.mode, i2i.inpaint, *i2i_outputs],
            lambda path, text: [
                *to_img2img(
                    img2img.INPAINT, img2img.MODES[img2img.INPAINT][1], img2img.inpaint_update(_open(path))
                ),
                *paste_updates(ctx, i2i.form, text),
            ],
        ),
        "extras": ([t.tabs, t.extras.image], lambda path, text: [gr.update(selected="extras"), path]),
    }


def wire_sending(ctx: UiContext, t: Tabs) -> None:
    dests = targets(ctx, t)
    for res in (t.txt2img.results, t.img2img.results):
        buttons = {"img2img": res.send_img2img, "inpaint": res.send_inpaint, "extras": res.send_extras}
        for name, button in buttons.items():
            outputs, send = dests[name]
            button.click(
                lambda gallery, index, text, s=send: s(
                    pick(gallery_paths(gallery), index) or None, text or ""
                ),
                [res.gallery, res.selected, res.infotext],
                outputs,
                **PRIVATE,
            )
    png = t.pnginfo
    for name, button in (
        ("txt2img", png.send_txt2img),
        ("img2img", png.send_img2img),
        ("inpaint", png.send_inpaint),
        ("extras", png.send_extras),
    ):
        outputs, send = dests[name]
        button.click(
            lambda path, text, s=send: s(path, text or ""), [png.image, png.infotext], outputs, **PRIVATE
        )


# --- page head, css, theme --------------------------------------------------------------------------


def head_html(theme_name: str = "dark", extension_list: Iterable[Extension] = ()) -> str:
    """Our own scripts, then enabled extensions' javascript/*.js (A1111's order), inlined: the page must
    not load anything from another host."""
    scripts = sorted((paths.ROOT / "javascript").glob("*.js"))
    scripts += [js for ext in extension_list if ext.enabled for js in ext.javascript]
    settings_js = f"<script>window.sdwebuiTheme = {json.dumps(theme_name)};</script>" + icons.hints_script()
    return settings_js + "".join(f"<script>{Path(s).read_text(encoding='utf-8')}</script>" for s in scripts)


def css(extension_list: Iterable[Extension] = ()) -> str:
    """style.css, then each enabled extension's style.css, so an extension can override ours."""
    sheets = [paths.ROOT / "style.css"]
    sheets += [ext.stylesheet for ext in extension_list if ext.enabled and ext.stylesheet]
    own = [sheets[0].read_text(encoding="utf-8"), extra_networks.CSS, icons.css()]
    return "\n".join(own + [sheet.read_text(encoding="utf-8") for sheet in sheets[1:]])


def login_message() -> str:
    """The line Gradio's login page shows above its form (it shows no page title of its own; it
    renders the message as text)."""
    return TITLE


def add_theme_redirect(server_app: Any, theme_name: str) -> None:
    """Page loads of "/" without ``?__theme=`` are redirected to carry the ``ui_theme`` setting's: the
    login page (--gradio-auth) runs none of our scripts, so javascript/theme.js cannot set it there,
    and it would open light on a light-preferring browser."""
    if theme_name not in ("dark", "light"):
        return

    async def redirect(request: Request, call_next: Callable[[Request], Any]) -> Any:
        if request.method == "GET" and request.url.path == "/" and "__theme" not in request.query_params:
            return RedirectResponse(
                str(request.url.include_query_params(__theme=theme_name)), status_code=302
            )
        return await call_next(request)

    server_app.user_middleware.insert(0, Middleware(BaseHTTPMiddleware, dispatch=redirect))
    if server_app.middleware_stack is not None:  # already serving (Gradio's launch): rebuild in place
        server_app.middleware_stack = server_app.build_middleware_stack()


def theme(name: str) -> gr.themes.Base:
    # System fonts only: Gradio's default theme would fetch Google fonts, which an offline app must not.
    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
