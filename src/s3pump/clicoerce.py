"""Typer's value coercion without pydantic for the plain values s3pump's options take.

Typer (0.2x) coerces every parameter's value through a pydantic ``TypeAdapter``: the first
command line of a process imports pydantic and builds one adapter per parameter, even for an
option that was not given. That was about 15 % of the client CPU of a 5,000-file upload
(docs/benchmarks.md, issue 15). s3pump's parameters are ``str``, ``int``, ``float``, ``bool``,
``Path`` and ``list[str]``; for a value that already is what its annotation names (a string for
``str``, digits for ``int``, nothing for an option not given) the result is known, and is given
here without pydantic. Every other value (a malformed number, a type Typer must check) goes
through Typer's own coercion, so its results and error messages are unchanged.

:func:`install` patches ``typer.core._TyperParameter.get_runtime_param`` when that Typer
internal exists; with another Typer it does nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["fast_coerce", "install"]

_NOT_FAST = object()
_INT = re.compile(r"[0-9]{1,18}")
_FLOAT = re.compile(r"[0-9]{1,15}(\.[0-9]{1,15})?")


def fast_coerce(annotation: Any, value: Any, multi: bool) -> Any:
    """The coerced value, or ``_NOT_FAST`` when Typer's own coercion must decide."""
    if value is None:
        return () if multi else None
    if multi:
        if annotation == list[str] and isinstance(value, tuple | list) and all(type(v) is str for v in value):
            return list(value)
        return _NOT_FAST
    kind = type(value)
    if annotation is str:
        return value if kind is str else _NOT_FAST
    if annotation is bool:
        return value if kind is bool else _NOT_FAST
    if annotation is int:
        if kind is int:
            return value
        return int(value) if kind is str and _INT.fullmatch(value) else _NOT_FAST
    if annotation is float:
        if kind is float:
            return value
        return float(value) if kind is str and _FLOAT.fullmatch(value) else _NOT_FAST
    if annotation is Path:
        if isinstance(value, Path):
            return value
        return Path(value) if kind is str and value else _NOT_FAST
    return _NOT_FAST


class _FastRuntimeParam:
    """Typer's ``RuntimeParam`` contract (``coerce``): the fast answer, else Typer's own (built on first need)."""

    __slots__ = ("_param", "_typer")

    def __init__(self, param: Any) -> None:
        self._param = param
        self._typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = bool(param.multiple or param.nargs == -1)
        out = fast_coerce(param.type_descriptor.annotation, value, multi)
        if out is not _NOT_FAST:
            return out
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(self._param.type_descriptor)
        return self._typer.coerce(value, param=param, ctx=ctx)


def install() -> bool:
    """Patch Typer's per-parameter coercion (see the module docstring). Returns whether it did."""
    try:
        from typer.core import _TyperParameter
    except ImportError:
        return False
    if not hasattr(_TyperParameter, "get_runtime_param") or getattr(_TyperParameter, "_s3pump_fast", False):
        return getattr(_TyperParameter, "_s3pump_fast", False)

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            self._runtime_param = _FastRuntimeParam(self)
        return self._runtime_param

    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]
    _TyperParameter._s3pump_fast = True  # type: ignore[attr-defined]
    return True
