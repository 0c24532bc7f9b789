"""Entitlement (due) of a plan for a period (DESIGN §3 "Entitlement").

For each stretch of days in the period on which the plan's school, basis and rate do not
change: annual amount × period share × days in stretch ÷ days in period, summed exactly.
Rounding is to whole pence, half up, *cumulatively* within the year per plan, school and
component: a period's due is the rounded due for the year so far minus the rounded due
before it, so a plan on one rate at one school for a whole year is paid its annual amount.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from functools import lru_cache
from typing import TypeVar

from .calendar import Period, financial_year_starts
from .errors import MissingTerms
from .money import Pence, round_half_up
from .plan import Plan
from .rules import Annual, Terms

BASE = "base"
PROTECTION = "protection"
COMPONENTS = (BASE, PROTECTION)

# (school URN, component) → amount
DueKey = tuple[str, str]
K = TypeVar("K")


@dataclass(frozen=True)
class Stretch:
    """Days of one period on which a plan's school, basis and annual amount do not change."""

    period: Period
    start: date
    end_exclusive: date
    school: str
    basis: str
    band_or_hours: str
    annual: Annual
    because: str
    prior_annual: int | None = None  # kept at transfer: the cushion compares against it

    @property
    def days(self) -> int:
        return (self.end_exclusive - self.start).days

    def exact(self) -> dict[DueKey, Fraction]:
        share, days, period_days = self.period.share, self.days, self.period.days
        return {(self.school, BASE): portion(self.annual.base, share, days, period_days),
                (self.school, PROTECTION): portion(self.annual.protection, share, days, period_days)}


@lru_cache(maxsize=1 << 16)
def portion(annual: Fraction, share: Fraction, days: int, period_days: int) -> Fraction:
    """annual amount × period share × days in stretch ÷ days in period, exactly.

    Cached because a county's plans share a handful of rates and stretch lengths, and exact
    fraction arithmetic is the cost of a payment run.
    """
    return annual * share * days / period_days


def stretches(plan: Plan, period: Period, terms: Terms) -> list[Stretch]:
    """The plan's stretches within ``period``; raises MissingTerms listing every gap."""
    found: list[Stretch] = []
    missing: list[str] = []
    for segment in plan.segments_between(period.start, period.end_exclusive):
        start = max(segment.start, period.start)
        end = period.end_exclusive if segment.end_exclusive is None else min(
            segment.end_exclusive, period.end_exclusive)
        state = segment.state
        cuts = {start, end, *financial_year_starts(start, end)}
        if state.protect_until is not None and start < state.protect_until + timedelta(1) < end:
            cuts.add(state.protect_until + timedelta(1))
        ordered = sorted(cuts)
        for a, b in itertools.pairwise(ordered):
            gaps = terms.missing_for(state, a)
            if gaps:
                missing.extend(gaps)
                continue
            found.append(Stretch(period, a, b, state.school, state.basis, state.band_or_hours,
                                 terms.annual_amount(state, a), state.because, state.prior_annual))
    if missing:
        raise MissingTerms([f"{m} (plan {plan.ref}, {period.id})" for m in missing])
    return found


def exact_due(found: Iterable[Stretch]) -> dict[DueKey, Fraction]:
    total: dict[DueKey, Fraction] = defaultdict(Fraction)
    for stretch in found:
        for key, amount in stretch.exact().items():
            if amount:
                total[key] += amount
    return dict(total)


def round_cumulatively(
    by_period: Iterable[tuple[Period, Mapping[K, Fraction]]],
) -> dict[str, dict[K, Pence]]:
    """Whole pence per period from exact amounts: within each year and key, a period gets
    the rounded total so far less the rounded total before it. Only amounts that are not
    zero after rounding appear."""
    result: dict[str, dict[K, Pence]] = {}
    cumulative: dict[K, Fraction] = {}
    rounded: dict[K, Pence] = {}
    year = None
    for period, exact in by_period:
        if period.year != year:
            year, cumulative, rounded = period.year, {}, {}
        period_due: dict[K, Pence] = {}
        for key, amount in exact.items():
            cumulative[key] = cumulative.get(key, Fraction(0)) + amount
            now = round_half_up(cumulative[key])
            if now != rounded.get(key, 0):
                period_due[key] = now - rounded.get(key, 0)
            rounded[key] = now
        if period_due:
            result[period.id] = period_due
    return result


def dues(plan: Plan, periods: Iterable[Period], terms: Terms) -> dict[str, dict[DueKey, Pence]]:
    """Rounded due per period for ``periods`` (in date order, whole years from their start
    as far as needed), by school and component."""
    exact: list[tuple[Period, dict[DueKey, Fraction]]] = []
    missing: list[str] = []
    for period in periods:
        try:
            amounts = exact_due(stretches(plan, period, terms))
        except MissingTerms as gap:
            missing.extend(gap.missing)
            continue
        if amounts:
            exact.append((period, amounts))
    if missing:
        raise MissingTerms(missing)
    return round_cumulatively(exact)
