"""The payment run's shortcut (engine/pricing.py): plans in one state at one school on every
day of the run's periods, paid alike, are owed the same lines but for whose they are, so the
run works out those lines once and shares them. These tests check the shortcut is taken, and
where it must not be; that the shared lines are right is checked against the oracle by
tests/test_money_differential.py and by hand here."""

from __future__ import annotations

from datetime import date

import pytest

from topup_ledger.engine import cores, pricing
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger

OAK = "100001"
AUTUMN = "2025-26/autumn"


def worked_out_for(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The plans whose lines the run works out itself (not shared), in one process."""
    monkeypatch.setattr(cores, "PLANS_PER_CORE", 10**9)
    calls: list[str] = []
    real = pricing.plan_lines

    def counted(plan, *rest, **named):  # type: ignore[no-untyped-def]
        calls.append(plan.ref)
        return real(plan, *rest, **named)

    monkeypatch.setattr(pricing, "plan_lines", counted)
    return calls


def test_plans_alike_share_the_lines_worked_out_for_the_first(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """P1, P2, P3 on B (£3,100) at Oak from 1 Sep 2025: autumn 310,000 × 4/12 = 103,333.33 →
    103,333p each, worked out once. P4 on B from 1 Oct is in no state on September's days,
    so its own: 310,000 × 4 × 92 ÷ (12 × 122) = 114,080,000 ÷ 1,464 = 77,923.497… → 77,923p."""
    ledger.add_school(OAK, "Oak Primary", "mainstream")
    ledger.set_tariff("2025-26", {"B": 310_000})
    for plan in ("P1", "P2", "P3"):
        ledger.issue_plan(plan, f"PR-{plan}", OAK, date(2025, 9, 1), band="B")
    ledger.issue_plan("P4", "PR-P4", OAK, date(2025, 10, 1), band="B")
    calls = worked_out_for(monkeypatch)
    result = pay(ledger, AUTUMN)
    assert sorted((line.plan, line.amount) for paid in result.school_paid for line in paid.lines) == [
        ("P1", 103_333), ("P2", 103_333), ("P3", 103_333), ("P4", 77_923)]
    assert sorted(calls) == ["P1", "P4"]
