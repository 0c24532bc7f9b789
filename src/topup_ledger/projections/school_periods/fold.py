"""``SchoolPeriods``: folds events into the sp_ tables and keeps every plan's rows up to date
as the ledger and its horizon move on."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import Period
from topup_ledger.domain.settlement import Revisions
from topup_ledger.projections.base import Decoder, PlanFold, recorded_date
from topup_ledger.projections.school_periods import recompute, schema
from topup_ledger.projections.school_periods.context import Context
from topup_ledger.projections.school_periods.cushions import school_cushions
from topup_ledger.projections.school_periods.paid import Payments, paid_so_far, sum_lines
from topup_ledger.projections.school_periods.recheck import recheck_chunk
from topup_ledger.projections.school_periods.recompute import PlanRows
from topup_ledger.storage.pages import StoredRow


class SchoolPeriods(PlanFold[Context, PlanRows]):
    name = "school-periods"
    prefix = schema.PREFIX
    SCHEMA = schema.SCHEMA

    def __init__(self, settle_from_runs: bool = True) -> None:
        # False: price every period of every plan again, ignoring what the last run settled
        # (the plain path the tests compare the settled one with).
        self.settle_from_runs = settle_from_runs
        self.payments = Payments()

    def tables(self) -> list[str]:
        return [*self.base_tables(), *schema.tables()]

    # Folding payments into running totals.

    def fold(self, conn: sqlite3.Connection, page: Sequence[StoredRow], decoder: Decoder) -> None:
        self.payments = Payments()  # nothing left over from a page that failed
        super().fold(conn, page, decoder)

    def fold_other(self, n: StoredRow, decoder: Decoder) -> None:
        self.payments.gather(n, decoder)

    def flush(self, conn: sqlite3.Connection) -> None:
        if self.payments.cushion_paid:
            self.set_meta(conn, "cushion_stale", "1")
        self.payments.write(conn, mark_stale=not self.everything)
        self.payments = Payments()

    def update_totals(self, conn: sqlite3.Connection) -> None:
        sum_lines(conn)

    # The context plans are worked out in.

    def horizon(self, conn: sqlite3.Connection, ctx: Context) -> date | None:
        """The day the ledger stands at: the last event's recorded date, or the start of the
        latest period paid if later."""
        last_at = self.meta(conn, "last_at")
        if not last_at:
            return None
        horizon = recorded_date(last_at)
        for (period_id,) in conn.execute(f"SELECT DISTINCT period FROM {self.table('spaid')}"):
            period = ctx.period(period_id)
            if period is not None and period.start > horizon:
                horizon = period.start
        return horizon

    def context(self, conn: sqlite3.Connection, decoder: Decoder) -> Context:
        ctx = Context(self.reference(conn, decoder), None)
        ctx.horizon = self.horizon(conn, ctx)
        last_run = conn.execute(f"SELECT period, known_at FROM {self.table('run')} "
                                "ORDER BY known_at DESC LIMIT 1").fetchone()
        if last_run is None:
            return ctx
        for (topic,) in conn.execute(f"SELECT topic FROM {self.table('ref')} WHERE position > ?",
                                     (last_run[1],)):
            if topic not in (ev.TariffSet.TYPE, ev.HourlyRateSet.TYPE):
                return ctx  # a school, calendar or cushion since: nothing is known settled
        ctx.settled, ctx.settled_at = ctx.period(last_run[0]), last_run[1]
        ctx.revisions = Revisions.since(ctx.ref.terms, last_run[1])
        return ctx

    def signature(self, conn: sqlite3.Connection, decoder: Decoder) -> str:
        """The horizon's period: every plan has rows up to it."""
        ctx = self.context(conn, decoder)
        if ctx.horizon is None:
            return ""
        periods = ctx.periods_from(ctx.horizon)
        return periods[-1].id if periods else ctx.horizon.isoformat()

    # Which plans are worked out again.

    def all_dirty(self, conn: sqlite3.Connection) -> None:
        super().all_dirty(conn)
        conn.execute(f"DELETE FROM {self.table('period')}")
        conn.execute(f"DELETE FROM {self.table('extend')}")

    def extend_to_new_horizon(self, conn: sqlite3.Connection, previous: str, signature: str,
                              decoder: Decoder) -> bool:
        """The horizon moved on to a later period (after a termly run, or as time passes):
        every plan keeps its rows and gains those of the periods reached, instead of every
        period of every plan being worked out again. Not while an extension from another
        period is still under way (a refresh killed part-way): then every plan is dirty."""
        if not previous or conn.execute(f"SELECT 1 FROM {self.table('extend')} LIMIT 1").fetchone():
            return False
        ctx = self.context(conn, decoder)
        before, now = ctx.period(previous), ctx.period(signature)
        if before is None or now is None or now.start <= before.start:
            return False
        conn.execute(f"INSERT INTO {self.table('extend')} SELECT plan FROM {self.table('plan')}")
        self.set_meta(conn, "extend_after", previous)
        return True

    def extension(self, conn: sqlite3.Connection, context: Context
                  ) -> tuple[list[str], Context] | None:
        plans = [row[0] for row in conn.execute(
            f"SELECT plan FROM {self.table('extend')} ORDER BY plan LIMIT ?", (self.batch(),))]
        if not plans:
            return None
        return plans, replace(context, after=context.period(self.meta(conn, "extend_after")))

    # Working plans out and writing their rows.

    def worked_out(self, conn: sqlite3.Connection, plans: list[str], context: Context,
                   decoder: Decoder) -> PlanRows:
        # Extending, only the periods added are looked at: what was paid for earlier ones
        # (most of a plan's payments) bears on none of its rows for them.
        paid = paid_so_far(conn, plans, None if context.after is None else context.added())
        facts = self.plan_facts(conn, plans, decoder)
        found = PlanRows()
        for plan in plans:
            found.add(recompute.plan_rows(
                plan, facts[plan], paid[plan], context,
                context.settled_for(facts[plan]) if self.settle_from_runs else None, context.after))
        return found

    def write(self, conn: sqlite3.Connection, plans: list[str], rows: PlanRows,
              context: Context) -> None:
        table = self.table
        marks = ",".join("?" * len(plans))
        # Extended rows are added to the plans' others; worked out afresh, they replace them.
        tables = ("extend",) if context.after is not None else (
            "due", "summary", "explain", "missing", "cushion", "stale", "extend")
        for name in tables:
            conn.execute(f"DELETE FROM {table(name)} WHERE plan IN ({marks})", plans)
        if context.after is not None:
            # The periods added were explained against what is paid now, the run just
            # folded included: nothing there is stale any more.
            added = context.added()
            conn.execute(f"DELETE FROM {table('stale')} WHERE plan IN ({marks}) "
                         f"AND period IN ({','.join('?' * len(added))})", [*plans, *added])
        conn.executemany(f"INSERT INTO {table('due')} VALUES (?, ?, ?, ?, ?)", rows.due)
        conn.executemany(f"INSERT INTO {table('summary')} VALUES (?, ?, ?, ?, ?, ?, ?)", rows.summary)
        conn.executemany(f"INSERT INTO {table('explain')} VALUES (?, ?, ?, ?, ?)", rows.explain)
        conn.executemany(f"INSERT INTO {table('missing')} VALUES (?, ?, ?, ?)", rows.missing)
        conn.executemany(f"INSERT INTO {table('cushion')} VALUES (?, ?, ?, ?)", rows.cushion)
        self.add_periods(conn, rows.periods.values())
        if context.ref.cushions:
            self.set_meta(conn, "cushion_stale", "1")

    def add_periods(self, conn: sqlite3.Connection, periods: Iterable[Period]) -> None:
        conn.executemany(f"INSERT OR IGNORE INTO {self.table('period')} VALUES (?, ?, ?)",
                         ((p.id, p.start.isoformat(), p.end.isoformat()) for p in periods))

    def recheck_paid(self, conn: sqlite3.Connection, context: Context, decoder: Decoder) -> bool:
        return recheck_chunk(conn, context, lambda plans: self.plan_facts(conn, plans, decoder))

    def finish(self, conn: sqlite3.Connection, context: Context) -> None:
        """The periods only paid (no plan's rows reach them), and the schools' cushions."""
        known = {row[0] for row in conn.execute(f"SELECT id FROM {self.table('period')}")}
        extra = []
        for (period_id,) in conn.execute(f"SELECT DISTINCT period FROM {self.table('spaid')}"):
            if period_id not in known:
                period = context.period(period_id)
                if period is not None:
                    extra.append(period)
        self.add_periods(conn, extra)
        if self.meta(conn, "cushion_stale", "0") == "1":
            school_cushions(conn, context)
            self.set_meta(conn, "cushion_stale", "0")
