"""`topup demo`: a small LA from scratch, end to end, in a fresh folder.

It records schools, rates and tariffs, plans on hours and on bands, a transfer to bands
with protection, a backdated band change, a move and a cessation, then runs the three
termly payments of 2025-26 and writes their files, so a new user sees every moving part.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

from .domain.money import pounds_for_people
from .ledger import Ledger
from .payrun import RunResult, pay, write_files_for_run
from .store import EventStore

SCHOOLS = [("100001", "Oakfield Primary", "mainstream"), ("100002", "Riverside Academy", "mainstream"),
           ("100003", "Beacon Special School", "special"), ("100004", "Hillside Resource Base", "resourced")]
TARIFFS = {"2025-26": {"A": 160000, "B": 310000, "C": 500000, "D": 700000, "E": 1000000},
           "2026-27": {"A": 165000, "B": 320000, "C": 515000, "D": 720000, "E": 1030000}}


def build(ledger: Ledger, say: Callable[[str], None]) -> list[RunResult]:
    for urn, name, setting in SCHOOLS:
        ledger.add_school(urn, name, setting)
    for year, bands in TARIFFS.items():
        ledger.set_tariff(year, bands, reason="approved by the Schools Forum")
        ledger.set_rate(year, 1181 if year == "2025-26" else 1215, Decimal(38), 600000)
    say("recorded 4 schools, tariffs and hourly rates for 2025-26 and 2026-27")
    ledger.issue_plan("EHCP-0001", "PR-7F3A", "100001", date(2025, 9, 1), hours=Decimal("27.5"))
    ledger.issue_plan("EHCP-0002", "PR-2B9C", "100001", date(2025, 9, 1), hours=Decimal("32.5"))
    ledger.issue_plan("EHCP-0003", "PR-91DE", "100002", date(2025, 9, 1), band="C")
    ledger.issue_plan("EHCP-0004", "PR-4C21", "100003", date(2025, 9, 1), band="E")
    ledger.issue_plan("EHCP-0005", "PR-08AB", "100004", date(2025, 10, 6), band="B")
    ledger.issue_plan("FFI-0006", "PR-5E5E", "100002", date(2025, 9, 1), hours=Decimal("25"),
                      kind="non-statutory")
    say("issued 6 plans (4 EHCPs on bands or hours, 1 mid-term, 1 non-statutory)")
    runs = [pay(ledger, "2025-26/autumn")]
    ledger.transfer("EHCP-0001", "B", date(2025, 11, 3), protect_until=date(2026, 3, 31))
    ledger.transfer("EHCP-0002", "D", date(2026, 1, 5))
    ledger.set_cushion("100001", date(2026, 4, 1), date(2027, 3, 31), Decimal(50),
                       "first year of banded funding")
    ledger.change_band("EHCP-0003", "D", date(2025, 11, 1), "annual-review")  # recorded late
    ledger.move("EHCP-0005", "100002", date(2026, 2, 2))
    say("autumn paid; then: two transfers to bands (one protected to 31 March), a cushion for "
        "Oakfield from April, a backdated band change, a move")
    runs.append(pay(ledger, "2025-26/spring"))
    ledger.cease("FFI-0006", date(2026, 3, 1), "needs met without top-up")  # backdated
    plan = ledger.plan("EHCP-0003")
    ledger.correct("EHCP-0003", plan.facts[1].id, "the review set band D from 1 October",
                   effective=date(2025, 10, 1))
    say("spring paid; then: a backdated cessation and a correction of a review date")
    runs.append(pay(ledger, "2025-26/summer"))
    return runs


def run_demo(folder: Path, say: Callable[[str], None]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    location = folder / "ledger.sqlite"
    if location.exists():
        location.unlink()
    store = EventStore(str(location), create=True)
    try:
        ledger = Ledger(store)
        runs = build(ledger, say)
        for result in runs:
            files = write_files_for_run(store, result.run_id, folder / "payments")
            say(f"{result.run_id}: {len(result.school_paid)} schools, "
                f"{pounds_for_people(result.total)} (seal {result.seal[:12]}…) → {files[0].name}")
        total = sum(r.total for r in runs)
        say(f"total paid over 2025-26: {pounds_for_people(total)}; ledger holds "
            f"{store.max_position()} events")
    finally:
        store.close()
    return folder
