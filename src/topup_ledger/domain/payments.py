"""A payment run: due as known now, minus what was already paid, becomes lines
(docs/rules.md §7, §9).

For every plan and every period up to and including the run's period, the difference
between due and paid is paid now, per school and component. For the run's own period that
is the *regular* line (and the *protection* line for protection); for an earlier period it is
*arrears* (positive) or *claw-back* (negative), attributed to the school the child was at
then. After the run, paid equals due for every plan, period, school and component.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple, Protocol

from topup_ledger.domain.calendar import Period
from topup_ledger.domain.cushion import Cushion, cushion_annual, cushion_exact, reduction_at_transfer
from topup_ledger.domain.entitlement import (
    PROTECTION,
    ExactAmounts,
    Placed,
    Prices,
    dues,
    placements,
    round_cumulatively,
)
from topup_ledger.domain.events import LINE_KINDS, Component, LineKind, PaymentLine
from topup_ledger.domain.money import pounds
from topup_ledger.domain.plan import Plan
from topup_ledger.domain.rules import Terms

REGULAR, ARREARS, CLAWBACK, PROTECTION_LINE, CUSHION = LINE_KINDS

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

    def reversed_in(self, period_id: str) -> None:
        """A withdrawn run's lines were reversed: if nothing stands paid for the period now,
        it was never paid, so its next line names its causes as a first payment does."""
        if not any(amount for (period, _, _), amount in self.amounts.items() if period == period_id):
            self.last_paid_at.pop(period_id, None)


# A withdrawn run's reversal lines name its withdrawal (``control:<run>/<version>``) as cause.
REVERSAL_CAUSE = "control:"


def line_kind(period: Period, run_period: Period, component: Component, amount: int) -> LineKind:
    if period.id == run_period.id:
        return {PROTECTION: PROTECTION_LINE, CUSHION: CUSHION}.get(component, REGULAR)
    return ARREARS if amount > 0 else CLAWBACK


def cushion_lines(cushion: Cushion, plans: Iterable[Plan], periods: Iterable[Period],
                  run_period: Period, terms: Terms, paid: PaidSoFar) -> list[PaymentLine]:
    """The school's cushion lines (docs/rules.md §11): due (its share of its net reduction
    at transfer, on the cushion's days) less cushion paid."""
    school = cushion.school
    periods = list(periods)
    reductions = [reduction_at_transfer(plan, school, cushion.year, terms)
                  for plan in plans if school in plan.schools()]
    annual = cushion_annual(cushion, [r for r in reductions if r is not None])
    exact = [(period, {CUSHION: cushion_exact(cushion, annual, period)}) for period in periods]
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
            days=cushion_days(cushion, period),
            reason=(f"{period.id}: transitional cushion ({cushion.share_percent}% of the school's "
                    f"net reduction from the move to bands): due £{pounds(owed)}, "
                    f"already paid £{pounds(already)}"),
            caused_by=(cushion.because,), component=CUSHION))
    return lines


def cushion_days(cushion: Cushion, period: Period) -> int:
    """The cushion's days in the period: its school days where the calendar holds them."""
    if period.school_dates is None:
        return cushion.days_within(period.start, period.end_exclusive)
    first = max(period.start, cushion.start)
    end = min(period.end_exclusive, cushion.until + timedelta(days=1))
    return period.weight(first, end) if end > first else 0


def plan_lines(plan: Plan, window: Window, run_period: Period, prices: Prices, paid: PaidSoFar,
               sources: Sources, positions: Mapping[str, int],
               exact: ExactAmounts | None = None) -> list[tuple[str, PaymentLine]]:
    """The lines that bring the plan's paid up to its due, as (school, line) pairs
    (docs/rules.md §7): due per period, less paid, line by line, for the open periods of
    ``window`` (``open_window``: the periods after the last one known to be paid as due,
    and the rest of their academic years, which carry the cumulative rounding).

    ``positions`` gives the ledger position of each of the plan's events and ``sources``
    the rate and tariff facts, so that each line can name the events recorded since the
    period was last paid that change its amount (§9).
    ``exact`` gives a period's exact amounts, if the caller remembers them."""
    periods, open_ids = window
    if not open_ids:
        return []
    due = dues(plan, periods, prices, exact)
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
                at[school] = here, described(here, period)
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
                caused_by=caused_by(plan, here, paid.last_paid_at.get(period.id), sources,
                                    positions),
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


def described(here: Sequence[Placed], period: Period | None = None) -> Days:
    """What a line says of its days: in a period paid by school days on roll (§2), its
    school days."""
    def days(s: Placed) -> int:
        return s.days if period is None else period.weight(s.start, s.end_exclusive)

    if len(here) == 1:  # the usual case: one state all the days
        s = here[0]
        return Days(s.basis, s.band_or_hours, days(s), in_words(s))
    return Days("/".join(dict.fromkeys(s.basis for s in here)) or "none",
                "→".join(dict.fromkeys(s.band_or_hours for s in here)) or "none",
                sum(map(days, here)),
                " then ".join(dict.fromkeys(map(in_words, here))) or "no longer funded here")


def in_words(placed: Placed) -> str:
    if placed.basis == "band":
        return f"band {placed.band_or_hours}"
    return f"{placed.band_or_hours} a week"


# The periods a plan's lines are worked out over, and the ids of those among them that are open.
Window = tuple[tuple[Period, ...], frozenset[str]]


def open_window(periods: Iterable[Period], settled: Period | None) -> Window:
    """The periods after ``settled`` (open), and every period of their academic years (their
    dues carry the year's cumulative rounding)."""
    periods = tuple(periods)
    open_ids = frozenset(p.id for p in periods if settled is None or p.start > settled.start)
    open_years = {p.year for p in periods if p.id in open_ids}
    return tuple(p for p in periods if p.year in open_years), open_ids


def reason(kind: LineKind, component: Component, period: Period, days: Days, due: int, paid: int) -> str:
    """The line in plain words, for the payment file and the school's statement."""
    unit = "days" if period.school_dates is None else "school days"
    if kind in (REGULAR, PROTECTION_LINE) and paid == 0:
        label = "protection of the prior hours-based amount" if component == PROTECTION else days.what
        return f"{period.id}: {label}, {days.days} of {period.weight_total} {unit}"
    return (f"{period.id}: due now £{pounds(due)} ({days.what}, {days.days} {unit}), "
            f"already paid £{pounds(paid)}")


class Sources(Protocol):
    """Where the reference facts that price a plan's days are found (``Terms``)."""

    def bearing_on(self, school: str, basis: str, band_or_hours: str, protected: bool,
                   start: date, end_exclusive: date, after: int) -> list[tuple[int, str]]: ...


def caused_by(plan: Plan, here: Sequence[Placed], last_paid_at: int | None, sources: Sources,
              positions: Mapping[str, int]) -> tuple[str, ...]:
    """The events behind a line (docs/rules.md §9): for a first payment, those that set the
    plan's state in the period; after an earlier payment, those recorded since it that
    change the line's amount: the plan's own, and the rates and tariffs that price its
    days."""
    if last_paid_at is None:
        because = dict.fromkeys(s.because for s in here) or [plan.facts[0].id]
        return tuple(dict.fromkeys(i for b in because for i in plan.with_corrections(b)))
    ids = [r.id for r in plan.facts if positions.get(r.id, 0) > last_paid_at]
    reference = sorted({found for s in here for found in sources.bearing_on(
        s.school, s.basis, s.band_or_hours, s.protected, s.start, s.end_exclusive, last_paid_at)})
    return tuple(ids + [event_id for _, event_id in reference])


