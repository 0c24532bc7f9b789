"""A payment run: due as known now, minus what was already paid, becomes lines (DESIGN §3).

For every plan and every period up to and including the run's period, the difference
between due and paid is paid now, per school and component. For the run's own period that
is the *regular* line (and the *protection* line for protection); for an earlier period it is
*arrears* (positive) or *claw-back* (negative), attributed to the school the child was at
then. After the run, paid equals due for every plan, period, school and component.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from topup_ledger.domain.calendar import Period, financial_years_within, parse_year
from topup_ledger.domain.cushion import Cushion, cushion_exact
from topup_ledger.domain.entitlement import (
    PROTECTION,
    Placed,
    dues,
    placements,
    round_cumulatively,
    stretches,
)
from topup_ledger.domain.events import PaymentLine
from topup_ledger.domain.money import pounds
from topup_ledger.domain.plan import Plan
from topup_ledger.domain.rules import Terms, financial_year_on

REGULAR, ARREARS, CLAWBACK, PROTECTION_LINE, CUSHION = (
    "regular", "arrears", "clawback", "protection", "cushion")
LINE_KINDS = (REGULAR, ARREARS, CLAWBACK, PROTECTION_LINE, CUSHION)

# (for period, school, component) → pence paid so far
PaidKey = tuple[str, str, str]


@dataclass
class PaidSoFar:
    """What a plan has been paid, and the ledger position of its latest payment per period."""

    amounts: dict[PaidKey, int] = field(default_factory=dict)
    last_paid_at: dict[str, int] = field(default_factory=dict)

    def add(self, period_id: str, school: str, component: str, amount: int,
            position: int) -> None:
        key = (period_id, school, component)
        self.amounts[key] = self.amounts.get(key, 0) + amount
        self.last_paid_at[period_id] = max(self.last_paid_at.get(period_id, 0), position)


def still_settled(last_run: Period, periods: Iterable[Period],
                  changed_from: date | None) -> Period | None:
    """The last period still known to be paid exactly as due, given that the last run paid
    every period up to ``last_run`` as due and that nothing recorded since can change the
    plan's states or prices before ``changed_from`` (None: nothing changed).

    A period's due depends only on the days of its academic year up to its end (rounding is
    cumulative within the year), so the periods ending by ``changed_from`` keep theirs:
    e.g. a new financial year's rates (``changed_from`` its 1 April) unsettle no period
    already paid, and a band change backdated into this term unsettles only this term.
    """
    settled = None
    for period in periods:
        if period.start > last_run.start:
            break
        if changed_from is not None and period.end_exclusive > changed_from:
            break
        settled = period
    return settled


def first_repriced_day(plan: Plan, revised_from: Mapping[str, date]) -> date | None:
    """The first day on which the plan's price may differ because terms were revised, given
    the first day each basis's terms were revised from (``{"hours": 1 April 2027}`` after a
    new hourly rate for 2027-28): a day on hours is priced by the hourly rate alone, a day on
    a band by the tariff alone (protection compares the band with an amount kept at transfer).
    So a tariff revision reprices no plan on hours throughout, and no plan ceased before it
    applies. None if no day the plan is funded can be repriced."""
    found = None
    for segment in plan.segments:
        revised = revised_from.get(segment.state.basis)
        if revised is None or (segment.end_exclusive is not None and segment.end_exclusive <= revised):
            continue
        day = max(segment.start, revised)
        found = day if found is None else min(found, day)
    return found


def first_day_of_year(financial_year: str) -> date:
    """'2026-27' → 1 April 2026: a rate or tariff for the year prices days from then."""
    return date(parse_year(financial_year), 4, 1)


def line_kind(period: Period, run_period: Period, component: str, amount: int) -> str:
    if period.id == run_period.id:
        return {PROTECTION: PROTECTION_LINE, CUSHION: CUSHION}.get(component, REGULAR)
    return ARREARS if amount > 0 else CLAWBACK


def cushion_lines(cushion: Cushion, plans: Iterable[Plan], periods: Iterable[Period],
                  run_period: Period, terms: Terms, paid: PaidSoFar) -> list[PaymentLine]:
    """The school's cushion lines: due (its share of the net reduction) less cushion paid."""
    school = cushion.school
    periods = list(periods)
    plans = [p for p in plans if school in p.schools()]
    exact = [(period, {CUSHION: cushion_exact(
        cushion, [s for plan in plans for s in stretches(plan, period, terms)])})
        for period in periods]
    due = round_cumulatively(exact)
    lines = []
    for period in periods:
        owed = due.get(period.id, {}).get(CUSHION, 0)
        already = paid.amounts.get((period.id, school, CUSHION), 0)
        if owed == already:
            continue
        amount = owed - already
        lines.append(PaymentLine(
            plan="", pupil="", kind=line_kind(period, run_period, CUSHION, amount),
            for_period=period.id, amount=amount, basis="cushion", band_or_hours="",
            days=cushion.days_within(period.start, period.end_exclusive),
            reason=(f"{period.id}: transitional cushion ({cushion.share_percent}% of the school's "
                    f"net reduction from the move to bands): due £{pounds(owed)}, "
                    f"already paid £{pounds(already)}"),
            caused_by=(cushion.because,), component=CUSHION))
    return lines


