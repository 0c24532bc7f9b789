"""Each cushioned school's due under its cushion, from the plans' parts (docs/rules.md §11)."""

from __future__ import annotations

import sqlite3
from fractions import Fraction

from topup_ledger.domain.cushion import cushion_annual, cushion_exact
from topup_ledger.domain.entitlement import round_cumulatively
from topup_ledger.domain.payments import CUSHION
from topup_ledger.projections.school_periods.context import Context
from topup_ledger.projections.school_periods.schema import table


def school_cushions(conn: sqlite3.Connection, ctx: Context) -> None:
    """Replace the schools' cushion rows (plan '' in ``sp_due``): share × the school's net
    reduction at transfer (its plans' parts, kept by the year of their transfer; never below
    zero), on the cushion's days, rounded cumulatively within the year, exactly as the
    payment run's cushion lines; and what explains a difference from what was paid."""
    conn.execute(f"DELETE FROM {table('due')} WHERE plan = ''")
    conn.execute(f"DELETE FROM {table('explain')} WHERE plan = ''")
    for school, cushion in sorted(ctx.ref.cushions.items()):
        parts = [Fraction(part) for (part,) in conn.execute(
            f"SELECT part FROM {table('cushion')} WHERE school = ? AND year = ?",
            (school, cushion.year))]
        annual = cushion_annual(cushion, parts)
        paid = dict(conn.execute(
            f"SELECT period, pence FROM {table('paid')} WHERE plan = '' AND school = ? "
            "AND component = ?", (school, CUSHION)).fetchall())
        reached = [p for p in ctx.periods_from(cushion.start) if p.start <= cushion.until]
        periods = sorted({*reached, *(p for p in map(ctx.period, paid) if p is not None)})
        exact = [(p, {CUSHION: cushion_exact(cushion, annual, p)}) for p in periods]
        due = round_cumulatively(exact)
        because = conn.execute(
            f"SELECT position FROM {table('ref')} WHERE stream || '/' || version = ?",
            (cushion.because,)).fetchone()
        for period in periods:
            owed = due.get(period.id, {}).get(CUSHION, 0)
            if owed:
                conn.execute(f"INSERT INTO {table('due')} VALUES ('', ?, ?, ?, ?)",
                             (period.id, school, CUSHION, owed))
            if owed != paid.get(period.id, 0):
                conn.execute(f"INSERT INTO {table('explain')} VALUES ('', ?, ?, ?, ?)",
                             (period.id, school, because[0] if because else 0, cushion.because))
