"""One declaration per fact: the typed description of a value a user can set, and its checking.

A ``Field`` says everything the app knows about one job field or setting: its type, its range or
choices, its default (and A1111's API default where that differs), how the UI shows it (label, control,
slider range, element id), the parameters-text key that carries it, and the section it belongs to.
Job fields are declared on ``GenerationJob`` (modules/processing/job.py), settings in
modules/options.py; the API's request models, the UI's controls and coercion, validation on every path,
the settings page and the parameters text's reader and writer are derived from those declarations.

No torch and no Gradio here: plain Python, importable from anywhere.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SPEC = "field"  # the dataclasses.field metadata key holding a Field


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "no separate API default"


class FieldError(ValueError):
    """A value a field does not accept; the message names the field and what it accepts."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.reason = message


# A lookup names a list of choices only the running app knows (samplers, checkpoints...); callers that
# know it pass a resolver, ``resolver(value) -> canonical value`` raising KeyError/ValueError if unknown.
Resolvers = Mapping[str, Callable[[Any], Any]]


@dataclass(frozen=True)
class Field:
    """The declaration of one value: type, allowed values, default, UI, parameters text, section."""

    kind: type  # int, float, bool, str, list (of str), dict, or object (an image, anything)
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None  # fixed labels
    coded: type[enum.IntEnum] | None = None  # values are A1111's integer codes of ``choices``
    lookup: str | None = None  # choices only the runtime knows: "sampler", "checkpoint", ...
    nullable: bool = False  # None means "not set": a setting or another field decides
    label: str = ""
    help: str = ""
    control: str | None = None  # textbox, number, slider, checkbox, dropdown, radio; None: no plain control
    ui_minimum: float | None = None  # a slider's range where it is narrower than what is accepted
    ui_maximum: float | None = None
    step: float | None = None
    elem_id: str | None = None  # the element id suffix A1111 gives the control (after "<tab>_")
    same: str | None = None  # a UI choice meaning "not set" ("Use same sampler")
    infotext: str | None = None  # the parameters-text key; "Size-1" is the first number of "Size: WxH"
    api: bool = True  # part of the /sdapi/v1 request bodies
    modes: frozenset[str] = frozenset({"txt2img", "img2img"})  # the generation modes that use it
    api_default: Any = UNSET  # A1111's API default, where it differs from ours
    section: str = ""
    restart_required: bool = False
    validator: Callable[[Any], None] | None = None  # further rules; raises ValueError naming the problem
    name: str = ""  # filled in where the field is declared

    @property
    def infotext_key(self) -> str | None:
        """The parameters-text key this field is written under ("Size" for "Size-1")."""
        if self.infotext is None:
            return None
        key, _, part = self.infotext.rpartition("-")
        return key if part in ("1", "2") and key else self.infotext

    # --- describing -------------------------------------------------------------------------------

    def allowed(self) -> str:
        """What the field accepts, in words, for error messages and tooltips."""
        if self.choices is not None:
            shown = ", ".join(repr(c) for c in self.choices)
            return f"one of {shown}" + (f" (or their codes 0-{len(self.choices) - 1})" if self.coded else "")
        kind = {int: "an integer", float: "a number", bool: "true or false", str: "a text"}.get(
            self.kind, self.kind.__name__
        )
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} from {_num(self.minimum)} to {_num(self.maximum)}"
        if self.minimum is not None:
            return f"{kind} of at least {_num(self.minimum)}"
        if self.maximum is not None:
            return f"{kind} of at most {_num(self.maximum)}"
        return kind

    @property
    def public_default(self) -> Any:
        """The default an API client gets for a field it leaves out."""
        return self.default if self.api_default is UNSET else self.api_default

    def label_of(self, value: Any) -> Any:
        """A coded value's label ("Crop and resize" for 1); other values unchanged."""
        if self.coded is not None and self.choices is not None and isinstance(value, int):
            return self.choices[int(value)]
        return value

    # --- checking ---------------------------------------------------------------------------------

    def check(self, value: Any, resolvers: Resolvers | None = None) -> Any:
        """``value`` converted to the field's type and checked; FieldError naming the field otherwise.

        Lenient where forms and JSON differ (``"7"`` and ``7.0`` are 7; ``"true"`` is True), strict on
        what can never be meant: NaN and infinities, fractions for integers, values out of range,
        labels that are not among the choices.
        """
        if value is None:
            if self.nullable:
                return None
            raise FieldError(self.name, f"must be {self.allowed()} (got null)")
        if self.same is not None and value == self.same:
            return None
        try:
            converted = self._convert(value)
        except (TypeError, ValueError, OverflowError):
            raise FieldError(self.name, f"must be {self.allowed()} (got {_shown(value)})") from None
        self._check_bounds(converted, value)
        if self.lookup is not None and resolvers is not None and self.lookup in resolvers:
            try:
                converted = resolvers[self.lookup](converted)
            except (KeyError, ValueError) as error:
                reason = error.args[0] if error.args else f"unknown {self.lookup}"
                raise FieldError(self.name, f"{reason} (got {_shown(value)})") from None
        if self.validator is not None:
            try:
                self.validator(converted)
            except ValueError as error:
                raise FieldError(self.name, str(error)) from None
        return converted

    def _convert(self, value: Any) -> Any:
        if self.coded is not None:
            return self._convert_code(value)
        if self.kind is bool:
            if isinstance(value, str) and self.choices is not None and value in self.choices:
                return bool(self.choices.index(value))  # a radio of two labels: (False, True)
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.strip().lower() in _BOOLS:
                return _BOOLS[value.strip().lower()]
            raise ValueError(value)
        if self.kind is int:
            return _to_int(value)
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise TypeError(value)
            number = float(value.strip() if isinstance(value, str) else value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        if self.kind is str:
            if isinstance(value, str):
                return value
            if isinstance(value, int | float) and not isinstance(value, bool) and self.lookup is not None:
                return str(value)  # a checkpoint hash or name written as a number
            raise TypeError(value)
        if self.kind is list:
            if isinstance(value, str | bytes) or not isinstance(value, Sequence):
                raise TypeError(value)
            return list(value)
        if self.kind is dict:
            if not isinstance(value, Mapping):
                raise TypeError(value)
            return dict(value)
        return value

    def _convert_code(self, value: Any) -> enum.IntEnum:
        assert self.coded is not None and self.choices is not None
        if isinstance(value, self.coded):
            return value
        if isinstance(value, str) and value in self.choices:
            return self.coded(self.choices.index(value))
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        return self.coded(_to_int(value))

    def _check_bounds(self, converted: Any, given: Any) -> None:
        out_of_range = (self.minimum is not None and converted < self.minimum) or (
            self.maximum is not None and converted > self.maximum
        )
        if isinstance(converted, int | float) and not isinstance(converted, bool) and out_of_range:
            raise FieldError(self.name, f"must be {self.allowed()} (got {_shown(given)})")
        labelled = self.coded is not None or self.kind is bool
        if self.choices is not None and not labelled and converted not in self.choices:
            raise FieldError(self.name, f"must be {self.allowed()} (got {_shown(given)})")


def _to_int(value: Any) -> int:
    """An integer from an int, an integral finite float or a text of either; bools are not integers."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit():
            return int(text)
        value = float(text)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise ValueError(value)


_BOOLS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else str(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def declare(default: Any = None, **spec: Any) -> Any:
    """A dataclass field carrying its ``Field`` declaration (the dataclass's own default is ``default``)."""
    kind = spec.pop("kind", None) or type(default)
    field_spec = Field(kind=kind, default=default, **spec)
    metadata = {SPEC: field_spec}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def fields_of(cls: type) -> dict[str, Field]:
    """The ``Field`` declarations of a dataclass, by name, in declaration order."""
    return {
        f.name: dataclasses.replace(f.metadata[SPEC], name=f.name)
        for f in dataclasses.fields(cls)
        if SPEC in f.metadata
    }