def plan_lines(plan: Plan, periods: Iterable[Period], run_period: Period, terms: Terms,
               paid: PaidSoFar, term_sources: Mapping[str, list[tuple[int, str]]],
               positions: Mapping[str, int],
               settled: Period | None = None,
               window: tuple[tuple[Period, ...], frozenset[str]] | None = None,
               ) -> list[tuple[str, PaymentLine]]:
    """The lines that bring the plan's paid up to its due, as (school, line) pairs.

    ``positions`` gives the ledger position of each of the plan's events and
    ``term_sources`` the (position, id) of each financial year's rate and tariff facts, so
    that each line can name the events recorded since the period was last paid.
    ``settled`` is the last period known to be paid exactly as due (nothing that bears on
    the plan was recorded since a run covered it): periods up to it are not looked at again,
    except to carry the year's cumulative rounding. ``window`` is ``open_window(periods,
    settled)`` if the caller has already worked it out (a run asks the same for every plan).
    """
    periods, open_ids = window or open_window(periods, settled)
    if not open_ids:
        return []
    alike = one_state_throughout(plan, periods, paid, terms)
    if alike is None:
        return worked_out_lines(plan, periods, open_ids, run_period, terms, paid, term_sources,
                                positions)
    # A plan in one state at one school on every day of the periods, paid alike, is owed the
    # lines of every other such plan but for whose they are and what caused them: a county's
    # unchanged plans share a few dozen such shapes, so each is worked out once a run.
    shape_key, school = alike
    key = ("lines", run_period.key, shape_key, open_ids)
    remembered = terms.priced.get(key)
    if remembered is None:
        lines = worked_out_lines(plan, periods, open_ids, run_period, terms, paid, term_sources,
                                 positions)
        if terms.lines_remembered < LINES_REMEMBERED:
            by_id = {period.id: period for period in periods}
            terms.priced[key] = tuple((by_id[line.for_period], line) for _, line in lines)
            terms.lines_remembered += 1
        return lines
    pupil = plan.issued.pupil
    return [(school, PaymentLine(
        plan.ref, pupil, line.kind, line.for_period, line.amount, line.basis, line.band_or_hours,
        line.days, line.reason,
        caused_by(plan, period, placements(plan, period), paid.last_paid_at.get(period.id),
                  term_sources, positions),
        line.component)) for period, line in remembered]  # type: ignore[misc]


# How many shapes of lines a run remembers (``plan_lines``): far more than plans unchanged
# over a window take, bounded all the same.
LINES_REMEMBERED = 10_000


def one_state_throughout(plan: Plan, periods: tuple[Period, ...], paid: PaidSoFar,
                         terms: Terms) -> tuple[tuple[object, ...], str] | None:
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
             state.prior_annual, state.protect_until, tuple(sorted(paid_here))), state.school)


