"""Projections: folds of the event stream into what people read.

- ``runner``: the catch-up loop, exactly-once tracking, rebuild and ``--as-of`` replay;
- ``db``: the projection file (never the ledger's own database);
- ``tables``: a fold's own tables in that file;
- ``base``: what plan projections share (compact per-plan facts, dirty plans, the refresh);
- ``school_periods``: the fold behind ``funding`` and ``paid_vs_due``;
- ``hours_vs_band``: the fold behind the hours-vs-band and band calibration tables;
- ``view``: what the outputs' readers are handed.

Outputs are written with pyarrow to the specs in the top-level ``projections/`` folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from topup_ledger.io import arrow_files


def file_stem(name: str, period: str | None = None, school: str | None = None,
              as_of: datetime | None = None) -> str:
    """funding-2025-26-autumn-100001-as-of-20251201T170000Z: what the file holds."""
    parts = [name]
    if period:
        parts.append(period.replace("/", "-"))
    if school:
        parts.append(school)
    if as_of is not None:
        parts.append("as-of-" + as_of.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
    return "-".join(parts)


def write_output(name: str, rows: Iterable[Mapping[str, Any]], out: Path, stem: str) -> list[Path]:
    """Write ``stem``.csv and ``stem``.parquet in ``out`` to the spec ``projections/name.json``."""
    return arrow_files.write(name, rows, out / stem)
