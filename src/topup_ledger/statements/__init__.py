"""School statements: per school and period, every line, every change since the
school's last statement with its reasons, the year to date, a chart, and the ledger's seal.

The content is built first as plain data (``build``), then rendered (``render``): HTML
that is one self-contained file, PDF from the same HTML, CSV of the lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from topup_ledger.io.private import write_private
from topup_ledger.statements.build import build_statement, run_ref
from topup_ledger.statements.model import Statement
from topup_ledger.statements.render import FORMATS, IndexFile, IndexRow, render_index, write_statement
from topup_ledger.statements.source import LedgerView, position_at, read_view
from topup_ledger.storage.store import EventStore

__all__ = ["FORMATS", "PeriodResult", "Statement", "build_statement", "statement_for",
           "view_as_of", "write_period", "write_statement"]


def view_as_of(store: EventStore, as_of: datetime | None,
               schools: Sequence[str] | None = None) -> LedgerView:
    """The ledger as known now, or at ``as_of``: folded up to the last position recorded at or
    before it."""
    upto = None
    if as_of is not None:
        upto, _ = position_at(store, as_of)
        if upto == 0:
            return LedgerView()
    return read_view(store, upto, schools)


def statement_for(store: EventStore, urn: str, period: str,
                  as_of: datetime | None = None) -> Statement:
    view = view_as_of(store, as_of, [urn])
    return replace(build_statement(view, urn, period), as_of=as_of)


@dataclass
class PeriodResult:
    period: str
    statements: list[Statement]
    files: list[Path]
    index: Path


def write_period(store: EventStore, period: str, out: Path, formats: Sequence[str] = ("html",),
                 as_of: datetime | None = None,
                 progress: Callable[[int, int], None] | None = None) -> PeriodResult:
    """A statement for every school paid in ``period`` (in any of its runs), and an index."""
    view = view_as_of(store, as_of)
    period = view.period(period).id  # refuses an unknown period
    runs = [r for r in view.runs if r.period == period]
    schools = sorted({urn for r in runs for urn in view.paid.get(r.run_id, {})})
    statements, files, rows = [], [], []
    for done, urn in enumerate(schools, 1):
        statement = replace(build_statement(view, urn, period), as_of=as_of)
        written = write_statement(statement, out, formats)
        statements.append(statement)
        files.extend(written)
        rows.append(IndexRow(urn, statement.school_name, len(statement.children),
                             len(statement.changes), statement.totals.total,
                             tuple(IndexFile(p.name, p.suffix[1:].upper()) for p in written)))
        if progress:
            progress(done, len(schools))
    index = write_private(out / "index.html", render_index(
        period, rows, [run_ref(r, None) for r in runs], view.position, as_of))
    return PeriodResult(period, statements, files, index)

