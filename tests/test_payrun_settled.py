"""The fast payment run pays exactly what a full recomputation would (issue 8).

A run skips what is settled: periods paid as due by the last run that nothing recorded
since can change (a rate or tariff changes only its financial year's periods; a plan's new
facts only the days from the first one whose state they change), and it reads only the
payments of the runs it compares with. On random histories — plans, backdated band changes,
moves, cessations, corrections, tariff and rate revisions for one financial year,
interleaved with runs for random terms — before every run the lines worked out that way
equal, line for line, the lines worked out from every payment with nothing settled. The
fast run reads each plan's stream as it comes to it and shares the plans out over forked
processes (forced here at any size); the full one holds every fact in one process. Every
command's acceptance or refusal, and every run's outcome, is counted over the examples and
asserted on: nothing refused passes silently.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from money_support import full_lines, read_back, shared_over
from test_payment_properties import KINDS, PERIODS, check_tally, new_ledger, try_command
from topup_ledger.domain.errors import MissingTerms
from topup_ledger.domain.plan import Plan
from topup_ledger.engine.run import work_out
from topup_ledger.engine.window import window_for
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.known import read_known, read_reference
from topup_ledger.storage.plan_streams import KnownPlans, StoredPlans


def fast_and_full(ledger: Ledger, period: str, monkeypatch: pytest.MonkeyPatch
                  ) -> tuple[object, object]:
    """(the lines as ``pay`` works them out, its plans shared out over three processes;
    the lines with nothing settled, in this process alone), or the refusal each gives."""
    def fast() -> object:
        shared_over(monkeypatch, 3)
        store = ledger.store
        known = read_reference(store, store.max_position())
        plans = StoredPlans(store, known.position)
        try:
            return read_back(*work_out(known, period, plans, store))
        finally:
            plans.close()

    outcomes = []
    for how in (fast, lambda: full_lines(ledger, period, monkeypatch)):
        try:
            outcomes.append(how())
        except MissingTerms as refused:
            outcomes.append(("refused", sorted(refused.missing)))
    return outcomes[0], outcomes[1]


def test_a_run_that_skips_what_is_settled_pays_what_a_full_recomputation_pays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tally: Counter[str] = Counter()

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def histories(data: st.DataObject) -> None:
        ledger = new_ledger(tmp_path)
        store = ledger.store
        try:
            steps = data.draw(st.integers(min_value=8, max_value=30), label="steps")
            for step in range(steps):
                kind = "issue" if step == 0 else data.draw(st.sampled_from(KINDS), label="kind")
                if kind != "pay":
                    try_command(ledger, kind, data, tally)
                    continue
                period = data.draw(st.sampled_from(PERIODS), label="period")
                fast, full = fast_and_full(ledger, period, monkeypatch)
                assert fast == full
                before = store.max_position()
                if isinstance(fast, tuple) and fast[0] == "refused":
                    # both refuse: so must the run itself, with the same gaps, recording nothing
                    with pytest.raises(MissingTerms) as refused:
                        pay(ledger, period)
                    assert sorted(refused.value.missing) == fast[1]
                    assert store.max_position() == before
                    tally["run refused"] += 1
                    event("compared: refusal")
                    continue
                run = pay(ledger, period)
                tally["run recorded" if run.recorded else "run with nothing new"] += 1
                tally["lines compared"] += sum(len(lines) for lines in fast[1].values())  # type: ignore[index]
                event("compared: lines")
        finally:
            store.close()

    histories()
    check_tally(tally, ("issue", "band", "move", "cease", "hours", "correct", "tariff", "rate"))
    # Every year's rates and tariffs are set: a run is refused only if a command opened a gap.
    assert tally["run refused"] == 0, dict(tally)
    assert tally["run recorded"] > tally["run with nothing new"] and tally["lines compared"] > 0, dict(tally)


def test_a_new_financial_years_rates_unsettle_nothing_already_paid(tmp_path: Path) -> None:
    """Next year's tariff, recorded before the summer run, leaves autumn and spring settled:
    the run reads no earlier payment and pays summer only."""
    from datetime import date
    from decimal import Decimal

    from test_payment_properties import TARIFF

    ledger = new_ledger(tmp_path)
    try:
        ledger.issue_plan("P1", "PR-P1", "100001", date(2025, 9, 1), band="B")
        ledger.issue_plan("P2", "PR-P2", "100002", date(2025, 9, 1), hours=Decimal(20))
        pay(ledger, "2025-26/autumn")
        pay(ledger, "2025-26/spring")
        ledger.set_tariff("2026-27", {b: p + 10_000 for b, p in TARIFF.items()}, reason="new year")
        ledger.set_rate("2026-27", 1250, Decimal(38), 600000, reason="new year")
        known = read_known(ledger.store, payments=False)
        window = window_for(known, "2025-26/summer", KnownPlans(known.plan_facts))
        settled = {ref: window.settled_for(ref) for ref in known.plan_facts}
        assert {ref: s.id if s else None for ref, s in settled.items()} == {
            "plan:P1": "2025-26/spring", "plan:P2": "2025-26/spring"}
        assert window.needed_runs(known) == set()
        summer = pay(ledger, "2025-26/summer")
        # B: 310000 × 4/12 and × 3/12 paid (103333, 77500); summer at the 2026-27 tariff,
        # (310000 + 10000) × 5/12 = 133333.33…, rounded with the year so far:
        # 314166.67 → 314167, less 180833 = 133334.
        # 20 h × £11.81 × 38 − £6,000 = 297560 a year then 20 h × £12.50 × 38 − £6,000 =
        # 350000: 99186.67 + 74390 → 173577 paid; + 145833.33 → 319410, less 173577 = 145833.
        assert sorted((line.plan, line.kind, line.for_period, line.amount)
                      for paid in summer.school_paid for line in paid.lines) == [
            ("P1", "regular", "2025-26/summer", 133334),
            ("P2", "regular", "2025-26/summer", 145833)]
    finally:
        ledger.store.close()


def test_revised_terms_reopen_only_the_days_they_price(tmp_path: Path) -> None:
    """A tariff revision reprices days on a band, an hourly rate revision days on hours: a
    run after one looks again only at the plans with such days in the revised year."""
    from datetime import date
    from decimal import Decimal

    from test_payment_properties import TARIFF

    ledger = new_ledger(tmp_path)
    try:
        ledger.issue_plan("H", "PR-H", "100001", date(2025, 9, 1), hours=Decimal(25))
        ledger.issue_plan("B", "PR-B", "100001", date(2025, 9, 1), band="B")
        ledger.issue_plan("C", "PR-C", "100002", date(2025, 9, 1), band="C")
        ledger.cease("C", date(2026, 1, 1), "moved out of the area")
        for period in ("2025-26/autumn", "2025-26/spring", "2025-26/summer", "2026-27/autumn"):
            pay(ledger, period)

        def settled_then() -> dict[str, str | None]:
            known = read_known(ledger.store, payments=False)
            window = window_for(known, "2026-27/spring", KnownPlans(known.plan_facts))
            found = {}
            for stream, facts in known.plan_facts.items():
                settled = window.settled_despite_revisions(stream, Plan(facts), window.settled_for(stream))
                found[stream] = settled.id if settled else None
            return found

        assert settled_then() == dict.fromkeys(("plan:H", "plan:B", "plan:C"), "2026-27/autumn")
        # 2026-27's tariff, from 1 April 2026: the summer term of 2025-26 onwards, on a band
        ledger.set_tariff("2026-27", {b: p + 12_000 for b, p in TARIFF.items()}, reason="revised")
        assert settled_then() == {"plan:H": "2026-27/autumn", "plan:B": "2025-26/spring",
                                  "plan:C": "2026-27/autumn"}
        spring = pay(ledger, "2026-27/spring")
        assert sorted((line.plan, line.kind, line.for_period, line.amount)
                      for paid in spring.school_paid for line in paid.lines) == [
            # B: 12,000 a year more; summer 5/12 = 5,000, autumn 4/12 = 4,000, as arrears
            ("B", "arrears", "2025-26/summer", 5000),
            ("B", "arrears", "2026-27/autumn", 4000),
            ("B", "regular", "2026-27/spring", (310000 + 12000) * 3 // 12),
            # H: 25 h x £11.81 x 38 - £6,000 = £5,219.50 a year, 3/12 of it
            ("H", "regular", "2026-27/spring", 130488)]
        # now the hourly rate: H alone looks again, from the summer term of 2025-26
        ledger.set_rate("2026-27", 1250, Decimal(38), 600000, reason="revised")
        assert settled_then() == {"plan:H": "2025-26/spring", "plan:B": "2026-27/spring",
                                  "plan:C": "2026-27/spring"}
    finally:
        ledger.store.close()
