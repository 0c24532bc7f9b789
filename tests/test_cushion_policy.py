"""The transitional cushion belongs to the school that lost money at the move to bands
(docs/rules.md §11), worked by hand through the ledger and its runs.

Both schools mainstream; £12.00 an hour × 38 weeks less £6,000; band A £1,600, B £3,100.
25 hours: 25 × 1200 × 38 − 600000 = 540000p a year. A plan moved from 25 hours to band B
reduces its school's funding by 540000 − 310000 = 230000p a year: a 50% cushion is
115000p a year, paid 115000/3 = 38333.33 → 38333p for autumn and, so far 67083.33 → 67083,
28750p for spring.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger

OAK, ASH = "100001", "100002"
AUTUMN, SPRING = "2025-26/autumn", "2025-26/spring"


def cushions_paid(ledger: Ledger, *periods: str) -> dict[tuple[str, str], int]:
    paid: dict[tuple[str, str], int] = {}
    for period in periods:
        for payment in pay(ledger, period).school_paid:
            for line in payment.lines:
                if line.component == "cushion":
                    key = (payment.school, line.for_period)
                    paid[key] = paid.get(key, 0) + line.amount
    return paid


def test_the_cushion_stays_with_the_school_that_lost_the_money(ledger: Ledger) -> None:
    """P1 moves from Oak to Ash, then is reviewed down to A; P2 was transferred at Ash.
    Oak keeps its cushion for P1's loss after P1 leaves; Ash's is for P2's loss alone (P1
    brings none with it); the review changes neither."""
    for urn, name in ((OAK, "Oak Primary"), (ASH, "Ash Primary")):
        ledger.add_school(urn, name, "mainstream")
    for year in ("2025-26", "2026-27"):
        ledger.set_rate(year, 1200, Decimal(38), 600_000)
        ledger.set_tariff(year, {"A": 160_000, "B": 310_000})
    for plan, school in (("P1", OAK), ("P2", ASH)):
        ledger.issue_plan(plan, f"PR-{plan}", school, date(2025, 9, 1), hours=Decimal(25))
        ledger.transfer(plan, "B", date(2025, 9, 1))
    for school in (OAK, ASH):
        ledger.set_cushion(school, date(2025, 9, 1), date(2026, 8, 31), Decimal(50), "first year")
    ledger.move("P1", ASH, date(2026, 1, 1))
    ledger.change_band("P1", "A", date(2026, 1, 1), "annual-review")
    assert cushions_paid(ledger, AUTUMN, SPRING) == {
        (OAK, AUTUMN): 38_333, (OAK, SPRING): 28_750,
        (ASH, AUTUMN): 38_333, (ASH, SPRING): 28_750,
    }


def test_gains_net_losses_and_a_later_tariff_revision_changes_nothing(ledger: Ledger) -> None:
    """At Oak: P1 25 hours → B (loses 230000p); P3 10 hours (456000 − 600000 < 0: 0p) → A
    (gains 160000p). Net reduction 70000p; 50%: 35000p a year, autumn 35000/3 = 11666.67
    → 11667p. B revised to £3,300 after the transfers: the cushion is as at the transfer."""
    ledger.add_school(OAK, "Oak Primary", "mainstream")
    ledger.set_rate("2025-26", 1200, Decimal(38), 600_000)
    ledger.set_tariff("2025-26", {"A": 160_000, "B": 310_000})
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal(25))
    ledger.issue_plan("P3", "PR-3", OAK, date(2025, 9, 1), hours=Decimal(10))
    ledger.transfer("P1", "B", date(2025, 9, 1))
    ledger.transfer("P3", "A", date(2025, 9, 1))
    ledger.set_cushion(OAK, date(2025, 9, 1), date(2026, 3, 31), Decimal(50), "first months")
    ledger.set_tariff("2025-26", {"B": 330_000}, reason="revised")
    assert cushions_paid(ledger, AUTUMN) == {(OAK, AUTUMN): 11_667}
