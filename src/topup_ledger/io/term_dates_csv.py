"""A calendar's school days from CSV: kind,start,end[,description] (schemas/imports.md).

A ``term`` row's weekdays are school days; a ``closure`` row's weekdays are not (a bank
holiday, a half-term week inside a term, a day the schools close). Terms come in date order,
apart; every closed weekday lies in a term.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import parse_date
from topup_ledger.domain.errors import RuleError

KINDS = ("term", "closure")


def read_term_dates(path: Path) -> tuple[tuple[ev.TermDates, ...], tuple[date, ...]]:
    """The terms and the closed weekdays of ``path``; a bad row is refused naming the file,
    its line and the column."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    terms: list[ev.TermDates] = []
    closed: list[tuple[int, date, date]] = []
    for line, row in enumerate(rows, start=2):
        if not any((value or "").strip() for value in row.values()):
            continue  # a blank line
        try:
            kind = (row.get("kind") or "").strip().lower()
            if kind not in KINDS:
                raise RuleError("kind", f"{kind!r} is not term or closure")
            start = parse_date(row.get("start") or "", "start")
            end = parse_date(row.get("end") or "", "end")
            if end < start:
                raise RuleError("end", f"{end} is before {start}")
            if kind == "term":
                if terms and start <= terms[-1].end:
                    raise RuleError("start", f"the term from {start} starts before the one above "
                                    f"ends ({terms[-1].end}): terms in date order, apart")
                terms.append(ev.TermDates(start, end))
            else:
                closed.append((line, start, end))
        except RuleError as error:
            raise RuleError(error.field, f"{path}, line {line}: {error.problem}") from None
    if not terms:
        raise RuleError("kind", f"{path}: no term rows, so no school days")
    closures: set[date] = set()
    for line, start, end in closed:
        day = start
        while day <= end:
            if day.weekday() < 5:
                if not any(t.start <= day <= t.end for t in terms):
                    raise RuleError("start", f"{path}, line {line}: {day} is not in a term, so it "
                                    "is no school day to close")
                closures.add(day)
            day += timedelta(days=1)
    return tuple(terms), tuple(sorted(closures))
