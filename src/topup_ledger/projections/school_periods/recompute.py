"""Working out one plan's rows: its due per period and school (priced, or taken from what a
run paid while settled), what it was at each school, what cannot be priced, its part of a
school's cushion, and the events that explain a difference between due and paid."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

from topup_ledger.domain.calendar import Period
from topup_ledger.domain.cushion import reduction_at_transfer
from topup_ledger.domain.entitlement import placements, round_dues
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.payments import PaidSoFar, caused_by
from topup_ledger.domain.plan import Plan, RecordedFact
from topup_ledger.domain.settlement import settled_plan
from topup_ledger.projections.school_periods.context import Context

NOT_PRICED_AFTER = "follows a period of the same year that cannot be priced"

# The rows of the sp_ tables a plan's are written to, in their columns' order.
DueRow = tuple[str, str, str, str, int]  # plan, period, school, component, pence
SummaryRow = tuple[str, str, str, str, str, int, int | None]  # … basis, band, days, run-rate
ExplainRow = tuple[str, str, str, int, str]  # plan, period, school, position, event id
MissingRow = tuple[str, str, str, str]  # plan, period, school, message
CushionRow = tuple[str, str, str, str]  # plan, period, school, net reduction (a fraction)
Dues = dict[str, dict[tuple[str, str], int]]  # period → (school, component) → pence


@dataclass
class PlanRows:
    """Plans' rows for each of the tables they are written to, and the periods they reach."""

    due: list[DueRow] = field(default_factory=list)
    summary: list[SummaryRow] = field(default_factory=list)
    explain: list[ExplainRow] = field(default_factory=list)
    missing: list[MissingRow] = field(default_factory=list)
    cushion: list[CushionRow] = field(default_factory=list)
    periods: dict[str, Period] = field(default_factory=dict)

    def add(self, other: PlanRows) -> None:
        self.due += other.due
        self.summary += other.summary
        self.explain += other.explain
        self.missing += other.missing
        self.cushion += other.cushion
        self.periods.update(other.periods)


def strip_plan(message: str) -> str:
    """'no tariff … (plan P1, 2025-26/autumn)' → 'no tariff …': the school row says where."""
    return message.rsplit(" (plan ", 1)[0]


def priced_dues(plan: Plan, periods: list[Period], ctx: Context
                ) -> tuple[Dues, dict[str, list[str]]]:
    """The plan's due per period as far as the terms allow, and what is missing where.

    The same as ``domain.entitlement.dues`` (exact amounts per period, docs/rules.md §5, then
    cumulative rounding within each year, §6) with the exact amounts remembered; where a
    period cannot be priced, the periods after it in the same year cannot be either (rounding
    is cumulative), and are reported as missing instead of failing the whole plan.
    """
    exact: list[tuple[Period, dict[tuple[str, str], Fraction]]] = []
    missing: dict[str, list[str]] = {}
    broken: str | None = None
    for period in periods:
        if broken == period.year:
            missing[period.id] = [NOT_PRICED_AFTER]
            continue
        try:
            amounts = ctx.pricing.exact_amounts(plan, period)
        except MissingTerms as gap:
            missing[period.id] = [strip_plan(m) for m in gap.missing]
            broken = period.year
            continue
        if amounts:
            exact.append((period, amounts))
    return round_dues(exact), missing


def settled_dues(periods: list[Period], settled: Period | None, paid: PaidSoFar
                 ) -> tuple[list[Period], Dues]:
    """The periods that must be priced, and the due of the others taken from what was paid.

    A year whose periods all lie up to ``settled`` (docs/rules.md §8) was paid exactly its
    due, so its due is the sum of its payment lines. A year with a later period is
    priced whole, as the payment run does: cumulative rounding carries from its earlier
    periods."""
    if settled is None:
        return periods, {}
    years = [(p, p.year) for p in periods]
    open_years = {year for p, year in years if p.start > settled.start}
    closed = {p.id for p, year in years if year not in open_years}
    due: Dues = {}
    for (period_id, school, component), pence in paid.amounts.items():
        if pence and period_id in closed:
            due.setdefault(period_id, {})[(school, component)] = pence
    return [p for p, year in years if year in open_years], due


