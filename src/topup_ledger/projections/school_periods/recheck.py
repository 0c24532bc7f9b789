"""Plans paid for a period since it was worked out: is due still different from paid there,
and which events explain it (the rest of the plan's rows stand)."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable

from topup_ledger.domain.plan import Plan, RecordedFact
from topup_ledger.projections import base
from topup_ledger.projections.school_periods import recompute
from topup_ledger.projections.school_periods.context import Context
from topup_ledger.projections.school_periods.paid import paid_so_far
from topup_ledger.projections.school_periods.schema import table

FactsOf = Callable[[list[str]], dict[str, list[RecordedFact]]]


def recheck_chunk(conn: sqlite3.Connection, ctx: Context, facts_of: FactsOf) -> bool:
    """Explain again the plan-periods marked stale (paid since they were explained), for one
    chunk of plans; False if none is marked. Their due is unchanged, so only where due and
    paid now differ (usually nowhere, after a run) is anything worked out."""
    plans = [row[0] for row in conn.execute(
        f"SELECT DISTINCT plan FROM {table('stale')} ORDER BY plan LIMIT ?", (base.CHUNK,))]
    if not plans:
        return False
    marks = ",".join("?" * len(plans))
    conn.execute(f"DELETE FROM {table('explain')} WHERE (plan, period) IN "
                 f"(SELECT plan, period FROM {table('stale')} WHERE plan IN ({marks}))", plans)
    differing = differing_periods(conn, plans)
    if differing:
        facts = facts_of(sorted(differing))
        paid = paid_so_far(conn, sorted(differing))
        due: dict[str, recompute.Dues] = defaultdict(lambda: defaultdict(dict))
        order = ",".join("?" * len(differing))
        for plan, period, school, component, pence in conn.execute(
                f"SELECT plan, period, school, component, pence FROM {table('due')} "
                f"WHERE plan IN ({order})", sorted(differing)):
            due[plan][period][(school, component)] = pence
        rows: list[recompute.ExplainRow] = []
        for plan, periods in sorted(differing.items()):
            found = sorted(p for p in (ctx.period(i) for i in periods) if p is not None)
            rows += recompute.explanations(plan, Plan(facts[plan]), found, due[plan], paid[plan], ctx)
        conn.executemany(f"INSERT INTO {table('explain')} VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute(f"DELETE FROM {table('stale')} WHERE plan IN ({marks})", plans)
    return True


def differing_periods(conn: sqlite3.Connection, plans: list[str]) -> dict[str, set[str]]:
    """The stale periods of ``plans`` where due and paid differ for some school and component
    (periods with something that cannot be priced aside: they are not explained)."""
    marks = ",".join("?" * len(plans))
    differing: dict[str, set[str]] = defaultdict(set)
    for plan, period in conn.execute(
            "SELECT plan, period FROM ("
            "SELECT plan, period, school, component FROM ("
            "SELECT x.plan, x.period, x.school, x.component, x.pence AS due, 0 AS paid "
            f"FROM {table('due')} AS x JOIN {table('stale')} AS s USING (plan, period) "
            f"WHERE s.plan IN ({marks}) UNION ALL "
            "SELECT x.plan, x.period, x.school, x.component, 0, x.pence "
            f"FROM {table('paid')} AS x JOIN {table('stale')} AS s USING (plan, period) "
            f"WHERE s.plan IN ({marks})) "
            "GROUP BY plan, period, school, component HAVING SUM(due) != SUM(paid)) AS d "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table('missing')} AS m "
            "WHERE m.plan = d.plan AND m.period = d.period) GROUP BY plan, period",
            plans + plans):
        differing[plan].add(period)
    return differing
