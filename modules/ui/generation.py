"""What txt2img and img2img share: the prompt row (prompts, token counters, styles, Generate /
Interrupt / Skip, read-parameters arrow), the parameter controls, and the generate handler.

Holds no generation logic: controls become a ``GenerationJob`` (see ``form.JobForm``) that goes to
``runtime.txt2img`` / ``runtime.img2img``.
"""

from __future__ import annotations

import html
import inspect
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from modules import infotext as infotext_format
from modules.processing.job import GenerationJob, GenerationResult
from modules.runtime import Runtime
from modules.styles import PromptStyle, StyleDatabase
from modules.ui import choices, extra_networks, icons, performance, results, scripts
from modules.ui.form import JobForm
from modules.ui.progress import follow
from modules.ui.scripts import ScriptControls
from modules.ui.tokens import TokenCounter
from modules.ui.topbar import TopBar

Runner = Callable[[GenerationJob], GenerationResult]
PRIVATE = {"show_progress": "hidden", "api_visibility": "private"}


@dataclass
class Session:
    """What the UI remembers between requests: the last generation's parameters text (A1111 keeps it
    in params.txt, which the read-parameters button reads when the prompt box is empty)."""

    last_infotext: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class UiContext:
    """Everything a tab builder needs, passed explicitly (no module-level state)."""

    runtime: Runtime
    styles: StyleDatabase
    tokens: TokenCounter
    session: Session
    topbar: TopBar
    style_dropdowns: list[gr.Dropdown] = field(default_factory=list)


@dataclass
class Toprow:
    prompt: gr.Textbox
    negative: gr.Textbox
    token_counter: gr.HTML
    negative_token_counter: gr.HTML
    generate: gr.Button
    interrupt: gr.Button
    skip: gr.Button
    paste: gr.Button
    styles: gr.Dropdown
    apply_styles: gr.Button
    save_style: gr.Button
    extra_networks: gr.Button


def start_tab(ctx: UiContext, tab: str) -> tuple[Toprow, Any, JobForm]:
    """What every generating tab begins with: the prompt row, its extra-networks panel, and a form that
    already holds the two prompt boxes."""
    toprow = build_toprow(ctx, tab)
    networks = extra_networks.build(ctx.runtime, tab)
    form = JobForm()
    form.add("prompt", toprow.prompt)
    form.add("negative_prompt", toprow.negative)
    return toprow, networks, form


def build_toprow(ctx: UiContext, tab: str) -> Toprow:
    with gr.Row(elem_id=f"{tab}_toprow", elem_classes="toprow"):
        with gr.Column(scale=6, elem_id=f"{tab}_prompt_container"):
            token_counter = gr.HTML("", elem_id=f"{tab}_token_counter", elem_classes="token-counter")
            prompt = gr.Textbox(
                label="Prompt",
                elem_id=f"{tab}_prompt",
                lines=3,
                placeholder="Prompt (press Ctrl+Enter to generate, Alt+Enter to skip, Esc to interrupt)",
            )
            negative_counter = gr.HTML(
                "", elem_id=f"{tab}_negative_token_counter", elem_classes="token-counter"
            )
            negative = gr.Textbox(
                label="Negative prompt",
                elem_id=f"{tab}_neg_prompt",
                lines=2,
                placeholder="Negative prompt (press Ctrl+Enter to generate)",
            )
        with gr.Column(scale=1, min_width=180, elem_id=f"{tab}_actions_column"):
            # Interrupt and Skip take Generate's place while a job runs, side by side in one row of
            # the same height, so nothing below moves (A1111's layout).
            with gr.Row(elem_id=f"{tab}_generate_box", elem_classes="generate-box"):
                generate = gr.Button(
                    "Generate",
                    variant="primary",
                    elem_id=f"{tab}_generate",
                    elem_classes=icons.classes("generate"),
                )
                interrupt = gr.Button(
                    "Interrupt",
                    elem_id=f"{tab}_interrupt",
                    visible=False,
                    elem_classes=icons.classes("interrupt"),
                )
                skip = gr.Button(
                    "Skip", elem_id=f"{tab}_skip", visible=False, elem_classes=icons.classes("skip")
                )
            extra_networks = gr.Button("Show/hide extra networks", elem_id=f"{tab}_extra_networks", size="sm")
            with gr.Row(elem_id=f"{tab}_tools"):
                paste = icons.button("paste", f"{tab}_paste", elem_classes=["tool"])
                apply_styles = icons.button("style_apply", f"{tab}_style_apply", elem_classes=["tool"])
                save_style = icons.button("style_save", f"{tab}_style_create", elem_classes=["tool"])
            styles = gr.Dropdown(
                label="Styles",
                choices=list(ctx.styles.styles),
                value=[],
                multiselect=True,
                elem_id=f"{tab}_styles",
            )
    ctx.style_dropdowns.append(styles)
    return Toprow(
        prompt,
        negative,
        token_counter,
        negative_counter,
        generate,
        interrupt,
        skip,
        paste,
        styles,
        apply_styles,
        save_style,
        extra_networks,
    )


