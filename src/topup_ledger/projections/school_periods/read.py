"""The per school and period figures behind funding and paid-vs-due, read from the sp_ tables."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.reference import Reference


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
    """One school's figures for one period."""

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
