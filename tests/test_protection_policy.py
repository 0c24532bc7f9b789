"""Protection as the policy means it (docs/rules.md §6, §10), through the ledger's commands
and its payment runs, each figure worked by hand (and by tests/oracle.py's design rules).

- The prior is the plan's hours before the transfer as known now, priced at the hourly
  rate of each protected day's financial year: a correction of those hours, or a new
  year's rate, changes it.
- Protection ends at a band change (a new assessment) or a move, as well as at its date.
- Base and protection are rounded as one amount, so a year adds up to its total.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger

OAK, ELM = "100001", "100002"  # mainstream, special
AUTUMN, SPRING, SUMMER = "2025-26/autumn", "2025-26/spring", "2025-26/summer"

Paid = dict[tuple[str, str, str], int]  # (for period, school, component) → pence


def set_up(ledger: Ledger, rates: dict[str, int], bands: dict[str, int]) -> None:
    ledger.add_school(OAK, "Oak Primary", "mainstream")
    ledger.add_school(ELM, "Elm Special", "special")
    for year, pence in rates.items():
        ledger.set_rate(year, pence, Decimal(38), 600_000)
        ledger.set_tariff(year, bands)


def paid_over(ledger: Ledger, *periods: str) -> Paid:
    """Every line of the runs for ``periods``, summed by period, school and component."""
    paid: Paid = {}
    for period in periods:
        for payment in pay(ledger, period).school_paid:
            for line in payment.lines:
                key = (line.for_period, payment.school, line.component)
                paid[key] = paid.get(key, 0) + line.amount
    return {key: pence for key, pence in paid.items() if pence}


def test_base_and_protection_rounded_as_one_pay_the_years_total_to_the_penny(ledger: Ledger) -> None:
    """32.5 h at Oak at £11.81 × 38 weeks: 32.5 × 1181 × 38 − 600000 = 858535p a year.
    Band D (£7,000) from 1 Nov 2025, protected to 31 Aug 2026: the prior pays all year.

    autumn  base 858535/6 + 700000/6 = 259755.83 → 259756; total 858535/3 = 286178.33
            → 286178; protection 286178 − 259756 = 26422
    spring  base so far 434755.83 → 434756 (175000); total so far 500812.08 → 500812;
            protection so far 66056, due 39634
    summer  base so far 726422.5 → 726423 (291667); total 858535; protection so far
            132112, due 66056
    Rounded on its own, protection would have been 26423 + 39633 + 66057: 858536p a year.
    """
    set_up(ledger, {"2025-26": 1181, "2026-27": 1181}, {"D": 700_000})
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal("32.5"))
    ledger.transfer("P1", "D", date(2025, 11, 1), protect_until=date(2026, 8, 31))
    paid = paid_over(ledger, AUTUMN, SPRING, SUMMER)
    assert paid == {
        (AUTUMN, OAK, "base"): 259_756, (AUTUMN, OAK, "protection"): 26_422,
        (SPRING, OAK, "base"): 175_000, (SPRING, OAK, "protection"): 39_634,
        (SUMMER, OAK, "base"): 291_667, (SUMMER, OAK, "protection"): 66_056,
    }
    assert sum(paid.values()) == 858_535


def test_a_correction_of_the_hours_before_the_transfer_reprices_the_protection(ledger: Ledger) -> None:
    """25 h at £12.00 → band B (£3,100) from 1 Sep 2025, protected to 31 Aug 2026: prior
    25 × 1200 × 38 − 600000 = 540000p, protection (540000 − 310000)/3 = 76666.67 → 76667 in
    autumn. Paid, then corrected to 30 h all along: the prior is 30 × 1200 × 38 − 600000 =
    768000p; autumn's total 768000/3 = 256000 less base 103333 = 152667p of protection, so
    the spring run pays 152667 − 76667 = 76000p of protection arrears for autumn."""
    set_up(ledger, {"2025-26": 1200, "2026-27": 1200}, {"B": 310_000})
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal(25))
    ledger.transfer("P1", "B", date(2025, 9, 1), protect_until=date(2026, 8, 31))
    assert paid_over(ledger, AUTUMN)[AUTUMN, OAK, "protection"] == 76_667
    ledger.correct("P1", "P1/1", "30 hours all along", hours=Decimal(30))
    spring = pay(ledger, SPRING).school_paid
    arrears = [(line.kind, line.amount) for p in spring for line in p.lines
               if line.for_period == AUTUMN and line.component == "protection"]
    assert arrears == [("arrears", 76_000)]


def test_the_prior_is_priced_at_each_protected_days_own_years_rate(ledger: Ledger) -> None:
    """As above at 25 h, with £12.50 an hour in 2026-27: summer (April-August 2026) is in
    2026-27, where the prior is 25 × 1250 × 38 − 600000 = 587500p.
    autumn 76667 and spring (540000 − 310000) × 3/12 = 57500 of protection; summer's total
    so far 180000 + 135000 + 587500 × 5/12 (244791.67) = 559791.67 → 559792, less the base
    so far 310000 = 249792, less the 134167 paid: 115625p."""
    set_up(ledger, {"2025-26": 1200, "2026-27": 1250}, {"B": 310_000})
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal(25))
    ledger.transfer("P1", "B", date(2025, 9, 1), protect_until=date(2026, 8, 31))
    paid = paid_over(ledger, AUTUMN, SPRING, SUMMER)
    assert [paid[p, OAK, "protection"] for p in (AUTUMN, SPRING, SUMMER)] == [76_667, 57_500, 115_625]


def test_a_review_ends_protection(ledger: Ledger) -> None:
    """25 h at £12.00 (540000p) → B from 1 Sep 2025, protected to 31 Aug 2026; reviewed
    to band C (£5,000) from 1 Jan 2026, still below the prior: the review ends protection
    all the same, so spring pays band C alone, 500000 × 3/12 = 125000p."""
    set_up(ledger, {"2025-26": 1200, "2026-27": 1200}, {"B": 310_000, "C": 500_000})
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal(25))
    ledger.transfer("P1", "B", date(2025, 9, 1), protect_until=date(2026, 8, 31))
    ledger.change_band("P1", "C", date(2026, 1, 1), "annual-review")
    paid = paid_over(ledger, AUTUMN, SPRING)
    assert paid == {(AUTUMN, OAK, "base"): 103_333, (AUTUMN, OAK, "protection"): 76_667,
                    (SPRING, OAK, "base"): 125_000}


def test_a_move_ends_protection(ledger: Ledger) -> None:
    """As above, moved to Elm (special: band B is £3,100 there too) from 1 Jan 2026 instead
    of the review: Elm is paid band B alone, 310000 × 3/12 = 77500p, no protection."""
    set_up(ledger, {"2025-26": 1200, "2026-27": 1200}, {"B": 310_000})
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal(25))
    ledger.transfer("P1", "B", date(2025, 9, 1), protect_until=date(2026, 8, 31))
    ledger.move("P1", ELM, date(2026, 1, 1))
    paid = paid_over(ledger, AUTUMN, SPRING)
    assert paid == {(AUTUMN, OAK, "base"): 103_333, (AUTUMN, OAK, "protection"): 76_667,
                    (SPRING, ELM, "base"): 77_500}