def sampler_controls(runtime: Runtime, tab: str, form: JobForm) -> None:
    registry = runtime.sampling_registry
    with gr.Row():
        form.control("sampler_name", tab, choices=choices.samplers(registry))
        form.control("scheduler", tab, choices=choices.schedulers(registry))
        form.control("steps", tab)


def size_controls(tab: str, form: JobForm) -> None:
    with gr.Row():
        with gr.Column(scale=4):
            width = form.control("width", tab)
            height = form.control("height", tab)
        swap = icons.button("swap_size", f"{tab}_res_switch_btn", scale=0)
        with gr.Column(scale=2):
            form.control("n_iter", tab)
            form.control("batch_size", tab)
    swap.click(lambda w, h: (h, w), [width, height], [width, height], **PRIVATE)


def seed_controls(tab: str, form: JobForm) -> tuple[gr.Button, gr.Button]:
    """Seed row and "Extra seed options"; returns the reuse buttons (the tab knows the last seeds)."""
    with gr.Row(elem_id=f"{tab}_seed_row"):
        seed = form.control("seed", tab, scale=4)
        random_seed = icons.button("random_seed", f"{tab}_random_seed", scale=0)
        reuse_seed = icons.button("reuse_seed", f"{tab}_reuse_seed", scale=0)
    random_seed.click(lambda: -1, None, seed, **PRIVATE)
    with gr.Accordion("Extra seed options", open=False, elem_id=f"{tab}_subseed_show"):
        with gr.Row():
            subseed = form.control("subseed", tab)
            random_subseed = icons.button("random_seed", f"{tab}_random_subseed", scale=0)
            reuse_subseed = icons.button("reuse_seed", f"{tab}_reuse_subseed", scale=0)
            form.control("subseed_strength", tab)
        with gr.Row():
            form.control("seed_resize_from_w", tab)
            form.control("seed_resize_from_h", tab)
    random_subseed.click(lambda: -1, None, subseed, **PRIVATE)
    return reuse_seed, reuse_subseed


def cfg_control(tab: str, form: JobForm) -> None:
    form.control("cfg_scale", tab)


def script_controls(ctx: UiContext, tab: str, form: JobForm) -> ScriptControls:
    """Always-on scripts' accordions, then the Script dropdown with the selectable scripts' controls
    (A1111's order at the bottom of the settings column); their infotext fields join "paste"."""
    is_img2img = tab == "img2img"
    alwayson = scripts.build_alwayson(ctx.runtime, is_img2img, tab)
    dropdown, selectable = scripts.build_selectable(ctx.runtime, is_img2img, tab)
    controls = ScriptControls(dropdown, selectable, alwayson)
    form.infotext_fields.extend(controls.infotext_fields())
    return controls


def show_result(result: GenerationResult) -> tuple[list[Any], str, dict]:
    """Gallery images carry their parameters text, so a downloaded image keeps it (as in A1111)."""
    for image, text in zip(result.images, result.infotexts, strict=False):
        image.info["parameters"] = text
    generation = {
        "infotexts": list(result.infotexts),
        "seeds": list(result.seeds),
        "subseeds": list(result.subseeds),
    }
    shown = [*result.images, *result.extra_images]  # the extra images (a depth map) last, as A1111
    return shown, (result.infotexts[0] if result.infotexts else ""), generation


