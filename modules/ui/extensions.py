"""The Extensions tab: installed extensions (switch on/off, check for updates, update), installing from
a git URL or a local folder, and the errors extensions raised while loading or running.

Every change goes through ``modules.extensions.manage`` and takes effect at the next start (scripts are
imported once, at start). When the app listens beyond this computer, manage.py refuses changes unless
--enable-insecure-extension-access is given; the tab then disables its controls and says why.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from modules.extensions import manage
from modules.runtime import Runtime

HEADERS = ["Extension", "Built-in", "Enabled", "Version", "Remote", "Update"]
ENABLED_COLUMN = HEADERS.index("Enabled")
UPDATE_COLUMN = HEADERS.index("Update")
RESTART_NOTE = "Restart the web UI to load the changes."


def rows(runtime: Runtime, updates: dict[str, str] | None = None) -> list[list[Any]]:
    """One row per extension folder, in load order (built-ins first)."""
    updates = updates or {}
    return [
        [e.name, e.builtin, e.enabled, e.version or "", e.remote or "", updates.get(e.name, "")]
        for e in manage.list_extensions(runtime)
    ]


def apply_enabled(runtime: Runtime, table: list[list[Any]]) -> str:
    """Save the Enabled column (only the rows that changed); say that a restart is needed."""
    manage.ensure_allowed(runtime.args)
    current = {e.name: e.enabled for e in manage.list_extensions(runtime)}
    changed = []
    for row in table:
        name, enabled = str(row[0]), bool(row[ENABLED_COLUMN])
        if name in current and current[name] != enabled:
            manage.set_enabled(runtime, name, enabled)
            changed.append(f"{name} {'enabled' if enabled else 'disabled'}")
    if not changed:
        return message("Nothing changed.")
    return message(f"Saved: {', '.join(changed)}. {RESTART_NOTE}")


def check(runtime: Runtime) -> tuple[list[list[Any]], str]:
    statuses = manage.check_updates(runtime)
    updates = {s.name: f"{s.state}: {s.message}" if s.message else s.state for s in statuses}
    behind = [s.name for s in statuses if s.state == "behind"]
    note = f"Updates available: {', '.join(behind)}." if behind else "No updates found."
    return rows(runtime, updates), message(note)


def update_behind(runtime: Runtime, table: list[list[Any]]) -> tuple[list[list[Any]], str]:
    """Update the extensions the last check marked "behind"."""
    names = [str(row[0]) for row in table if str(row[UPDATE_COLUMN]).startswith("behind")]
    if not names:
        return rows(runtime), message("Nothing to update: check for updates first.")
    for name in names:
        manage.update(runtime, name)
    return rows(runtime), message(f"Updated: {', '.join(names)}. {RESTART_NOTE}")


def install(runtime: Runtime, source: str, name: str) -> tuple[list[list[Any]], str]:
    source = (source or "").strip()
    if not source:
        raise ValueError("give a git URL or a local folder to install from")
    installed = manage.install(runtime, source, (name or "").strip() or None)
    return rows(runtime), message(f"Installed {installed.name} into {installed.path}. {RESTART_NOTE}")


def errors_html(runtime: Runtime) -> str:
    """What extensions raised so far (while loading, in hooks or callbacks): name, where, message."""
    errors = list(runtime.extensions.errors)
    if not errors:
        return "<p>No extension errors.</p>"
    body = "".join(
        f"<tr><td>{html.escape(e.extension)}</td><td>{html.escape(e.where)}</td>"
        f"<td><pre>{html.escape(e.message)}</pre></td></tr>"
        for e in errors
    )
    return (
        "<table class='extension-errors'><thead><tr><th>Extension</th><th>Where</th><th>Error</th></tr>"
        f"</thead><tbody>{body}</tbody></table>"
    )


def flags_note(runtime: Runtime) -> str:
    args = runtime.args
    notes = [manage.refusal(args)]
    if getattr(args, "disable_all_extensions", False):
        notes.append("--disable-all-extensions: no extension is loaded, whatever is enabled here.")
    elif getattr(args, "disable_extra_extensions", False):
        notes.append("--disable-extra-extensions: only built-in extensions are loaded.")
    return "".join(f"<p class='warning'>{html.escape(n)}</p>" for n in notes if n)


def message(text: str, error: bool = False) -> str:
    return f"<p class='{'ui-error' if error else 'info'}'>{html.escape(text)}</p>"


def guarded(fn: Any, failed_outputs: int) -> Any:
    """Run a manage action; a refusal or failure becomes a message instead of a Gradio error popup."""

    def run(*values: Any) -> Any:
        try:
            return fn(*values)
        except (manage.ExtensionAccessError, manage.ExtensionManageError, ValueError, OSError) as error:
            shown = message(f"Error: {error}", error=True)
            return (*[gr.update()] * failed_outputs, shown) if failed_outputs else shown

    return run


def build(runtime: Runtime) -> None:
    allowed = manage.refusal(runtime.args) is None
    private = {"show_progress": "hidden", "api_visibility": "private"}
    gr.HTML(flags_note(runtime), elem_id="extensions_note")
    with gr.Tabs(overflow_behavior="wrap", elem_id="tabs_extensions"):
        with gr.Tab("Installed", elem_id="extensions_installed_tab"):
            with gr.Row():
                apply = gr.Button(
                    "Apply (restart to load)",
                    variant="primary",
                    interactive=allowed,
                    elem_id="extensions_apply",
                )
                check_button = gr.Button("Check for updates", elem_id="extensions_check")
                update = gr.Button("Update", interactive=allowed, elem_id="extensions_update")
            status = gr.HTML(elem_id="extensions_status")
            table = gr.Dataframe(
                value=lambda: rows(runtime),
                headers=HEADERS,
                datatype=["str", "bool", "bool", "str", "str", "str"],
                type="array",
                interactive=allowed,
                static_columns=[i for i in range(len(HEADERS)) if i != ENABLED_COLUMN],
                elem_id="extensions_installed_table",
                label="Installed",
            )
            gr.Markdown("### Errors")
            errors = gr.HTML(value=lambda: errors_html(runtime), elem_id="extensions_errors")
        with gr.Tab("Install from URL", elem_id="extensions_install_tab"):
            source = gr.Textbox(
                label="URL or local path for extension's git repository",
                interactive=allowed,
                elem_id="extensions_install_url",
            )
            folder = gr.Textbox(
                label="Local directory name (optional)",
                interactive=allowed,
                elem_id="extensions_install_dirname",
            )
            install_button = gr.Button(
                "Install", variant="primary", interactive=allowed, elem_id="extensions_install"
            )
            install_result = gr.HTML(elem_id="extensions_install_result")
    apply.click(guarded(lambda t: apply_enabled(runtime, t), 0), table, status, **private)
    check_button.click(guarded(lambda: check(runtime), 1), None, [table, status], **private)
    update.click(guarded(lambda t: update_behind(runtime, t), 1), table, [table, status], **private)
    install_button.click(
        guarded(lambda s, n: install(runtime, s, n), 1), [source, folder], [table, install_result], **private
    )
    check_button.click(lambda: errors_html(runtime), None, errors, **private)
