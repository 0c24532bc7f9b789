"""Per-school funding: per school and period, the plans by basis and band, the annual
run-rate at the period's start, the due as known now, what was paid and the difference.

``paid`` is every payment line recorded for the school and period (regular, arrears,
claw-back, protection, cushion), so summed over all rows it equals the sum of every payment
file's totals to the penny. ``due`` is recomputed from the plans as known now with the same
rules the payment run uses, so ``difference`` (due − paid) is what the next run would pay.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from topup_ledger.domain.events import SchoolAdded
from topup_ledger.domain.money import pounds
from topup_ledger.projections.school_periods.fold import SchoolPeriods
from topup_ledger.projections.school_periods.read import SchoolPeriod, filters, school_periods
from topup_ledger.projections.view import View

OUTPUT = "funding"
MONEY = ("run_rate", "due", "paid", "difference")


def money(prefix: str, pence: int) -> dict[str, Any]:
    return {f"{prefix}_pence": pence, f"{prefix}_gbp": pounds(pence)}


def school_period_rows(view: View, period: str | None, school: str | None, *, explain: bool = False
                       ) -> Iterator[tuple[SchoolPeriod, SchoolAdded | None, dict[str, Any]]]:
    """Each school and period, its school as added, and the columns every per-school
    projection opens with (where in the ledger, which period, which school)."""
    ref = SchoolPeriods().reference(view.db.conn, view.decoder)
    found, dates = school_periods(view.db.conn, ref, period, school, explain=explain)
    for r in found:
        added = ref.terms.schools.get(r.school)
        start, end = dates.get(r.period, ("", ""))
        yield r, added, {
            "ledger_position": view.position, "known_at": view.known_at,
            "period": r.period, "period_start": start, "period_end": end,
            "school_urn": r.school, "school_name": added.name if added else "",
        }


def rows(view: View, period: str | None = None, school: str | None = None) -> list[dict[str, Any]]:
    return [{
        **head,
        "setting": added.setting if added else "",
        "plans": r.plans, "plans_hours": r.hours, "plans_band": r.band,
        "bands": " ".join(f"{band}:{count}" for band, count in sorted(r.bands.items())),
        **money("run_rate", r.run_rate), **money("due", r.due), **money("paid", r.paid),
        **money("difference", r.due - r.paid),
        "unpriced_plans": r.unpriced, "missing": "; ".join(r.missing),
    } for r, added, head in school_period_rows(view, period, school)]


def totals(found: list[dict[str, Any]], plans: int | None = None) -> dict[str, Any]:
    """Sums of due, paid and difference; plans and run-rate only within one period (summed
    over periods they would count a plan once per period). ``plans``: the plans of the
    rows counted once each (``distinct_plans``): a plan that moved school in the period is
    in two rows, and summing the rows would count it twice."""
    result: dict[str, Any] = {"rows": len(found)}
    one_period = len({r["period"] for r in found}) == 1
    for name in MONEY:
        if name != "run_rate" or one_period:
            result.update(money(name, sum(r[f"{name}_pence"] for r in found)))
    if one_period:
        result["plans"] = sum(r["plans"] for r in found) if plans is None else plans
    return result


def distinct_plans(view: View, period: str | None = None, school: str | None = None) -> int:
    """How many plans the rows for ``period`` and ``school`` hold, each plan once however
    many schools it was at."""
    conn = view.db.conn
    where, params = filters(conn, SchoolPeriods().reference(conn, view.decoder), period, school)
    return int(conn.execute(f"SELECT COUNT(DISTINCT plan) FROM sp_summary WHERE {where}",
                            params).fetchone()[0])
