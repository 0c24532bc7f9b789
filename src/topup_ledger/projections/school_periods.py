"""The fold behind per-school funding and paid-vs-due: every plan's due by period and school
(as known now), what was paid, and the events that explain any difference.

Stored state (all in the projection file, prefix ``sp_``):

- folded: the plans seen (``sp_plan``; their facts are read from the ledger), reference
  facts (``sp_ref``), paid per plan, period, school and component (``sp_paid``) and per
  school and period (``sp_spaid``, which also holds school-level lines such as a cushion),
  and the runs (``sp_run``);
- derived per dirty plan: due (``sp_due``), what the plan was at each school in each period
  with its annual run-rate at the period's start (``sp_summary``), the events explaining a
  difference between due and paid (``sp_explain``) and what could not be priced
  (``sp_missing``).

Working out a plan's due means pricing every period again (exact fractions, cumulative
rounding), which is most of the cost of a rebuild. A payment run leaves every plan paid
exactly its due for every period up to the run's own; so where nothing bearing on a plan
was recorded since the last run (none of its facts, no reference data but revisions of
financial years its period does not overlap), its due for those periods is what was paid,
and only the other years are priced (``settled_dues``; ``payrun.compute_run`` relies on the
same fact). ``SchoolPeriods(trust_runs=False)`` prices everything: the tests check that both
give the same files byte for byte.

The *horizon* is the day the ledger stands at: the recorded date of the last event folded,
or the start of the latest period already paid if that is later. Periods up to the one
containing the horizon are due "as known now"; later periods are not due yet. The horizon is
a function of the events alone, so a rebuild and an incremental update agree byte for byte,
and a projection as of a past time is exactly what it was then.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from fractions import Fraction
from functools import cached_property
from typing import Any

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import Period, academic_year_of, parse_year, with_default_terms
from topup_ledger.domain.cushion import net_reduction
from topup_ledger.domain.entitlement import Stretch, placements, round_cumulatively, stretches
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.money import round_half_up
from topup_ledger.domain.payments import CUSHION, PaidSoFar, caused_by
from topup_ledger.domain.plan import Plan, PlanState, RecordedFact
from topup_ledger.domain.reference import Reference
from topup_ledger.domain.settlement import Revisions, settled_plan
from topup_ledger.engine.pricing import PricingCache
from topup_ledger.projections import base
from topup_ledger.projections.base import Decoder, PlanFold, recorded_date
from topup_ledger.storage.pages import StoredRow

NOT_PRICED_AFTER = "follows a period of the same year that cannot be priced"


@dataclass
class Context:
    """What recomputing a plan needs: reference data as folded and the horizon."""

    ref: Reference
    horizon: date | None
    # The last payment run's period, if nothing of the reference data was recorded after
    # it, and its position: a plan with no fact after that position was paid exactly its
    # due for every period up to that one (``payrun.compute_run`` relies on the same).
    settled: Period | None = None
    settled_at: int = 0
    # The tariffs and hourly rates revised after that run, and the days they reprice.
    revisions: Revisions = field(default_factory=Revisions)
    # While extending plans' rows: the horizon's period they reached before it moved on.
    after: Period | None = None
    cache: dict[str, tuple[Period, ...]] = field(default_factory=dict)
    rates: dict[tuple[Any, ...], int | None] = field(default_factory=dict)
    by_id: dict[str, Period | None] = field(default_factory=dict)
    pricing: PricingCache = field(init=False)

    def __post_init__(self) -> None:
        self.pricing = PricingCache(self.ref.terms)

    def periods_from(self, start: date) -> tuple[Period, ...]:
        """Calendar periods from ``start``'s academic year up to the horizon's period."""
        if self.horizon is None:
            return ()
        year = academic_year_of(start)
        if year not in self.cache:
            first = date(parse_year(year), 9, 1)
            calendar = with_default_terms(self.ref.calendars, first, max(first, self.horizon))
            self.cache[year] = tuple(p for p in calendar.periods
                                     if p.end >= first and p.start <= self.horizon)
        return self.cache[year]

    @cached_property
    def sources(self) -> dict[str, int]:
        """The position of each rate and tariff fact, by id."""
        return {i: pos for pos, i in itertools.chain.from_iterable(self.ref.terms.sources.values())}

    def run_rate(self, state: PlanState, day: date) -> int | None:
        """The annual amount (basis and protection) on ``day``, in whole pence; None if the
        ledger cannot price it. Remembered by what it depends on: the school only through
        its setting, so thousands of plans share a few dozen answers."""
        added = self.ref.terms.schools.get(state.school)
        key = (added.setting if added else None, state.basis, state.band, state.hours, day,
               state.prior_annual, state.protect_until)
        found = self.rates.get(key, self)
        if found is self:
            try:
                annual = self.pricing.annual_amount(state, day)
                found = round_half_up(annual.base + annual.protection)
            except MissingTerms:
                found = None
            self.rates[key] = found
        return found  # type: ignore[return-value]

    def added(self) -> list[str]:
        """While extending: the periods after ``after`` up to the horizon's."""
        if self.after is None:
            return []
        start = self.after.start
        return [p.id for p in self.periods_from(start) if p.start > start]

    def settled_for(self, facts: list[RecordedFact]) -> Period | None:
        """The last period the plan is known to be paid exactly as due, if any."""
        if self.settled is None or not facts or facts[-1].position > self.settled_at:
            return None
        return self.settled

    def period(self, period_id: str) -> Period | None:
        if period_id not in self.by_id:
            try:
                start = parse_year(period_id.split("/", 1)[0], "period")
                calendar = with_default_terms(self.ref.calendars, date(start, 9, 1),
                                              date(start + 1, 8, 31))
                self.by_id[period_id] = calendar.period(period_id)
            except RuleError:
                self.by_id[period_id] = None
        return self.by_id[period_id]


