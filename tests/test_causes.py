"""A line names as its causes only the facts that change its amount (docs/rules.md §9): its
plan's own, and the rates and tariffs that price its days: its band or hours, its school's
setting, its financial years, from the day a revision applies."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger

OAK, ELM = "100001", "100002"  # mainstream, special
AUTUMN, SPRING = "2025-26/autumn", "2025-26/spring"


def arrears_causes(ledger: Ledger, period: str) -> dict[str, tuple[str, ...]]:
    """Plan → the causes of its arrears or claw-back for autumn, in the run for ``period``."""
    return {line.plan: line.caused_by for payment in pay(ledger, period).school_paid
            for line in payment.lines if line.for_period == AUTUMN}


def test_each_revision_is_named_only_by_the_lines_it_reprices(ledger: Ledger) -> None:
    ledger.add_school(OAK, "Oak Primary", "mainstream")
    ledger.add_school(ELM, "Elm Special", "special")
    ledger.set_rate("2025-26", 1181, Decimal(38), 600_000)
    ledger.set_tariff("2025-26", {"C": 500_000, "F": 1_500_000})
    ledger.set_tariff("2025-26", {"C": 700_000}, setting="special")
    ledger.issue_plan("C-OAK", "PR-1", OAK, date(2025, 9, 1), band="C")
    ledger.issue_plan("F-OAK", "PR-2", OAK, date(2025, 9, 1), band="F")
    ledger.issue_plan("H-OAK", "PR-3", OAK, date(2025, 9, 1), hours=Decimal(20))
    ledger.issue_plan("C-ELM", "PR-4", ELM, date(2025, 9, 1), band="C")
    pay(ledger, AUTUMN)
    band_f = ledger.set_tariff("2025-26", {"F": 1_600_000}, reason="F revised")
    special_c = ledger.set_tariff("2025-26", {"C": 720_000}, setting="special", reason="special C")
    rate = ledger.set_rate("2025-26", 1250, Decimal(38), 600_000, reason="new rate")
    january = ledger.set_tariff("2025-26", {"C": 520_000}, reason="from January",
                                effective=date(2026, 1, 1))
    causes = arrears_causes(ledger, SPRING)
    # Each line's arrears for autumn name the one revision that repriced it: band F at Oak
    # the F revision, the hours the rate, band C at the special school its own C.
    assert causes["F-OAK"] == (band_f,)
    assert causes["H-OAK"] == (rate,)
    assert causes["C-ELM"] == (special_c,)
    # Band C at Oak was not repriced for autumn: the January uplift leaves autumn alone.
    assert "C-OAK" not in causes
    assert january not in {c for found in causes.values() for c in found}
