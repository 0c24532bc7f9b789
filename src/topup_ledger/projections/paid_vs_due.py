"""Paid vs due: per school and period, the due as known now, what was paid, what is
outstanding (due − paid: positive is owed to the school, negative was overpaid and will be
clawed back), and the ids of the events that explain the difference.

The explanation is the one the next payment run would give its lines: for a period paid
before, the events recorded since its last payment that bear on it (the plan's own facts,
and rate or tariff revisions of the financial years it spans); for a period never paid, the
events that set each plan's state in it.
"""

from __future__ import annotations

from typing import Any

from topup_ledger.projections.funding import money, school_period_rows
from topup_ledger.projections.recoveries import outstanding, owed_rows
from topup_ledger.projections.school_periods.fold import SchoolPeriods
from topup_ledger.projections.view import View
from topup_ledger.storage.store import FactStore

OUTPUT = "paid-vs-due"
MONEY = ("due", "paid", "outstanding")


def status(due: int, paid: int, missing: list[str] | tuple[str, ...] = ()) -> str:
    """settled, not paid yet, underpaid or overpaid; never settled while the ledger cannot
    price some plans there (their due is unknown): then what is missing."""
    if missing:
        return "cannot price: " + "; ".join(missing)
    if due == paid:
        return "settled"
    if paid == 0:
        return "not paid yet"
    return "underpaid" if due > paid else "overpaid"


def rows(view: View, period: str | None = None, school: str | None = None) -> list[dict[str, Any]]:
    return [{
        **head,
        **money("due", r.due), **money("paid", r.paid), **money("outstanding", r.due - r.paid),
        "status": status(r.due, r.paid, r.missing), "last_run": r.last_run,
        "explained_by": " ".join(r.explained_by), "missing": "; ".join(r.missing),
    } for r, _, head in school_period_rows(view, period, school, explain=True)]


def totals(found: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {"rows": len(found),
                              "unsettled": sum(r["status"] != "settled" for r in found)}
    for name in MONEY:
        result.update(money(name, sum(r[f"{name}_pence"] for r in found)))
    return result


def recoveries_outstanding(store: FactStore, view: View, school: str | None = None
                           ) -> list[dict[str, Any]]:
    """What each school still owes as a recovery, as known at the view's ledger position
    (the rows of `topup recoveries --json`); only ``school``'s if given."""
    schools = SchoolPeriods().reference(view.db.conn, view.decoder).terms.schools
    names = {urn: added.name for urn, added in schools.items()}
    owed = [o for o in outstanding(store, upto=view.position) if school in (None, o.school)]
    return owed_rows(owed, names)