@dataclass
class PlanRows:
    due: list[tuple[Any, ...]] = field(default_factory=list)
    summary: list[tuple[Any, ...]] = field(default_factory=list)
    explain: list[tuple[Any, ...]] = field(default_factory=list)
    missing: list[tuple[Any, ...]] = field(default_factory=list)
    cushion: list[tuple[Any, ...]] = field(default_factory=list)
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
                ) -> tuple[dict[str, dict[tuple[str, str], int]], dict[str, list[str]]]:
    """The plan's due per period as far as the terms allow, and what is missing where.

    The same as ``domain.entitlement.dues`` (exact amounts per period, then cumulative
    rounding within each year) with the exact amounts remembered; where a period cannot be
    priced, the periods after it in the same year cannot be either (rounding is cumulative),
    and are reported as missing instead of failing the whole plan.
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
    return round_cumulatively(exact), missing


def settled_dues(periods: list[Period], settled: Period | None, paid: PaidSoFar
                 ) -> tuple[list[Period], dict[str, dict[tuple[str, str], int]]]:
    """The periods that must be priced, and the due of the others taken from what was paid.

    A year whose periods all lie up to ``settled`` (``domain.settlement``) was paid exactly
    its due, so its due is the sum of its payment lines. A year with a later period is
    priced whole, as the payment run does: cumulative rounding carries from its earlier
    periods."""
    if settled is None:
        return periods, {}
    years = [(p, p.year) for p in periods]
    open_years = {year for p, year in years if p.start > settled.start}
    closed = {p.id for p, year in years if year not in open_years}
    due: dict[str, dict[tuple[str, str], int]] = {}
    for (period_id, school, component), pence in paid.amounts.items():
        if pence and period_id in closed:
            due.setdefault(period_id, {})[(school, component)] = pence
    return [p for p, year in years if year in open_years], due


def plan_rows(ref: str, facts: list[RecordedFact], paid: PaidSoFar, ctx: Context,
              settled: Period | None = None, after: Period | None = None) -> PlanRows:
    """The plan's derived rows; with ``after``, only those of the periods after it (the
    horizon has moved on from ``after`` and the plan's earlier rows stand: a period's due,
    summary, explanation and what is missing never depend on later periods)."""
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
    cushioned = bool(ctx.ref.cushions) and any(
        s.state.prior_annual is not None for s in plan.segments)
    found_in: dict[str, list[Stretch]] = {}

    def stretches_in(period: Period) -> list[Stretch]:
        if period.id not in found_in:
            found_in[period.id] = stretches(plan, period, ctx.pricing)
        return found_in[period.id]

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
        if cushioned and period_id not in missing:
            for school in sorted(at_school):
                cushion = ctx.ref.cushions.get(school)
                if cushion is not None:
                    part = net_reduction(cushion, stretches_in(period))
                    if part:
                        rows.cushion.append((ref, period_id, school, str(part)))

    rows.due = [(ref, period_id, school, component, pence)
                for period_id, owed in due.items() for (school, component), pence in owed.items()]
    if priced:  # otherwise every due was taken from what was paid: nothing to explain
        rows.explain = explanations(ref, plan, [p for p in periods if p.id not in missing], due,
                                    paid, ctx)
    return rows


def explanations(ref: str, plan: Plan, periods: list[Period],
                 due: dict[str, dict[tuple[str, str], int]], paid: PaidSoFar, ctx: Context
                 ) -> list[tuple[Any, ...]]:
    """(plan, period, school, position, event id) for each event that explains a difference
    between the plan's due and paid at a school in a period: what the next payment run's
    line would name (``domain.payments.caused_by``)."""
    terms = ctx.ref.terms
    positions = {r.id: r.position for r in plan.facts}
    paid_in: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for (period_id, school, component), pence in paid.amounts.items():
        paid_in[period_id][(school, component)] = pence
    rows = []
    for period in periods:
        owed = due.get(period.id, {})
        settled = paid_in.get(period.id, {})
        if owed == settled:
            continue
        differing = sorted({key[0] for key in {*owed, *settled}
                            if owed.get(key, 0) != settled.get(key, 0)})
        for school in differing:
            here = [s for s in placements(plan, period) if s.school == school]
            ids = caused_by(plan, period, here, paid.last_paid_at.get(period.id),
                            terms.sources, positions)
            for event in dict.fromkeys(ids):
                rows.append((ref, period.id, school, positions.get(event, ctx.sources.get(event, 0)),
                             event))
    return rows


class SchoolPeriods(PlanFold):
    name = "school-periods"
    prefix = "sp"
    # 3: runs are settled from the position they were worked out from; 4: plans' facts are
    # read from the ledger, not copied; 5: payment lines are appended to sp_line and summed
    # into sp_paid before each refresh; 6: when the horizon moves on, plans' rows are
    # extended to the periods it reached (sp_extend); 7: plans are stale per period paid
    SCHEMA = 7

    def __init__(self, trust_runs: bool = True) -> None:
        # False: price every period of every plan again (the plain path the tests compare
        # the settled shortcut with).
        self.trust_runs = trust_runs
        self._nothing_gathered()

    def _nothing_gathered(self) -> None:
        """What folding a page gathers for ``flush`` to write, empty again."""
        self._lines: list[tuple[str, str, str, str, int, int]] = []
        self._school_paid: dict[tuple[str, str], list[Any]] = {}
        self._runs: list[tuple[Any, ...]] = []
        self._cushion_paid = False  # a school-level line (a cushion's) among the lines

    def tables(self) -> list[str]:
        t = self.t
        return [*self.base_tables(),
                f"CREATE TABLE {t('paid')} (plan TEXT NOT NULL, period TEXT NOT NULL, school TEXT NOT NULL, "
                "component TEXT NOT NULL, pence INTEGER NOT NULL, last_position INTEGER NOT NULL, "
                "PRIMARY KEY (plan, period, school, component)) WITHOUT ROWID",
                f"CREATE TABLE {t('line')} (plan TEXT NOT NULL, period TEXT NOT NULL, school TEXT NOT NULL, "
                "component TEXT NOT NULL, pence INTEGER NOT NULL, position INTEGER NOT NULL)",
                f"CREATE TABLE {t('spaid')} (school TEXT NOT NULL, period TEXT NOT NULL, "
                "pence INTEGER NOT NULL, last_position INTEGER NOT NULL, last_run TEXT NOT NULL, "
                "PRIMARY KEY (school, period)) WITHOUT ROWID",
                f"CREATE TABLE {t('run')} (run_id TEXT PRIMARY KEY, period TEXT NOT NULL, "
                "sequence INTEGER NOT NULL, known_at INTEGER NOT NULL, total INTEGER NOT NULL)",
                f"CREATE TABLE {t('due')} (plan TEXT NOT NULL, period TEXT NOT NULL, school TEXT NOT NULL, "
                "component TEXT NOT NULL, pence INTEGER NOT NULL, "
                "PRIMARY KEY (plan, period, school, component)) WITHOUT ROWID",
                f"CREATE TABLE {t('summary')} (plan TEXT NOT NULL, period TEXT NOT NULL, "
                "school TEXT NOT NULL, basis TEXT NOT NULL, band TEXT NOT NULL, days INTEGER NOT NULL, "
                "run_rate INTEGER, PRIMARY KEY (plan, period, school)) WITHOUT ROWID",
                f"CREATE TABLE {t('explain')} (plan TEXT NOT NULL, period TEXT NOT NULL, "
                "school TEXT NOT NULL, position INTEGER NOT NULL, id TEXT NOT NULL, "
                "PRIMARY KEY (plan, period, school, id)) WITHOUT ROWID",
                f"CREATE TABLE {t('missing')} (plan TEXT NOT NULL, period TEXT NOT NULL, "
                "school TEXT NOT NULL, message TEXT NOT NULL)",
                f"CREATE INDEX {t('missing_plan')} ON {t('missing')} (plan)",
                f"CREATE TABLE {t('cushion')} (plan TEXT NOT NULL, period TEXT NOT NULL, "
                "school TEXT NOT NULL, part TEXT NOT NULL, PRIMARY KEY (plan, period, school)) WITHOUT ROWID",
                f"CREATE TABLE {t('stale')} (plan TEXT NOT NULL, period TEXT NOT NULL, "
                "PRIMARY KEY (plan, period)) WITHOUT ROWID",
                f"CREATE TABLE {t('extend')} (plan TEXT PRIMARY KEY) WITHOUT ROWID",
                f"CREATE TABLE {t('period')} (id TEXT PRIMARY KEY, start TEXT NOT NULL, "
                "end TEXT NOT NULL) WITHOUT ROWID"]

    # Folding payments into running totals.

    def fold_other(self, n: StoredRow, decoder: Decoder) -> None:
        if n.topic == ev.SchoolPaid.TYPE:
            data = decoder.data(n.topic, n.state)
            school, run_id, position = data["school"], data["run_id"], n.id
            append = self._lines.append
            by_period: dict[str, int] = {}
            for line in data["lines"]:
                plan, amount, period = line["plan"], line["amount"], line["for_period"]
                # School-level lines (a cushion) are kept under the plan ''.
                if not plan:
                    self._cushion_paid = True
                append((plan, period, school, line.get("component", "base"), amount, position))
                by_period[period] = by_period.get(period, 0) + amount
            for period, amount in by_period.items():
                total = self._school_paid.setdefault((school, period), [0, 0, ""])
                total[0] += amount
                total[1], total[2] = position, run_id
        elif n.topic == ev.PaymentRunRecorded.TYPE:
            data = decoder.data(n.topic, n.state)
            # Settled counts from what the run knew (its seal's position), not from where its
            # record landed: a concurrent writer's fact can land in between, unpaid.
            known_at = ev.sealed_position(data["seal"])
            self._runs.append((data["run_id"], data["period"], data["sequence"], known_at, data["total"]))

    def flush(self, conn: sqlite3.Connection) -> None:
        t = self.t
        if self._lines:
            # Appended as they come, summed into sp_paid in key order before the next
            # refresh (``settle``): adding each line into its plan's row as it is
            # folded wrote all over the table, and was most of a rebuild's fold.
            conn.executemany(f"INSERT INTO {t('line')} VALUES (?, ?, ?, ?, ?, ?)", self._lines)
            if not self.everything:
                # A payment changes what is paid, not what is due: only the explanation of
                # the plan's differences in the periods it paid needs working out again.
                conn.executemany(f"INSERT OR IGNORE INTO {t('stale')} VALUES (?, ?)",
                                 {line[:2] for line in self._lines if line[0]})
            if self._cushion_paid:
                self.set_meta(conn, "cushion_stale", "1")
        if self._school_paid:
            conn.executemany(
                f"INSERT INTO {t('spaid')} VALUES (?, ?, ?, ?, ?) ON CONFLICT (school, period) "
                "DO UPDATE SET pence = pence + excluded.pence, "
                "last_position = excluded.last_position, last_run = excluded.last_run",
                (k + tuple(v) for k, v in self._school_paid.items()))
        if self._runs:
            conn.executemany(f"INSERT INTO {t('run')} VALUES (?, ?, ?, ?, ?)", self._runs)
        self._nothing_gathered()

    def fold(self, conn: sqlite3.Connection, page: Any, decoder: Decoder) -> None:
        self._nothing_gathered()  # nothing left over from a page that failed
        super().fold(conn, page, decoder)

    # Recomputing.

    def settle(self, conn: sqlite3.Connection) -> None:
        """Sum the payment lines folded since the last refresh into paid per plan, period,
        school and component (``last_position``: the latest line's)."""
        t = self.t
        # 'WHERE true': SQLite's documented way to keep ON CONFLICT from reading as a join.
        conn.execute(
            f"INSERT INTO {t('paid')} SELECT plan, period, school, component, SUM(pence), "
            f"MAX(position) FROM {t('line')} WHERE true GROUP BY plan, period, school, component "
            "ORDER BY plan, period, school, component "
            "ON CONFLICT (plan, period, school, component) DO UPDATE SET "
            "pence = pence + excluded.pence, last_position = excluded.last_position")
        conn.execute(f"DELETE FROM {t('line')}")

    def horizon(self, conn: sqlite3.Connection, ctx: Context) -> date | None:
        last_at = self.meta(conn, "last_at")
        if not last_at:
            return None
        horizon = recorded_date(last_at)
        for (period_id,) in conn.execute(f"SELECT DISTINCT period FROM {self.t('spaid')}"):
            period = ctx.period(period_id)
            if period is not None and period.start > horizon:
                horizon = period.start
        return horizon

    def context(self, conn: sqlite3.Connection, decoder: Decoder) -> Context:
        ctx = Context(self.reference(conn, decoder), None)
        ctx.horizon = self.horizon(conn, ctx)
        last_run = conn.execute(f"SELECT period, known_at FROM {self.t('run')} "
                                "ORDER BY known_at DESC LIMIT 1").fetchone()
        if last_run is None:
            return ctx
        for (topic,) in conn.execute(f"SELECT topic FROM {self.t('ref')} WHERE position > ?",
                                     (last_run[1],)):
            if topic not in (ev.TariffSet.TYPE, ev.HourlyRateSet.TYPE):
                return ctx  # a school, calendar or cushion since: nothing is known settled
        ctx.settled, ctx.settled_at = ctx.period(last_run[0]), last_run[1]
        ctx.revisions = Revisions.since(ctx.ref.terms, last_run[1])
        return ctx

    def signature(self, conn: sqlite3.Connection, decoder: Decoder) -> str:
        ctx = self.context(conn, decoder)
        if ctx.horizon is None:
            return ""
        periods = ctx.periods_from(ctx.horizon)
        return periods[-1].id if periods else ctx.horizon.isoformat()

    def all_dirty(self, conn: sqlite3.Connection) -> None:
        super().all_dirty(conn)
        conn.execute(f"DELETE FROM {self.t('period')}")
        conn.execute(f"DELETE FROM {self.t('extend')}")

    def move_on(self, conn: sqlite3.Connection, previous: str, signature: str,
                decoder: Decoder) -> bool:
        """The horizon moved on to a later period (after a termly run, or as time passes):
        every plan keeps its rows and gains those of the periods reached, instead of every
        period of every plan being worked out again. Not while an extension from another
        period is still under way (a refresh killed part-way): then every plan is dirty."""
        t = self.t
        if not previous or conn.execute(f"SELECT 1 FROM {t('extend')} LIMIT 1").fetchone():
            return False
        ctx = self.context(conn, decoder)
        before, now = ctx.period(previous), ctx.period(signature)
        if before is None or now is None or now.start <= before.start:
            return False
        conn.execute(f"INSERT INTO {t('extend')} SELECT plan FROM {t('plan')}")
        self.set_meta(conn, "extend_after", previous)
        return True

    def extension(self, conn: sqlite3.Connection, context: Any) -> tuple[list[str], Any] | None:
        plans = [row[0] for row in conn.execute(
            f"SELECT plan FROM {self.t('extend')} ORDER BY plan LIMIT ?", (self.batch(),))]
        if not plans:
            return None
        ctx: Context = context
        return plans, replace(ctx, after=ctx.period(self.meta(conn, "extend_after")))

    def worked_out(self, conn: sqlite3.Connection, plans: list[str], context: Any,
                   decoder: Decoder) -> PlanRows:
        ctx: Context = context
        # Extending, only the periods added are looked at: what was paid for earlier ones
        # (most of a plan's payments) bears on none of its rows for them.
        paid = self.paid_so_far(conn, plans, None if ctx.after is None else ctx.added())
        facts = self.plan_facts(conn, plans, decoder)
        found = PlanRows()
        for plan in plans:
            found.add(plan_rows(plan, facts[plan], paid[plan], ctx,
                                ctx.settled_for(facts[plan]) if self.trust_runs else None,
                                ctx.after))
        return found

    def write(self, conn: sqlite3.Connection, plans: list[str], rows: PlanRows,
              context: Any) -> None:
        t = self.t
        marks = ",".join("?" * len(plans))
        # Extended rows are added to the plans' others; worked out afresh, they replace them.
        tables = ("extend",) if context.after is not None else (
            "due", "summary", "explain", "missing", "cushion", "stale", "extend")
        for table in tables:
            conn.execute(f"DELETE FROM {t(table)} WHERE plan IN ({marks})", plans)
        if context.after is not None:
            # The periods added were explained against what is paid now, the run just
            # folded included: nothing there is stale any more.
            added = context.added()
            conn.execute(f"DELETE FROM {t('stale')} WHERE plan IN ({marks}) "
                         f"AND period IN ({','.join('?' * len(added))})", [*plans, *added])
        conn.executemany(f"INSERT INTO {t('due')} VALUES (?, ?, ?, ?, ?)", rows.due)
        conn.executemany(f"INSERT INTO {t('summary')} VALUES (?, ?, ?, ?, ?, ?, ?)", rows.summary)
        conn.executemany(f"INSERT INTO {t('explain')} VALUES (?, ?, ?, ?, ?)", rows.explain)
        conn.executemany(f"INSERT INTO {t('missing')} VALUES (?, ?, ?, ?)", rows.missing)
        conn.executemany(f"INSERT INTO {t('cushion')} VALUES (?, ?, ?, ?)", rows.cushion)
        self.add_periods(conn, rows.periods.values())
        if context.ref.cushions:
            self.set_meta(conn, "cushion_stale", "1")

    def add_periods(self, conn: sqlite3.Connection, periods: Any) -> None:
        conn.executemany(f"INSERT OR IGNORE INTO {self.t('period')} VALUES (?, ?, ?)",
                         ((p.id, p.start.isoformat(), p.end.isoformat()) for p in periods))

    def more(self, conn: sqlite3.Connection, context: Any, decoder: Decoder) -> bool:
        """Plans paid for a period since it was last worked out: its due is unchanged, so
        only whether due and paid there now differ is looked at again (usually not, after
        a run), and the explanation of the plan's other periods stands."""
        t = self.t
        ctx: Context = context
        plans = [row[0] for row in conn.execute(
            f"SELECT DISTINCT plan FROM {t('stale')} ORDER BY plan LIMIT ?", (base.CHUNK,))]
        if not plans:
            return False
        marks = ",".join("?" * len(plans))
        conn.execute(f"DELETE FROM {t('explain')} WHERE (plan, period) IN "
                     f"(SELECT plan, period FROM {t('stale')} WHERE plan IN ({marks}))", plans)
        differing: dict[str, set[str]] = defaultdict(set)
        for plan, period in conn.execute(
                "SELECT plan, period FROM ("
                "SELECT plan, period, school, component FROM ("
                "SELECT x.plan, x.period, x.school, x.component, x.pence AS due, 0 AS paid "
                f"FROM {t('due')} AS x JOIN {t('stale')} AS s USING (plan, period) "
                f"WHERE s.plan IN ({marks}) UNION ALL "
                "SELECT x.plan, x.period, x.school, x.component, 0, x.pence "
                f"FROM {t('paid')} AS x JOIN {t('stale')} AS s USING (plan, period) "
                f"WHERE s.plan IN ({marks})) "
                "GROUP BY plan, period, school, component HAVING SUM(due) != SUM(paid)) AS d "
                f"WHERE NOT EXISTS (SELECT 1 FROM {t('missing')} AS m "
                "WHERE m.plan = d.plan AND m.period = d.period) GROUP BY plan, period",
                plans + plans):
            differing[plan].add(period)
        if differing:
            facts = self.plan_facts(conn, sorted(differing), decoder)
            paid = self.paid_so_far(conn, sorted(differing))
            due: dict[str, dict[str, dict[tuple[str, str], int]]] = defaultdict(
                lambda: defaultdict(dict))
            order = ",".join("?" * len(differing))
            for plan, period, school, component, pence in conn.execute(
                    f"SELECT plan, period, school, component, pence FROM {t('due')} "
                    f"WHERE plan IN ({order})", sorted(differing)):
                due[plan][period][(school, component)] = pence
            rows = []
            for plan, periods in sorted(differing.items()):
                found = sorted(p for p in (ctx.period(i) for i in periods) if p is not None)
                rows += explanations(plan, Plan(facts[plan]), found, due[plan], paid[plan], ctx)
            conn.executemany(f"INSERT INTO {t('explain')} VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute(f"DELETE FROM {t('stale')} WHERE plan IN ({marks})", plans)
        return True

    def paid_so_far(self, conn: sqlite3.Connection, plans: list[str],
                    periods: list[str] | None = None) -> dict[str, PaidSoFar]:
        """What each plan was paid, per period, school and component (only for ``periods``
        if given), with the position of each period's latest payment."""
        paid: dict[str, PaidSoFar] = defaultdict(PaidSoFar)
        marks = ",".join("?" * len(plans))
        within = "" if periods is None else f" AND period IN ({','.join('?' * len(periods))})"
        so_far = PaidSoFar()
        current = None
        # In key order, so each plan's rows come together and the latest payment per period
        # is kept with a comparison instead of a lookup per row.
        for plan, period, school, component, pence, last in conn.execute(
                f"SELECT plan, period, school, component, pence, last_position FROM {self.t('paid')} "
                f"WHERE plan IN ({marks}){within} ORDER BY plan, period, school, component",
                [*plans, *(periods or ())]):
            if plan != current:
                current, so_far = plan, paid[plan]
                amounts, last_paid_at = so_far.amounts, so_far.last_paid_at
            amounts[(period, school, component)] = pence
            if last > last_paid_at.get(period, 0):
                last_paid_at[period] = last
        return paid

    def finish(self, conn: sqlite3.Connection, context: Any) -> None:
        ctx: Context = context
        known = {row[0] for row in conn.execute(f"SELECT id FROM {self.t('period')}")}
        extra = []
        for (period_id,) in conn.execute(f"SELECT DISTINCT period FROM {self.t('spaid')}"):
            if period_id not in known:
                period = ctx.period(period_id)
                if period is not None:
                    extra.append(period)
        self.add_periods(conn, extra)
        if self.meta(conn, "cushion_stale", "0") == "1":
            self.cushions(conn, ctx)
            self.set_meta(conn, "cushion_stale", "0")

    def cushions(self, conn: sqlite3.Connection, ctx: Context) -> None:
        """Each cushioned school's due under its cushion (plan '' in ``sp_due``): share ×
        the school's net reduction (never below zero), rounded cumulatively within the year,
        exactly as the payment run's cushion lines; and what explains a difference."""
        t = self.t
        conn.execute(f"DELETE FROM {t('due')} WHERE plan = ''")
        conn.execute(f"DELETE FROM {t('explain')} WHERE plan = ''")
        for school, cushion in sorted(ctx.ref.cushions.items()):
            parts: dict[str, Fraction] = defaultdict(Fraction)
            for period_id, part in conn.execute(
                    f"SELECT period, part FROM {t('cushion')} WHERE school = ?", (school,)):
                parts[period_id] += Fraction(part)
            paid = dict(conn.execute(
                f"SELECT period, pence FROM {t('paid')} WHERE plan = '' AND school = ? "
                "AND component = ?", (school, CUSHION)).fetchall())
            periods = sorted(p for p in (ctx.period(i) for i in {*parts, *paid}) if p is not None)
            exact = [(p, {CUSHION: Fraction(cushion.share_percent) / 100 * max(Fraction(0), parts[p.id])})
                     for p in periods]
            due = round_cumulatively(exact)
            because = conn.execute(f"SELECT position FROM {t('ref')} WHERE stream || '/' || version = ?",
                                   (cushion.because,)).fetchone()
            for period in periods:
                owed = due.get(period.id, {}).get(CUSHION, 0)
                if owed:
                    conn.execute(f"INSERT INTO {t('due')} VALUES ('', ?, ?, ?, ?)",
                                 (period.id, school, CUSHION, owed))
                if owed != paid.get(period.id, 0):
                    conn.execute(f"INSERT INTO {t('explain')} VALUES ('', ?, ?, ?, ?)",
                                 (period.id, school, because[0] if because else 0, cushion.because))


# Reading: the per school and period aggregates behind funding and paid-vs-due.


def filters(conn: sqlite3.Connection, ref: Reference, period: str | None, school: str | None
            ) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause for the period and school asked for, after checking they exist."""
    if period is not None and conn.execute("SELECT 1 FROM sp_period WHERE id = ?",
                                           (period,)).fetchone() is None:
        known = [row[0] for row in conn.execute("SELECT id FROM sp_period ORDER BY start")]
        span = f" (it has {known[0]} to {known[-1]})" if known else " (it has no periods yet)"
        raise RuleError("period", f"{period!r} is not a period the ledger has reached{span}")
    if school is not None and school not in ref.terms.schools:
        raise RuleError("school", f"school {school} is not in the ledger")
    clauses, params = [], []
    if period is not None:
        clauses.append("period = ?")
        params.append(period)
    if school is not None:
        clauses.append("school = ?")
        params.append(school)
    return (" AND ".join(clauses) or "1"), tuple(params)


def period_dates(conn: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    return {pid: (start, end) for pid, start, end in
            conn.execute("SELECT id, start, end FROM sp_period ORDER BY start")}


def ordered_keys(keys: set[tuple[str, str]], dates: dict[str, tuple[str, str]]
                 ) -> list[tuple[str, str]]:
    """(period, school) in date order of the period, then by school."""
    return sorted(keys, key=lambda k: (dates.get(k[0], ("9999", ""))[0], k[0], k[1]))


@dataclass
class SchoolPeriod:
    period: str
    school: str
    due: int = 0
    paid: int = 0
    last_run: str = ""
    plans: int = 0
    hours: int = 0
    band: int = 0
    bands: dict[str, int] = field(default_factory=dict)
    run_rate: int = 0
    unpriced: int = 0
    missing: list[str] = field(default_factory=list)
    explained_by: list[str] = field(default_factory=list)


def school_periods(conn: sqlite3.Connection, ref: Reference, period: str | None = None,
                   school: str | None = None, *, explain: bool = False
                   ) -> tuple[list[SchoolPeriod], dict[str, tuple[str, str]]]:
    """Every (period, school) with a plan, a due or a payment, in order, with its figures."""
    where, params = filters(conn, ref, period, school)
    found: dict[tuple[str, str], SchoolPeriod] = {}

    def at(p: str, s: str) -> SchoolPeriod:
        if (p, s) not in found:
            found[(p, s)] = SchoolPeriod(p, s)
        return found[(p, s)]

    for p, s, plans, hours, band, run_rate in conn.execute(
            "SELECT period, school, COUNT(*), SUM(basis = 'hours'), SUM(basis = 'band'), "
            f"SUM(run_rate) FROM sp_summary WHERE {where} GROUP BY period, school", params):
        row = at(p, s)
        row.plans, row.hours, row.band, row.run_rate = plans, hours, band, run_rate or 0
    for p, s, band, count in conn.execute(
            f"SELECT period, school, band, COUNT(*) FROM sp_summary WHERE basis = 'band' AND {where} "
            "GROUP BY period, school, band ORDER BY band", params):
        at(p, s).bands[band] = count
    for p, s, pence in conn.execute(
            f"SELECT period, school, SUM(pence) FROM sp_due WHERE {where} GROUP BY period, school",
            params):
        at(p, s).due = pence
    for p, s, pence, last_run in conn.execute(
            f"SELECT period, school, pence, last_run FROM sp_spaid WHERE {where}", params):
        row = at(p, s)
        row.paid, row.last_run = pence, last_run
    for p, s, count in conn.execute(
            f"SELECT period, school, COUNT(DISTINCT plan) FROM sp_missing WHERE {where} "
            "GROUP BY period, school", params):
        at(p, s).unpriced = count
    for p, s, message in conn.execute(
            f"SELECT DISTINCT period, school, message FROM sp_missing WHERE {where} "
            "ORDER BY message", params):
        at(p, s).missing.append(message)
    if explain:
        for p, s, event in conn.execute(
                f"SELECT period, school, id FROM sp_explain WHERE {where} "
                "GROUP BY period, school, id ORDER BY MIN(position), id", params):
            at(p, s).explained_by.append(event)
    dates = period_dates(conn)
    return [found[k] for k in ordered_keys(set(found), dates)], dates
