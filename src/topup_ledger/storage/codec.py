"""Facts to plain JSON-ready data and back, by their declared field types: how facts are stored.

Dates are ISO strings, Decimals are strings (never floats), tuples are lists. This is the
shape every event's JSON Schema in ``schemas/events/`` describes.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from topup_ledger.domain import events as ev


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(ev))


def to_data(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return format(obj, "f")  # never exponent form: '10', not '1E+1'

    if isinstance(obj, tuple | list):
        return [to_data(x) for x in obj]
    return obj


def _identity(value: Any) -> Any:
    return value


@cache
def _decoder(tp: Any) -> Callable[[Any], Any]:
    """A decoder for one declared type, built once: decoding runs for every event read."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        inner = _decoder(next(a for a in typing.get_args(tp) if a is not type(None)))
        return lambda value: None if value is None else inner(value)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            return lambda value: tuple(map(item, value))
        parts = [_decoder(a) for a in args]
        return lambda value: tuple(f(v) for f, v in zip(parts, value, strict=True))
    if tp is date:
        return date.fromisoformat
    if tp is Decimal:
        return Decimal
    if dataclasses.is_dataclass(tp):
        return lambda value: from_data(tp, value)  # type: ignore[arg-type]
    return _identity


@cache
def _field_decoders(cls: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    hints = _hints(cls)
    return tuple((f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls))


def from_data(cls: type, data: dict[str, Any]) -> Any:
    return cls(**{name: decode(data[name])
                  for name, decode in _field_decoders(cls) if name in data})


def fact_from_data(fact_type: str, data: dict[str, Any]) -> ev.Fact:
    return from_data(ev.FACT_TYPES[fact_type], data)