def wire_generate(
    ctx: UiContext,
    tab: str,
    toprow: Toprow,
    res: results.Results,
    inputs: list[gr.components.Component],
    prepare: Callable[[list[Any]], tuple[GenerationJob, Runner]],
    optional: int = 0,
) -> None:
    """Generate -> (Interrupt, Skip, progress, preview) -> gallery and parameters text.

    ``prepare`` turns the inputs' values into a job and the runtime call that runs it; the last
    ``optional`` inputs (scripts' controls) may be left out by Gradio API clients.
    """
    runtime = ctx.runtime
    keep = gr.update()
    # The tab's own task: Interrupt and Skip act on it alone, never on another tab's or user's.
    task_state = gr.State("")

    async def on_generate(request: gr.Request, *values: Any) -> AsyncIterator[tuple]:
        try:
            job, run = prepare(list(values))
            job.validate()
        except ValueError as error:
            message = f"<div class='ui-error'>Error: {html.escape(str(error))}</div>"
            yield keep, keep, keep, message, keep, keep, keep, keep, keep, keep
            return
        meter = performance.MemoryMeter(runtime.device)
        task = runtime.queue.submit(lambda: meter.run(lambda: run(job)), user=ui_user(request), label=tab)
        hidden, shown = gr.update(visible=False), gr.update(visible=True)
        yield hidden, shown, shown, "", gr.update(visible=True, value=None), keep, keep, keep, keep, task.id
        async for bar, image, result, finished in follow(runtime.queue, task):
            if not finished:
                preview = gr.update(value=image) if image is not None else keep
                yield keep, keep, keep, bar, preview, keep, keep, keep, keep, keep
                continue
            buttons = (shown, hidden, hidden)
            cost = performance.task_html(task, meter)
            if isinstance(result, BaseException):
                message = f"<div class='ui-error'>Error: {html.escape(str(result))}</div>"
                yield *buttons, message + cost, hidden, keep, keep, "", keep, ""
                return
            images, text, generation = show_result(result)
            generation["performance"] = cost  # stays under the text when another image is selected
            with ctx.session.lock:
                ctx.session.last_infotext = text
            info = results.info_html(text, result.comments) + cost
            yield *buttons, "", hidden, images, info, text, generation, ""

    on_generate.__signature__ = api_signature(len(inputs), optional)
    outputs = [
        toprow.generate,
        toprow.interrupt,
        toprow.skip,
        res.progress,
        res.preview,
        res.gallery,
        res.info,
        res.infotext,
        res.generation,
        task_state,
    ]
    # Every tab's request goes straight to the runtime's job queue (no Gradio limit: waiting there costs
    # no thread), so each page shows its own place in the queue instead of Gradio's "queued".
    toprow.generate.click(
        on_generate,
        inputs,
        outputs,
        show_progress="hidden",
        api_name=tab,
        concurrency_id="generate",
        concurrency_limit=None,
    )

    def stop(task_id: str, skip: bool = False) -> None:
        if task_id:  # nothing of this tab's is queued or running: never stop another tab's task
            runtime.interrupt(task_id, skip=skip)

    private = {"queue": False, "api_visibility": "private"}
    toprow.interrupt.click(stop, task_state, None, **private)
    toprow.skip.click(lambda task_id: stop(task_id, skip=True), task_state, None, **private)


def ui_user(request: gr.Request | None) -> str:
    """Who a tab belongs to, for fairness between users: the logged-in name, else the browser session."""
    if request is not None and request.username:
        return f"user:{request.username}"
    return f"session:{getattr(request, 'session_hash', None) or ''}"


def api_signature(count: int, optional: int) -> inspect.Signature:
    """The handler's signature as Gradio's API reads it: an argument defaulting to None is optional for
    clients even when its control has no value (an extension's empty textbox), so older gradio_client
    calls that stop before the scripts' controls keep working."""
    kind = inspect.Parameter.POSITIONAL_ONLY
    # First, for Gradio to pass the request in (it reads the annotation); clients never send it.
    request = inspect.Parameter("request", kind, annotation=gr.Request)
    return inspect.Signature(
        [
            request,
            *(
                inspect.Parameter(
                    f"param_{i}", kind, default=None if i >= count - optional else inspect.Parameter.empty
                )
                for i in range(count)
            ),
        ]
    )


def wire_seed_reuse(res: results.Results, form: JobForm, buttons: tuple[gr.Button, gr.Button]) -> None:
    """The reuse-seed button puts the selected image's seed (or variation seed) back into the box."""
    for button, field_name, key in ((buttons[0], "seed", "seeds"), (buttons[1], "subseed", "subseeds")):
        button.click(
            lambda generation, index, k=key: (
                results.pick(generation.get(k, []), index) if generation.get(k) else -1
            ),
            [res.generation, res.selected],
            form.fields[field_name],
            **PRIVATE,
        )


