"""Old versions of stored events are upcast on read; stored bytes are never rewritten.

Each entry turns the data of ``(type, version)`` into the data of ``version + 1``. A stored
event with a version newer than this code knows fails closed: reading on could misprice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from topup_ledger.domain.events import FACT_TYPES

Data = dict[str, Any]


def _plan_issued_v1_kind(data: Data) -> Data:
    # Version 1 of plan.issued was only ever EHCPs; version 2 names the kind of plan.
    return {**data, "kind": data.get("kind", "ehcp")}


def _whole_year(data: Data) -> Data:
    # Version 1 of rate.set and tariff.set always applied to the whole financial year.
    return {**data, "effective": data.get("effective")}


UPCASTERS: dict[tuple[str, int], Callable[[Data], Data]] = {
    ("plan.issued", 1): _plan_issued_v1_kind,
    ("rate.set", 1): _whole_year,
    ("tariff.set", 1): _whole_year,
    ("school.cushion_set", 1): lambda data: {**data, "year": data.get("year")},
    # Version 1 calendars held no school days: paid pro rata by calendar days.
    ("calendar.set", 1): lambda data: {**data, "terms": data.get("terms", []),
                                       "closures": data.get("closures", [])},
}


class UnknownSchemaVersion(ValueError):
    pass


def upcast(fact_type: str, version: int, data: Data) -> Data:
    cls = FACT_TYPES.get(fact_type)
    if cls is None:
        raise UnknownSchemaVersion(f"unknown event type {fact_type!r}")
    if version > cls.VERSION or version < 1:
        raise UnknownSchemaVersion(
            f"{fact_type} version {version} is not known to this version of topup-ledger "
            f"(it knows up to version {cls.VERSION}); upgrade before reading this ledger"
        )
    while version < cls.VERSION:
        step = UPCASTERS.get((fact_type, version))
        if step is None:
            raise UnknownSchemaVersion(f"no upcaster from {fact_type} version {version}")
        data = step(data)
        version += 1
    return data
