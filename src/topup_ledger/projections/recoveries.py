"""What schools owe back: recoveries carried forward by payment runs instead of negative
payments, read from the runs' ``payment.run_finance`` records (domain/recoveries.py).

`topup recoveries [--as-of TIME]` lists them; at a financial year's end what is still owed
is the list to invoice. A pure reading of stored facts, so it sits with the projections:
paid-vs-due and the finance report (statements) show it too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from topup_ledger.domain import events as ev
from topup_ledger.domain.money import pounds
from topup_ledger.domain.recoveries import owed_after
from topup_ledger.storage.store import FactStore


@dataclass(frozen=True)
class Owed:
    school: str
    pence: int
    since_run: str  # the run from which the school has owed without a break
    since: date  # that run's date
    carried: int  # carried forward since then, in all
    recovered: int  # recovered since then, in all


def run_finances(store: FactStore, upto: int | None = None, as_of: datetime | None = None
                 ) -> list[ev.RunFinance]:
    """Every run's finance record in ledger order (as known at ``upto`` or ``as_of``), but
    those of runs withdrawn since: a withdrawn run paid nothing, so carried nothing forward
    and recovered nothing (issue 23)."""
    found, withdrawn = [], set()
    for _, recorded in store.recorded(upto=upto, types=(ev.RunFinance.TYPE, ev.RunWithdrawn.TYPE)):
        if as_of is not None and recorded.recorded_at > as_of:
            break
        if isinstance(recorded.fact, ev.RunFinance):
            found.append(recorded.fact)
        elif isinstance(recorded.fact, ev.RunWithdrawn):
            withdrawn.add(recorded.fact.run_id)
    return [finance for finance in found if finance.run_id not in withdrawn]


def owed_by_school(store: FactStore, upto: int | None = None) -> dict[str, int]:
    owed: dict[str, int] = {}
    for finance in run_finances(store, upto):
        owed = owed_after(owed, finance.recoveries)
    return owed


def outstanding(store: FactStore, as_of: datetime | None = None, upto: int | None = None
                ) -> list[Owed]:
    """Each school that still owes, in school order, with the run since which it has (as
    known at ``as_of`` or at ledger position ``upto``)."""
    owed: dict[str, int] = {}
    since: dict[str, tuple[str, date, int, int]] = {}
    for finance in run_finances(store, upto, as_of):
        after = owed_after(owed, finance.recoveries)
        for recovery in finance.recoveries:
            school = recovery.school
            if school not in after:
                since.pop(school, None)
                continue
            run, day, carried, recovered = since.get(
                school, (finance.run_id, finance.run_date, 0, 0))
            since[school] = (run, day, carried + recovery.carried, recovered + recovery.recovered)
        owed = after
    return [Owed(school, pence, *since[school]) for school, pence in sorted(owed.items())]


def owed_rows(owed: list[Owed], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """The rows `topup recoveries --json` prints, and paid-vs-due and the finance report show."""
    return [{"school_urn": o.school, "school_name": names.get(o.school, ""),
             "owed_pence": o.pence, "owed_gbp": pounds(o.pence), "since_run": o.since_run,
             "since": o.since.isoformat(), "carried_pence": o.carried,
             "recovered_pence": o.recovered} for o in owed]
