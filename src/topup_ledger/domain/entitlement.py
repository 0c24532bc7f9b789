"""Entitlement (due) of a plan for a period (docs/rules.md §5, §6).

For each stretch of days in the period on which the plan's school, basis and rate do not
change: annual amount × period share × days in stretch ÷ days in period, summed exactly.
Rounding is to whole pence, half up, *cumulatively* within the year per plan, school and
component: a period's due is the rounded due for the year so far minus the rounded due
before it, so a plan on one rate at one school for a whole year is paid its annual amount.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from math import gcd
from typing import Protocol, TypeVar

from topup_ledger.domain.calendar import Period, financial_year_starts
from topup_ledger.domain.errors import MissingTerms
from topup_ledger.domain.events import Basis, Component
from topup_ledger.domain.money import Pence, round_half_up_parts
from topup_ledger.domain.plan import Plan, PlanState
from topup_ledger.domain.rules import Annual

BASE: Component = "base"
PROTECTION: Component = "protection"
COMPONENTS = (BASE, PROTECTION)

# (school URN, component) → amount
DueKey = tuple[str, str]
K = TypeVar("K")


class Prices(Protocol):
    """What working out a due asks of the reference data: a plan's annual amount on a day,
    and the days inside a stretch from which an in-year revision changes the terms.
    ``Terms`` answers it; a run's pricing cache answers it remembered."""

    def annual_amount(self, state: PlanState, day: date) -> Annual: ...

    def in_year_changes(self, start: date, end_exclusive: date) -> list[date]: ...


# A period's exact amounts for a plan, however the caller works them out.
ExactAmounts = Callable[[Plan, Period], dict[DueKey, Fraction]]


@dataclass(frozen=True)
class Stretch:
    """Days of one period on which a plan's school, basis and annual amount do not change."""

    period: Period
    start: date
    end_exclusive: date
    school: str
    basis: Basis
    band_or_hours: str
    annual: Annual
    because: str
    prior_annual: int | None = None  # kept at transfer: the cushion compares against it

    @property
    def days(self) -> int:
        return (self.end_exclusive - self.start).days


@dataclass(frozen=True, slots=True)
class Placed:
    """Days of one period on which a plan is in one state at one school, unpriced: what a
    payment line or an explanation says of them (a stretch without its annual amount)."""

    start: date
    end_exclusive: date
    school: str
    basis: Basis
    band_or_hours: str
    because: str
    protected: bool = False  # on some of the days: the prior is priced on hours (§10)

    @property
    def days(self) -> int:
        return (self.end_exclusive - self.start).days


def placements(plan: Plan, period: Period) -> list[Placed]:
    """The plan's states within ``period``, clipped to it, in date order. The same days,
    schools and states as ``stretches`` (which also cuts at each 1 April and the end of
    protection, to price them), without pricing anything: so it never raises."""
    return [Placed(start, end, state.school, state.basis, state.band_or_hours, state.because,
                   state.prior_hours is not None and state.protected_on(start))
            for start, end, state in plan.clipped(period.start, period.end_exclusive)]


def portion(annual: Fraction, share: Fraction, days: int, period_days: int) -> tuple[int, int]:
    """annual amount × period share × days in stretch ÷ days in period, exactly, as an
    integer numerator and denominator (not yet reduced): exact fraction arithmetic is the
    cost of a payment run, and integers add without Fraction's overhead."""
    return (annual.numerator * share.numerator * days,
            annual.denominator * share.denominator * period_days)


def stretches(plan: Plan, period: Period, prices: Prices) -> list[Stretch]:
    """The plan's stretches within ``period``; raises MissingTerms listing every gap."""
    found: list[Stretch] = []
    missing: list[str] = []
    for start, end, state in plan.clipped(period.start, period.end_exclusive):
        for a, b in pricing_cuts(start, end, state.protect_until,
                                 prices.in_year_changes(start, end)):
            try:
                annual = prices.annual_amount(state, a)
            except MissingTerms as gap:
                missing.extend(gap.missing)
                continue
            found.append(Stretch(period, a, b, state.school, state.basis, state.band_or_hours,
                                 annual, state.because, state.prior_annual))
    if missing:
        raise MissingTerms([f"{m} (plan {plan.ref}, {period.id})" for m in missing])
    return found


def pricing_cuts(start: date, end: date, protect_until: date | None,
                 revised_from: Iterable[date] = ()) -> list[tuple[date, date]]:
    """[start, end) split where the annual amount may change: each 1 April (a new financial
    year's rates), each day an in-year revision takes effect from, and the day after
    protection ends."""
    cuts = {start, end, *financial_year_starts(start, end), *revised_from}
    if protect_until is not None and start < protect_until + timedelta(1) < end:
        cuts.add(protect_until + timedelta(1))
    if len(cuts) == 2:
        return [(start, end)]
    return list(itertools.pairwise(sorted(cuts)))


def exact_amounts(plan: Plan, period: Period, prices: Prices) -> dict[DueKey, Fraction]:
    """The plan's exact due for ``period`` by school and component, unrounded. Raises
    MissingTerms as ``stretches``."""
    return exact_due(stretches(plan, period, prices))


