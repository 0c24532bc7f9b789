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

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date

from topup_ledger.domain.calendar import ONE_DAY, Period, parse_year
from topup_ledger.domain.plan import Plan, first_changed_day
from topup_ledger.domain.rules import Terms


@dataclass(frozen=True)
class Revisions:
    """The terms set again since a position: by the basis they price ("hours": hourly
    rates; "band": tariffs), each financial year revised and the first day of it repriced
    (1 April, or the day an in-year revision took effect from)."""

    years: Mapping[str, Mapping[str, date]] = field(default_factory=dict)

    @classmethod
    def since(cls, terms: Terms, position: int) -> Revisions:
        found: dict[str, dict[str, date]] = {}
        for set_at, basis, year, first in terms.revisions:
            if set_at > position:
                years = found.setdefault(basis, {})
                years[year] = min(years.get(year, first), first)
        return cls(found)

    def __bool__(self) -> bool:
        return any(self.years.values())

    def first_day(self) -> date | None:
        """The first day any revised terms price, whatever the basis."""
        return min((first for years in self.years.values() for first in years.values()),
                   default=None)

    def first_repriced_day(self, plan: Plan) -> date | None:
        """The first day the plan is funded on a basis whose terms were revised for that
        day; None if no such day. So a tariff revision reprices no plan on hours throughout,
        and no plan ceased before the days it revises."""
        found = None
        for basis, priced_from, priced_until in priced_by(plan):
            for year, first in self.years.get(basis, {}).items():
                after = first_day_of_year(year, later=1)
                start = max(priced_from, first)
                end = after if priced_until is None else min(priced_until, after)
                if start < end and (found is None or start < found):
                    found = start
        return found


def priced_by(plan: Plan) -> Iterator[tuple[str, date, date | None]]:
    """The days each basis's terms price: (basis, first day, day after the last or None).
    A protected day on a band is priced by the hourly rate too, which prices its prior."""
    for segment in plan.segments:
        state = segment.state
        yield state.basis, segment.start, segment.end_exclusive
        if state.prior_hours is not None and state.protect_until is not None:
            until = state.protect_until + ONE_DAY
            if segment.end_exclusive is not None:
                until = min(until, segment.end_exclusive)
            if segment.start < until:
                yield "hours", segment.start, until


def first_day_of_year(financial_year: str, later: int = 0) -> date:
    """'2026-27' → 1 April 2026: a rate or tariff for the year prices days from then; with
    ``later`` 1, the first day of the year after (1 April 2027), where its days end."""
    return date(parse_year(financial_year) + later, 4, 1)


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
