"""Groups of shared options, declared once and spliced into each command that takes them.

A command declares its own parameters as Typer does, and takes a group of shared options as ONE
parameter whose default is the group (``where: Opts = WHERE_OPTS``). :func:`spliced` gives Typer a
signature in which that parameter is replaced, in place, by the group's options (so the help lists
them where the parameter stands, each in its panel), and calls the command with their values
gathered back into an :class:`Opts` under the parameter's name: ``where.embedded``,
``config_from(where, speed)``.

Only Python's own signature protocol is used (``__signature__``, which :func:`inspect.signature`
and therefore Typer read); every parameter becomes keyword-only, as Typer passes them all by name.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["OptionGroup", "Opts", "spliced"]


class Opts(dict[str, Any]):
    """The values of one group of options, by parameter name; also as attributes (``opts.debug``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class OptionGroup(Opts):
    """Options that commands share: ``name=(Annotated type, default)``, in help order.

    As a value it is the options' defaults (an :class:`Opts`); ``+`` joins two groups in order.
    """

    def __init__(self, **options: tuple[Any, Any]) -> None:
        super().__init__({name: default for name, (_, default) in options.items()})
        self.types: dict[str, Any] = {name: kind for name, (kind, _) in options.items()}

    def __add__(self, other: OptionGroup) -> OptionGroup:
        both = {**{n: (self.types[n], self[n]) for n in self}, **{n: (other.types[n], other[n]) for n in other}}
        return OptionGroup(**both)


def spliced(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as Typer should see it: each parameter that defaults to an :class:`OptionGroup`
    replaced by the group's options (see the module docstring). The signature is built when first
    asked for (when Typer builds the command line), not at import.

    Raises (on that first use):
        TypeError: two parameters (the command's own, or a group's) have the same name.
    """
    return _Spliced(func)


class _Spliced:
    """A command function with its groups spliced into its signature (see :func:`spliced`)."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self._func = func
        self._groups: dict[str, list[str]] = {}
        self._signature: inspect.Signature | None = None
        self.__name__ = func.__name__
        self.__qualname__ = func.__qualname__
        self.__module__ = func.__module__
        self.__doc__ = func.__doc__

    @property
    def __signature__(self) -> inspect.Signature:
        if self._signature is None:
            self._signature = self._splice()
        return self._signature

    @property
    def __annotations__(self) -> dict[str, Any]:  # type: ignore[override]
        return {p.name: p.annotation for p in self.__signature__.parameters.values()}

    def _splice(self) -> inspect.Signature:
        func = self._func
        hints = typing.get_type_hints(func, include_extras=True)
        params: list[inspect.Parameter] = []
        for p in inspect.signature(func).parameters.values():
            if isinstance(p.default, OptionGroup):
                self._groups[p.name] = list(p.default)
                params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=p.default[name],
                                             annotation=p.default.types[name]) for name in p.default]
            else:
                params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY,
                                        annotation=hints.get(p.name, p.annotation)))
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise TypeError(f"{func.__name__}: a parameter name is used twice: {sorted(names)}")
        return inspect.Signature(params)

    def __call__(self, **values: Any) -> Any:
        if self._signature is None:
            self._signature = self._splice()
        for group, members in self._groups.items():
            values[group] = Opts({name: values.pop(name) for name in members})
        return self._func(**values)
