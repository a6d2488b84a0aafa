"""What loaded extensions contributed: scripts, callbacks, extra networks, and the errors they raised.

One ``ExtensionRegistry`` belongs to one running app. While an extension's files are imported, the
loader makes its registry "current" (a context variable) so the API's ``on_*`` functions know where,
and for which extension, to register.
"""

from __future__ import annotations

import contextvars
import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("extensions")

from modules.extensions.payloads import Callback


@dataclass
class Registered:
    extension: str
    fn: Callable[..., Any]


@dataclass
class ExtensionError:
    extension: str
    where: str
    message: str


@dataclass
class ExtensionRegistry:
    scripts: list[Any] = field(default_factory=list)  # Script instances, load order
    callbacks: dict[Callback, list[Registered]] = field(default_factory=lambda: {k: [] for k in Callback})
    extra_networks: dict[str, Any] = field(default_factory=dict)
    errors: list[ExtensionError] = field(default_factory=list)
    loading: str = "core"  # the extension whose files are being imported

    def add_callback(self, kind: Callback | str, fn: Callable[..., Any]) -> None:
        if kind not in self.callbacks:
            raise ValueError(f"unknown callback {kind!r}; known: {', '.join(Callback)}")
        self.callbacks[Callback(kind)].append(Registered(self.loading, fn))

    def report(self, extension: str, where: str, error: BaseException) -> None:
        """Record a failure of an extension; it is shown in the UI and the log, and the app goes on."""
        summary = "".join(traceback.format_exception_only(type(error), error)).strip()
        self.errors.append(ExtensionError(extension, where, summary))
        log.error("extension %s failed in %s: %s\n%s", extension, where, summary, traceback.format_exc())

    def call(self, kind: Callback | str, *args: Any) -> list[Any]:
        """Run every callback of a kind, isolating failures; returns the callbacks' results."""
        results = []
        for registered in self.callbacks[kind]:
            try:
                results.append(registered.fn(*args))
            except Exception as error:  # an extension must never take down the app
                self.report(registered.extension, f"callback {Callback(kind).value}", error)
        return results


_current: contextvars.ContextVar[ExtensionRegistry | None] = contextvars.ContextVar("extension_registry",
                                                                                    default=None)


def current() -> ExtensionRegistry:
    registry = _current.get()
    if registry is None:
        raise RuntimeError("extension API registration functions may only be called while extensions load")
    return registry


@contextmanager
def loading(registry: ExtensionRegistry, extension: str) -> Iterator[None]:
    token = _current.set(registry)
    previous, registry.loading = registry.loading, extension
    try:
        yield
    finally:
        registry.loading = previous
        _current.reset(token)
