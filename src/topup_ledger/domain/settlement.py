"""Which periods need not be worked out again since the last payment run
(docs/rules.md §8).

A payment run leaves every plan paid exactly its due for every period up to its own. A
period's due depends only on the days of its academic year up to its end (rounding is
cumulative within the year), so it stays settled until something recorded since reaches one
of those days: a fact of the plan's own (from the first day its timeline changes), or terms
revised for a financial year (on the days that year prices on the basis revised: an hourly
rate prices days on hours, a tariff days on a band). A school or a calendar recorded since
can change any due, so after one nothing is settled.

The payment run and the projections both ask this; it is written here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from topup_ledger.domain.calendar import Period, parse_year
from topup_ledger.domain.plan import Plan, first_changed_day
from topup_ledger.domain.rules import Terms


@dataclass(frozen=True)
class Revisions:
    """The financial years whose terms were set again since a position, by the basis those
    terms price ("hours": hourly rates; "band": tariffs)."""

    years: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def since(cls, terms: Terms, position: int) -> Revisions:
        found: dict[str, set[str]] = {}
        for (basis, year), set_at in terms.set_at.items():
            if set_at > position:
                found.setdefault(basis, set()).add(year)
        return cls({basis: frozenset(years) for basis, years in found.items()})

    def __bool__(self) -> bool:
        return any(self.years.values())

    def first_day(self) -> date | None:
        """The first day any revised terms price, whatever the basis."""
        return min((first_day_of_year(year) for years in self.years.values() for year in years),
                   default=None)

    def first_repriced_day(self, plan: Plan) -> date | None:
        """The first day the plan is funded on a basis whose terms were revised for that
        day's financial year; None if no such day. So a tariff revision reprices no plan on
        hours throughout, and no plan ceased before the year it revises."""
        found = None
        for segment in plan.segments:
            for year in self.years.get(segment.state.basis, ()):
                first, after = first_day_of_year(year), first_day_of_year(next_year(year))
                start = max(segment.start, first)
                end = after if segment.end_exclusive is None else min(segment.end_exclusive, after)
                if start < end and (found is None or start < found):
                    found = start
        return found


def first_day_of_year(financial_year: str) -> date:
    """'2026-27' → 1 April 2026: a rate or tariff for the year prices days from then."""
    return date(parse_year(financial_year), 4, 1)


def next_year(financial_year: str) -> str:
    start = parse_year(financial_year) + 1
    return f"{start}-{(start + 1) % 100:02d}"


def still_settled(last_run: Period, periods: Iterable[Period],
                  changed_from: date | None) -> Period | None:
    """The last period still known to be paid exactly as due, given that the last run paid
    every period up to ``last_run`` as due and that nothing recorded since reaches a day
    before ``changed_from`` (None: nothing changed). The periods ending by ``changed_from``
    keep their due: e.g. a band change backdated into this term unsettles only this term."""
    settled = None
    for period in periods:
        if period.start > last_run.start:
            break
        if changed_from is not None and period.end_exclusive > changed_from:
            break
        settled = period
    return settled


def settled_plan(last_run: Period, periods: Iterable[Period], plan: Plan,
                 revisions: Revisions, known_then: Plan | None = None) -> Period | None:
    """The last period ``plan`` is known to be paid exactly as due: ``known_then`` is the
    plan as the last run knew it, if facts of its own were recorded since."""
    changed = None if known_then is None else first_changed_day(known_then.segments,
                                                                 plan.segments)
    repriced = revisions.first_repriced_day(plan)
    changed_from = min((d for d in (changed, repriced) if d is not None), default=None)
    return still_settled(last_run, periods, changed_from)