def worked_out_lines(plan: Plan, periods: tuple[Period, ...], open_ids: frozenset[str],
                     run_period: Period, terms: Terms, paid: PaidSoFar,
                     term_sources: Mapping[str, list[tuple[int, str]]],
                     positions: Mapping[str, int]) -> list[tuple[str, PaymentLine]]:
    """``plan_lines`` worked out: due per period, less paid, line by line."""
    due = dues(plan, periods, terms)
    paid_in: dict[str, dict[tuple[str, str], int]] = {}
    for (period_id, school, component), amount in paid.amounts.items():
        paid_in.setdefault(period_id, {})[(school, component)] = amount
    lines: list[tuple[str, PaymentLine]] = []
    pupil = plan.issued.pupil
    for period in periods:
        if period.id not in open_ids:
            continue
        owed = due.get(period.id, {})
        already = paid_in.get(period.id, {})
        if owed == already:
            continue
        found: list[Placed] | None = None
        at: dict[str, tuple[list[Placed], Days]] = {}  # a school's base and protection lines
        for school, component in sorted({*owed, *already}):
            due_now = owed.get((school, component), 0)
            paid_before = already.get((school, component), 0)
            amount = due_now - paid_before
            if amount == 0:
                continue
            if found is None:
                found = placements(plan, period)
            if school not in at:
                here = [s for s in found if s.school == school]
                at[school] = here, described(here)
            here, days = at[school]
            kind = line_kind(period, run_period, component, amount)
            lines.append((school, PaymentLine(
                plan=plan.ref,
                pupil=pupil,
                kind=kind,
                for_period=period.id,
                amount=amount,
                basis=days.basis,
                band_or_hours=days.band_or_hours,
                days=days.days,
                reason=reason(kind, component, period, days, due_now, paid_before),
                caused_by=caused_by(plan, period, here, paid.last_paid_at.get(period.id),
                                    term_sources, positions),
                component=component,
            )))
    return lines


class Days(NamedTuple):
    """What a line says of the days behind it: a plan's placements at one school in a
    period."""

    basis: str  # "band", "hours", or both in order ("hours/band") after a transfer
    band_or_hours: str  # e.g. "C", "20h", or in order "20h→C"
    days: int
    what: str  # in words: "band C", "20h a week then band C"


def described(here: Sequence[Placed]) -> Days:
    if len(here) == 1:  # the usual case: one state all the days
        s = here[0]
        return Days(s.basis, s.band_or_hours, s.days, in_words(s))
    return Days("/".join(dict.fromkeys(s.basis for s in here)) or "none",
                "→".join(dict.fromkeys(s.band_or_hours for s in here)) or "none",
                sum(s.days for s in here),
                " then ".join(dict.fromkeys(map(in_words, here))) or "no longer funded here")


def in_words(placed: Placed) -> str:
    if placed.basis == "band":
        return f"band {placed.band_or_hours}"
    return f"{placed.band_or_hours} a week"


def open_window(periods: Iterable[Period], settled: Period | None
                ) -> tuple[tuple[Period, ...], frozenset[str]]:
    """The periods after ``settled`` (open), and every period of their academic years (their
    dues carry the year's cumulative rounding)."""
    periods = tuple(periods)
    open_ids = frozenset(p.id for p in periods if settled is None or p.start > settled.start)
    open_years = {p.year for p in periods if p.id in open_ids}
    return tuple(p for p in periods if p.year in open_years), open_ids


def reason(kind: str, component: str, period: Period, days: Days, due: int, paid: int) -> str:
    """The line in plain words, for the payment file and the school's statement."""
    if kind in (REGULAR, PROTECTION_LINE) and paid == 0:
        label = "protection of the prior hours-based amount" if component == PROTECTION else days.what
        return f"{period.id}: {label}, {days.days} of {period.days} days"
    return (f"{period.id}: due now £{pounds(due)} ({days.what}, {days.days} days), "
            f"already paid £{pounds(paid)}")


def caused_by(plan: Plan, period: Period, here: Sequence[Placed], last_paid_at: int | None,
              term_sources: Mapping[str, list[tuple[int, str]]],
              positions: Mapping[str, int]) -> tuple[str, ...]:
    """The events behind a line: for a first payment, those that set the plan's state in the
    period; after an earlier payment, those recorded since it that bear on the period."""
    years = {year for s in here for year in financial_years_within(s.start, s.end_exclusive)
             } or {financial_year_on(period.start)}
    if last_paid_at is None:
        because = dict.fromkeys(s.because for s in here) or [plan.facts[0].id]
        return tuple(dict.fromkeys(i for b in because for i in plan.with_corrections(b)))
    ids = [r.id for r in plan.facts if positions.get(r.id, 0) > last_paid_at]
    for year in sorted(years):
        ids += [i for pos, i in term_sources.get(year, []) if pos > last_paid_at]
    return tuple(ids)