def exact_due(found: Iterable[Stretch]) -> dict[DueKey, Fraction]:
    """The stretches' portions summed exactly by school and component (base and protection),
    added as integer numerators and denominators (as ``round_cumulatively`` adds) and made a
    Fraction once per key. Amounts are never negative, so a key appears when one of its
    portions is not zero."""
    total: dict[DueKey, tuple[int, int]] = {}
    for stretch in found:
        period = stretch.period
        # school days on roll where the calendar holds them, else calendar days (§2, §5)
        share, period_days = period.share, period.weight_total
        if not period_days:
            continue  # a period with no school days (August) pays nothing
        days = period.weight(stretch.start, stretch.end_exclusive)
        for key, annual in (((stretch.school, BASE), stretch.annual.base),
                            ((stretch.school, PROTECTION), stretch.annual.protection)):
            if not annual:
                continue
            n, d = portion(annual, share, days, period_days)
            before = total.get(key)
            total[key] = (n, d) if before is None else _add(before[0], before[1], n, d)
    return {key: Fraction(n, d) for key, (n, d) in total.items()}


def round_cumulatively(
    by_period: Iterable[tuple[Period, Mapping[K, Fraction]]],
) -> dict[str, dict[K, Pence]]:
    """Whole pence per period from exact amounts: within each year and key, a period gets
    the rounded total so far less the rounded total before it. Only amounts that are not
    zero after rounding appear."""
    result: dict[str, dict[K, Pence]] = {}
    # The running totals are kept as integer numerator and denominator, added and rounded
    # with integer arithmetic: exactly what Fraction would do, without its overhead on
    # every due of every plan.
    cumulative: dict[K, tuple[int, int]] = {}
    rounded: dict[K, Pence] = {}
    year = None
    for period, exact in by_period:
        if period.year != year:
            year, cumulative, rounded = period.year, {}, {}
        period_due: dict[K, Pence] = {}
        for key, amount in exact.items():
            n, d = amount.numerator, amount.denominator
            before = cumulative.get(key)
            if before is not None:
                n, d = _add(before[0], before[1], n, d)
            cumulative[key] = (n, d)
            now = round_half_up_parts(n, d)
            was = rounded.get(key, 0)
            if now != was:
                period_due[key] = now - was
            rounded[key] = now
        if period_due:
            result[period.id] = period_due
    return result


def _add(n1: int, d1: int, n2: int, d2: int) -> tuple[int, int]:
    """n1/d1 + n2/d2 in lowest terms (denominators positive)."""
    if d1 == d2:
        n, d = n1 + n2, d1
    else:
        n, d = n1 * d2 + n2 * d1, d1 * d2
    g = gcd(n, d)  # at least 1: d is positive
    return n // g, d // g


def dues(plan: Plan, periods: Iterable[Period], prices: Prices,
         exact: ExactAmounts | None = None) -> dict[str, dict[DueKey, Pence]]:
    """Rounded due per period for ``periods`` (in date order, whole years from their start
    as far as needed), by school and component. ``exact`` gives a period's exact amounts,
    if the caller remembers them (``exact_amounts`` with ``prices`` otherwise)."""
    found: list[tuple[Period, dict[DueKey, Fraction]]] = []
    missing: list[str] = []
    for period in periods:
        try:
            amounts = (exact_amounts(plan, period, prices) if exact is None
                       else exact(plan, period))
        except MissingTerms as gap:
            missing.extend(gap.missing)
            continue
        if amounts:
            found.append((period, amounts))
    if missing:
        raise MissingTerms(missing)
    return round_dues(found)


TOTAL = "total"  # base and protection together, while they are rounded as one


def round_dues(exact: Iterable[tuple[Period, Mapping[DueKey, Fraction]]]
               ) -> dict[str, dict[DueKey, Pence]]:
    """Whole pence per period, school and component from exact amounts (docs/rules.md §6):
    base and protection are one amount for rounding, so the total is rounded cumulatively
    and protection is the rounded total less the rounded base; a year of one state at one
    school then adds up to its annual total to the penny."""
    def with_totals(amounts: Mapping[DueKey, Fraction]) -> dict[DueKey, Fraction]:
        found: dict[DueKey, Fraction] = {}
        for (school, component), amount in amounts.items():
            if component == BASE:
                found[(school, BASE)] = amount
            total = (school, TOTAL)
            found[total] = found.get(total, Fraction(0)) + amount
        return found

    exact = list(exact)
    if not any(component == PROTECTION for _, amounts in exact for _, component in amounts):
        return round_cumulatively(exact)  # no protection: the total is the base
    rounded = round_cumulatively((period, with_totals(amounts)) for period, amounts in exact)
    result: dict[str, dict[DueKey, Pence]] = {}
    for period_id, found in rounded.items():
        due: dict[DueKey, Pence] = {}
        for school in dict.fromkeys(school for school, _ in found):
            base = found.get((school, BASE), 0)
            protection = found.get((school, TOTAL), 0) - base
            if base:
                due[(school, BASE)] = base
            if protection:
                due[(school, PROTECTION)] = protection
        if due:
            result[period_id] = due
    return result
