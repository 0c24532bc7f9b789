"""Prices remembered for one payment run or one projection refresh: the speed the rules
leave out.

A county's plans share a handful of settings, bands, hours and dates, so most of them are
priced alike. The cache answers the rules' questions (``annual_amount``, a period's exact
amounts, a plan's lines) by what the answer depends on, and works each out once with the
plain rules of ``topup_ledger.domain``. It prices with the terms it was made with: make a
new one when the terms change.
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from topup_ledger.domain.calendar import Period, financial_year_of
from topup_ledger.domain.entitlement import DueKey, exact_amounts, placements
from topup_ledger.domain.events import PaymentLine
from topup_ledger.domain.payments import PaidSoFar, Window, caused_by, plan_lines
from topup_ledger.domain.plan import Plan, PlanState
from topup_ledger.domain.rules import Annual, Terms

# How many shapes of lines a cache remembers: far more than plans unchanged over a window
# take, bounded all the same.
LINES_REMEMBERED = 10_000

Shape = tuple[object, ...]


class PricingCache:
    """``Terms`` for the rules, with what they work out remembered."""

    def __init__(self, terms: Terms) -> None:
        self.terms = terms
        self.years: dict[date, str] = {}
        self.since: dict[date, date | None] = {}
        self.changes: dict[tuple[date, date], list[date]] = {}
        self.annual: dict[Shape, Annual] = {}
        self.exact: dict[Shape, tuple[tuple[int, str, Fraction], ...]] = {}
        self.lines: dict[Shape, tuple[tuple[Period, PaymentLine], ...]] = {}

    def in_year_changes(self, start: date, end_exclusive: date) -> list[date]:
        key = (start, end_exclusive)
        found = self.changes.get(key)
        if found is None:
            found = self.changes[key] = self.terms.in_year_changes(start, end_exclusive)
        return found

    def annual_amount(self, state: PlanState, day: date) -> Annual:
        year = self.years.get(day)
        if year is None:
            year = self.years[day] = financial_year_of(day)
        if day not in self.since:
            self.since[day] = self.terms.in_force_since(year, day)
        since = self.since[day]
        added = self.terms.schools.get(state.school)
        # The school prices a plan only through its setting (or by being unknown).
        protected = state.protected_on(day)
        key = (added.setting if added else state.school, state.basis, state.band, state.hours,
               year, since, state.prior_hours if protected else None,
               self.terms.prior_priced_on(state, day) if protected else None)
        found = self.annual.get(key)
        if found is None:
            found = self.annual[key] = self.terms.annual_amount(state, day)
        return found

    def exact_amounts(self, plan: Plan, period: Period) -> dict[DueKey, Fraction]:
        """``entitlement.exact_amounts``, remembered by ``pricing_key``."""
        keyed = pricing_key(plan, period.start, period.end_exclusive, self.terms)
        if keyed is None:
            return exact_amounts(plan, period, self)  # raises, naming the school
        parts, schools = keyed
        key = (period.key, parts)
        found = self.exact.get(key)
        if found is None:
            amounts = exact_amounts(plan, period, self)
            found = self.exact[key] = tuple(
                (schools.index(school), component, amount)
                for (school, component), amount in amounts.items())
        return {(schools[i], component): amount for i, component, amount in found}

    def plan_lines(self, plan: Plan, window: Window, run_period: Period, paid: PaidSoFar,
                   positions: dict[str, int]) -> list[tuple[str, PaymentLine]]:
        """``payments.plan_lines``. A plan in one state at one school on every day of the
        window, paid alike, is owed the lines of every other such plan but for whose they are
        and what caused them: a county's unchanged plans share a few dozen such shapes, so
        each is worked out once."""
        periods, open_ids = window
        if not open_ids:
            return []
        same_lines = one_state_throughout(plan, periods, paid, self.terms)
        if same_lines is None:
            return plan_lines(plan, window, run_period, self, paid, self.terms, positions,
                              self.exact_amounts)
        lines_key, school = same_lines
        key = (run_period.key, lines_key, open_ids)
        remembered = self.lines.get(key)
        if remembered is None:
            lines = plan_lines(plan, window, run_period, self, paid, self.terms, positions,
                               self.exact_amounts)
            if len(self.lines) < LINES_REMEMBERED:
                by_id = {period.id: period for period in periods}
                self.lines[key] = tuple((by_id[line.for_period], line) for _, line in lines)
            return lines
        pupil = plan.issued.pupil
        return [(school, PaymentLine(
            plan.ref, pupil, line.kind, line.for_period, line.amount, line.basis,
            line.band_or_hours, line.days, line.reason,
            caused_by(plan, placements(plan, period), paid.last_paid_at.get(period.id),
                      self.terms, positions),
            line.component)) for period, line in remembered]


def frozen_on(state: PlanState, terms: Terms) -> date | None:
    """The day a frozen prior is priced on, where the LA's policy freezes it: plans moved to
    bands on different days are priced alike otherwise."""
    return state.prior_on if terms.protection_prior == "frozen" else None


def pricing_key(plan: Plan, start: date, end_exclusive: date, terms: Terms
          ) -> tuple[Shape, list[str]] | None:
    """What a plan's due on the days [start, end_exclusive) depends on besides the terms:
    its states there, clipped to those days, with each school replaced by its place in the
    list returned and its setting (which is what prices it). None if a school is not in the
    ledger."""
    schools: list[str] = []
    parts: list[tuple[object, ...]] = []
    known = terms.schools
    for first, end, state in plan.clipped(start, end_exclusive):
        added = known.get(state.school)
        if added is None:
            return None
        if state.school not in schools:
            schools.append(state.school)
        parts.append((first, end, schools.index(state.school), added.setting, state.basis,
                      state.hours, state.band, state.prior_annual, state.prior_hours,
                      state.protect_until, frozen_on(state, terms)))
    return tuple(parts), schools


def one_state_throughout(plan: Plan, periods: tuple[Period, ...], paid: PaidSoFar,
                         terms: Terms) -> tuple[Shape, str] | None:
    """What a plan's lines for ``periods`` depend on, but for whose they are and what caused
    them, if it is in one state at one school on all their days and was paid there alone:
    (that, the school); None otherwise, or if the school is not in the ledger."""
    start, end = periods[0].start, periods[-1].end_exclusive
    clipped = plan.clipped(start, end)
    if len(clipped) != 1 or clipped[0][0] != start or clipped[0][1] != end:
        return None
    state = clipped[0][2]
    added = terms.schools.get(state.school)
    if added is None:
        return None
    ids = {period.id for period in periods}
    paid_here = []
    for (period_id, school, component), amount in paid.amounts.items():
        if period_id in ids:
            if school != state.school:
                return None
            paid_here.append((period_id, component, amount))
    # The band, or the hours as written: that prices the days (with the setting and any
    # protection) and is what a line says of them. Not the hours' value alone: Decimal 20
    # and 20.0 are equal and price alike, but a line says "20h" or "20.0h" as the plan's own
    # fact does; nor hours a plan had before its transfer to a band, which price nothing.
    return ((tuple(p.key for p in periods), added.setting, state.basis, state.band_or_hours,
             state.prior_annual, state.prior_hours, state.protect_until, frozen_on(state, terms),
             tuple(sorted(paid_here))),
            state.school)