def plan_rows(ref: str, facts: list[RecordedFact], paid: PaidSoFar, ctx: Context,
              settled: Period | None = None, after: Period | None = None) -> PlanRows:
    """The plan's derived rows. With ``settled``, the dues of the years settled up to it
    are taken from what was paid (``settled_dues``); with ``after``, only the rows of the
    periods after it are worked out (the horizon has moved on from ``after`` and the plan's
    earlier rows stand: a period's due, summary, explanation and what is missing never
    depend on later periods)."""
    rows = PlanRows()
    if not facts:
        return rows
    try:
        plan = Plan(facts)
    except RuleError as error:
        if after is None:  # said once, for no period: not again for each one added
            rows.missing.append((ref, "", "", f"plan {ref} cannot be read: {error}"))
        return rows
    first = plan.start
    periods = [p for p in ctx.periods_from(first) if p.end >= first]
    considered = {p.id: p for p in periods}
    extra = False
    for period_id, _school, _component in paid.amounts:
        if period_id not in considered:
            found = ctx.period(period_id)
            if found is not None:
                considered[period_id] = found
                extra = True
    if extra:
        periods = sorted(considered.values())
    rows.periods = considered
    if settled is not None and ctx.revisions:
        settled = settled_plan(settled, periods, plan, ctx.revisions)
    priced, due = settled_dues(periods, settled, paid)
    if after is not None:
        periods = [p for p in periods if p.start > after.start]
        # A later period's due is rounded cumulatively with its year's earlier periods.
        years = {p.year for p in periods}
        priced = [p for p in priced if p.year in years]
        added = {p.id for p in periods}
        due = {period_id: owed for period_id, owed in due.items() if period_id in added}
    if priced:
        found_due, missing = priced_dues(plan, priced, ctx)
        if after is not None:
            found_due = {i: owed for i, owed in found_due.items() if i in added}
            missing = {i: gaps for i, gaps in missing.items() if i in added}
        due.update(found_due)
    else:
        missing = {}
    if after is None:  # a plan's part of a cushion does not change as the horizon moves on
        for school in sorted(plan.schools()):
            cushion = ctx.ref.cushions.get(school)
            if cushion is None:
                continue
            try:
                part = reduction_at_transfer(plan, school, cushion.year, ctx.ref.terms)
            except MissingTerms as gap:
                rows.missing.extend((ref, "", school, strip_plan(m)) for m in gap.missing)
                continue
            if part is not None:
                rows.cushion.append((ref, cushion.year, school, str(part)))

    # Rows go to keyed tables and every reading orders them, so they are not sorted here.
    summary, run_rate = rows.summary, ctx.run_rate
    for period in periods:
        # What the plan was at each school in the period, and its run-rate at the start:
        # one pass over its states there finds both.
        period_id, period_start = period.id, period.start
        at_school: dict[str, tuple[str, str, int]] = {}
        opening = None
        for start, end, state in plan.clipped(period_start, period.end_exclusive):
            if start == period_start:
                opening = state
            before = at_school.get(state.school)
            days = (end - start).days + (before[2] if before else 0)
            at_school[state.school] = (state.basis, state.band or "", days)
        for school, (basis, band, days) in at_school.items():
            rate = None
            if opening is not None and opening.school == school:
                rate = run_rate(opening, period_start)
            summary.append((ref, period_id, school, basis, band, days, rate))
        for message in missing.get(period_id, ()) if missing else ():
            for school in sorted(at_school) or [""]:
                rows.missing.append((ref, period_id, school, message))

    rows.due = [(ref, period_id, school, component, pence)
                for period_id, owed in due.items() for (school, component), pence in owed.items()]
    if priced:  # otherwise every due was taken from what was paid: nothing to explain
        rows.explain = explanations(ref, plan, [p for p in periods if p.id not in missing], due,
                                    paid, ctx)
    return rows


def explanations(ref: str, plan: Plan, periods: list[Period], due: Dues, paid: PaidSoFar,
                 ctx: Context) -> list[ExplainRow]:
    """(plan, period, school, position, event id) for each event that explains a difference
    between the plan's due and paid at a school in a period: what the next payment run's
    line would name (docs/rules.md §9, ``domain.payments.caused_by``)."""
    terms = ctx.ref.terms
    positions = {r.id: r.position for r in plan.facts}
    paid_in: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for (period_id, school, component), pence in paid.amounts.items():
        paid_in[period_id][(school, component)] = pence
    rows: list[ExplainRow] = []
    for period in periods:
        owed = due.get(period.id, {})
        settled = paid_in.get(period.id, {})
        if owed == settled:
            continue
        differing = sorted({key[0] for key in {*owed, *settled}
                            if owed.get(key, 0) != settled.get(key, 0)})
        for school in differing:
            here = [s for s in placements(plan, period) if s.school == school]
            ids = caused_by(plan, here, paid.last_paid_at.get(period.id), terms, positions)
            for event in dict.fromkeys(ids):
                rows.append((ref, period.id, school, positions.get(event, ctx.sources.get(event, 0)),
                             event))
    return rows
