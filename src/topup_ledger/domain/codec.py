"""Facts to plain JSON-ready data and back, by their declared field types.

Dates are ISO strings, Decimals are strings (never floats), tuples are lists. This is the
shape every event's JSON Schema in ``schemas/events/`` describes.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from . import events as ev


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(ev))


def to_data(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, tuple | list):
        return [to_data(x) for x in obj]
    return obj


def _from(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _from(inner[0], value)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from(args[0], v) for v in value)
        return tuple(_from(a, v) for a, v in zip(args, value, strict=True))
    if tp is date:
        return date.fromisoformat(value)
    if tp is Decimal:
        return Decimal(value)
    if dataclasses.is_dataclass(tp):
        return from_data(tp, value)
    return value


def from_data(cls: type, data: dict[str, Any]) -> Any:
    hints = _hints(cls)
    kwargs = {f.name: _from(hints[f.name], data[f.name])
              for f in dataclasses.fields(cls) if f.name in data}
    return cls(**kwargs)


def fact_from_data(fact_type: str, data: dict[str, Any]) -> ev.Fact:
    return from_data(ev.FACT_TYPES[fact_type], data)