def wire_token_counters(ctx: UiContext, toprow: Toprow, steps: gr.Slider) -> None:
    # always_last: while typing fast only the newest text is counted; no queue wait behind a generation.
    common = {"trigger_mode": "always_last", "queue": False, **PRIVATE}
    for box, counter, negative in (
        (toprow.prompt, toprow.token_counter, False),
        (toprow.negative, toprow.negative_token_counter, True),
    ):
        count = lambda text, n, styles, neg=negative: ctx.tokens.html(text, n, neg, styles or [])  # noqa: E731
        inputs = [box, steps, toprow.styles]
        box.change(count, inputs, counter, **common)
        steps.release(count, inputs, counter, **common)
        toprow.styles.change(count, inputs, counter, **common)


def paste_settings(text: str) -> dict[str, Any]:
    return infotext_format.infotext_to_settings(infotext_format.parse_infotext(text))


def pasted_params(ctx: UiContext, text: str) -> dict[str, Any]:
    """The parsed parameters text after extensions' infotext_pasted callbacks (they may add or change
    entries in place, as in A1111)."""
    params = infotext_format.parse_infotext(text)
    ctx.runtime.extensions.call("infotext_pasted", text, params)
    return params


def paste_outputs(ctx: UiContext, form: JobForm) -> list[gr.components.Component]:
    return [*form.inputs(), ctx.topbar.clip_skip, *(component for component, _ in form.infotext_fields)]


def paste_updates(ctx: UiContext, form: JobForm, text: str) -> list[Any]:
    """Updates for ``paste_outputs``: every field named in the parameters text (none for no text)."""
    if not text.strip():
        return [gr.update() for _ in paste_outputs(ctx, form)]
    params = pasted_params(ctx, text)
    settings = infotext_format.infotext_to_settings(params, ctx.runtime.options.definitions)
    clip_skip = settings.get("override_settings", {}).get("CLIP_stop_at_last_layers")
    return [
        *form.paste_updates(settings),
        gr.update(value=clip_skip) if clip_skip else gr.update(),
        *(scripts.paste_value(component, key, params) for component, key in form.infotext_fields),
    ]


def wire_paste(ctx: UiContext, toprow: Toprow, form: JobForm) -> None:
    """The read-parameters button: parse the parameters text in the prompt box into every field; an empty box takes the last
    generation's parameters (A1111 reads its params.txt then)."""

    def on_paste(prompt: str) -> list[Any]:
        text = prompt
        if not text.strip():
            with ctx.session.lock:
                text = ctx.session.last_infotext
        return paste_updates(ctx, form, text)

    toprow.paste.click(on_paste, toprow.prompt, paste_outputs(ctx, form), **PRIVATE)


def wire_styles(ctx: UiContext, toprow: Toprow) -> None:
    """Apply styles merges the selected styles into the prompt boxes; save style saves the prompts as a
    new style."""

    def apply(prompt: str, negative: str, names: list[str]) -> tuple[str, str, list[str]]:
        # A1111's apply-styles button strips comments too when "Enable comments" is on.
        comments = bool(ctx.runtime.options.get("enable_prompt_comments"))
        return (
            ctx.styles.apply_styles_to_prompt(prompt, names, comments=comments),
            ctx.styles.apply_negative_styles_to_prompt(negative, names, comments=comments),
            [],
        )

    def save(name: str | None, prompt: str, negative: str) -> list[dict]:
        if name:
            ctx.styles.add(PromptStyle(name.strip(), prompt, negative))
            ctx.styles.save()
        return [gr.update(choices=list(ctx.styles.styles)) for _ in ctx.style_dropdowns]

    toprow.apply_styles.click(
        apply,
        [toprow.prompt, toprow.negative, toprow.styles],
        [toprow.prompt, toprow.negative, toprow.styles],
        **PRIVATE,
    )
    # The name comes from a browser prompt() dialog, as A1111 asked for it before its styles editor.
    name_box = gr.Textbox(visible=False)
    toprow.save_style.click(
        save,
        [name_box, toprow.prompt, toprow.negative],
        ctx.style_dropdowns,
        js="(name, p, n) => [prompt('Style name:'), p, n]",
        **PRIVATE,
    )
