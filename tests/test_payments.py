"""Payment runs (DESIGN §3 "Payment run", "Transfer", "Corrections"; issue 3).

Every amount is worked out by hand in the comments, to the penny, from the rules:
annual × period share × days in stretch ÷ days in period, rounded half up cumulatively within
the academic year per plan, school and component. Each test runs on SQLite and PostgreSQL.

Terms used throughout (financial years 2025-26 and 2026-27 alike unless a test says not):
band B £3,100, C £5,000, D £7,000; hourly rate £12.00 × 38 weeks, threshold £6,000.
Default terms: autumn 1 Sep–31 Dec (122 days, 4/12), spring 1 Jan–31 Mar 2026 (90 days,
3/12), summer 1 Apr–31 Aug 2026 (153 days, 5/12, all of it in financial year 2026-27).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import school_day_periods, termly_periods
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.engine import cores, run_lines
from topup_ledger.engine import run as payrun
from topup_ledger.services.payment_run import RunResult, pay
from topup_ledger.services.recording import Clock, Ledger
from topup_ledger.storage.known import Known, read_known, read_reference
from topup_ledger.storage.plan_streams import StoredPlans
from topup_ledger.storage.store import ConflictError, EventStore, StoreError

OAK, ELM, BEACON = "100001", "100002", "100003"  # mainstream, mainstream, special
AUTUMN, SPRING, SUMMER = "2025-26/autumn", "2025-26/spring", "2025-26/summer"
BANDS = {"B": 310000, "C": 500000, "D": 700000}

# One line as the tests compare it: (school, kind, for period, pence, component, caused by)
Line = tuple[str, str, str, int, str, tuple[str, ...]]
Invoke = Callable[..., Result]


def set_up(ledger: Ledger, *, rates: tuple[str, ...] = ("2025-26", "2026-27"),
           tariffs: dict[str, dict[str, int]] | None = None) -> None:
    ledger.add_school(OAK, "Oakfield Primary", "mainstream")
    ledger.add_school(ELM, "Elm Academy", "mainstream")
    ledger.add_school(BEACON, "Beacon Special School", "special")
    for year, bands in (tariffs or {"2025-26": BANDS, "2026-27": BANDS}).items():
        ledger.set_tariff(year, bands, reason="approved by the Schools Forum")
    for year in rates:
        ledger.set_rate(year, 1200, Decimal(38), 600000)


def lines(result: RunResult) -> list[Line]:
    return [(paid.school, line.kind, line.for_period, line.amount, line.component, line.caused_by)
            for paid in result.school_paid for line in paid.lines]


def events(ledger: Ledger) -> int:
    return ledger.store.max_position()


def paid_for(ledger: Ledger, plan: str) -> dict[tuple[str, str, str], int]:
    """(period, school, component) → pence, read back from the recorded SchoolPaid events."""
    return {k: v for k, v in read_known(ledger.store).paid[plan].amounts.items() if v}


# 1. Regular lines.


def test_band_b_is_paid_a_third_in_autumn_and_exactly_its_annual_amount_over_the_year(
        ledger: Ledger) -> None:
    set_up(ledger)
    issued = ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")

    autumn = pay(ledger, AUTUMN)
    # 310000 × 4/12 = 103333.33… → 103333 (£1,033.33)
    assert lines(autumn) == [(OAK, "regular", AUTUMN, 103333, "base", (issued,))]
    line = autumn.school_paid[0].lines[0]
    assert (line.plan, line.pupil, line.basis, line.band_or_hours, line.days) == (
        "P1", "PR-1", "band", "B", 122)
    assert autumn.total == 103333 and autumn.run_id == "2025-26-autumn-r1"
    assert autumn.recorded and not autumn.supplementary

    # spring: 310000 × 7/12 = 180833.33… → 180833 cumulative, less 103333 = 77500
    assert lines(pay(ledger, SPRING)) == [(OAK, "regular", SPRING, 77500, "base", (issued,))]
    # summer: 310000 × 12/12 = 310000 cumulative, less 180833 = 129167 (not 129166.67 → 129167
    # by chance: cumulative rounding makes the year add up whatever the fractions)
    assert lines(pay(ledger, SUMMER)) == [(OAK, "regular", SUMMER, 129167, "base", (issued,))]
    assert sum(paid_for(ledger, "P1").values()) == 310000  # £3,100.00 exactly


def test_summer_is_priced_on_the_financial_year_of_its_days(ledger: Ledger) -> None:
    set_up(ledger, tariffs={"2025-26": BANDS, "2026-27": {"B": 320000}})
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    pay(ledger, SPRING)  # autumn 103333 and spring 77500, as above
    # summer (1 Apr–31 Aug 2026) is all financial year 2026-27: 320000 × 5/12 = 133333.33…;
    # cumulative 103333.33… + 77500 + 133333.33… = 314166.67 → 314167, less 180833 = 133334
    assert [line[:4] for line in lines(pay(ledger, SUMMER))] == [(OAK, "regular", SUMMER, 133334)]


def test_a_plan_issued_mid_term_is_paid_pro_rata_by_calendar_days(ledger: Ledger) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 10, 15), band="B")
    # 15 Oct–31 Dec = 17 + 30 + 31 = 78 of 122 days: 310000 × 4/12 × 78/122
    # = 310000 × 78 / 366 = 66065.57… → 66066
    result = pay(ledger, AUTUMN)
    assert [line[:4] for line in lines(result)] == [(OAK, "regular", AUTUMN, 66066)]
    assert result.school_paid[0].lines[0].days == 78


def test_hours_basis_less_the_threshold_at_mainstream_but_not_at_a_special_school(
        ledger: Ledger) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal("25"))
    ledger.issue_plan("P2", "PR-2", BEACON, date(2025, 9, 1), hours=Decimal("25"))
    # 25 h × £12.00 × 38 weeks = £11,400 a year; mainstream meets the first £6,000 → £5,400
    # autumn: 540000 × 4/12 = 180000 at Oak; 1140000 × 4/12 = 380000 at Beacon
    result = pay(ledger, AUTUMN)
    assert sorted(line[:4] for line in lines(result)) == [
        (OAK, "regular", AUTUMN, 180000), (BEACON, "regular", AUTUMN, 380000)]
    assert result.school_paid[0].lines[0].band_or_hours == "25h"


# 2. Arrears and claw-back.


def test_backdated_band_change_is_paid_as_arrears_to_the_school_of_that_term(
        ledger: Ledger) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    moved = ledger.move("P1", ELM, date(2026, 1, 1))  # known in time: Elm from spring
    assert lines(pay(ledger, AUTUMN))[0][:4] == (OAK, "regular", AUTUMN, 103333)

    # Recorded after the autumn run: the review on 1 Nov moved the child from B to D.
    review = ledger.change_band("P1", "D", date(2025, 11, 1), "annual-review")
    spring = pay(ledger, SPRING)
    # autumn as known now: 1 Sep–31 Oct (61 days) on B, 1 Nov–31 Dec (61 days) on D:
    # (310000 × 61 + 700000 × 61) / 122 × 4/12 = 505000 / 3 = 168333.33… → 168333,
    # less 103333 paid = 65000 arrears, to Oak (where the child was in autumn).
    # spring at Elm on D: 700000 × 3/12 = 175000.
    assert lines(spring) == [
        (OAK, "arrears", AUTUMN, 65000, "base", (review,)),
        (ELM, "regular", SPRING, 175000, "base", (moved,)),
    ]
    arrears = spring.school_paid[0].lines[0]
    assert (arrears.band_or_hours, arrears.basis, arrears.days) == ("B→D", "band", 122)
    assert paid_for(ledger, "P1") == {(AUTUMN, OAK, "base"): 168333, (SPRING, ELM, "base"): 175000}


def test_backdated_cessation_is_clawed_back(ledger: Ledger) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    pay(ledger, AUTUMN)  # 103333
    pay(ledger, SPRING)  # 77500
    ceased = ledger.cease("P1", date(2026, 2, 1), "left the LA")  # recorded late
    summer = pay(ledger, SUMMER)
    # spring as known now: 1–31 Jan, 31 of 90 days: 310000 × 3/12 × 31/90 = 26694.44…;
    # cumulative 103333.33… + 26694.44… = 130027.78 → 130028, less 103333 = 26695 due,
    # less 77500 paid = −50805 clawed back; nothing is due for summer.
    assert lines(summer) == [(OAK, "clawback", SPRING, -50805, "base", (ceased,))]
    assert summer.total == -50805
    assert sum(paid_for(ledger, "P1").values()) == 103333 + 26695


def test_backdated_move_is_clawed_back_from_one_school_and_paid_to_the_other(
        ledger: Ledger) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    pay(ledger, AUTUMN)  # 103333 to Oak
    moved = ledger.move("P1", ELM, date(2025, 11, 1))  # recorded after the run
    spring = pay(ledger, SPRING)
    # autumn: 61 days at each school, rounded per school: 310000 × 61/366 = 51666.67 → 51667
    # Oak: 51667 − 103333 = −51666; Elm: 51667 − 0 = 51667.
    # spring at Elm: 51666.67 + 77500 = 129166.67 → 129167, less 51667 = 77500.
    assert lines(spring) == [
        (OAK, "clawback", AUTUMN, -51666, "base", (moved,)),
        (ELM, "arrears", AUTUMN, 51667, "base", (moved,)),
        (ELM, "regular", SPRING, 77500, "base", (moved,)),
    ]
    assert spring.school_paid[1].lines[0].days == 61


def test_move_mid_term_then_backdated_by_a_correction(ledger: Ledger) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    moved = ledger.move("P1", ELM, date(2025, 12, 1))
    autumn = pay(ledger, AUTUMN)
    # Oak 1 Sep–30 Nov, 91 days: 310000 × 91/366 = 77076.50… → 77077
    # Elm 1–31 Dec, 31 days:     310000 × 31/366 = 26256.83… → 26257
    assert [line[:4] for line in lines(autumn)] == [
        (OAK, "regular", AUTUMN, 77077), (ELM, "regular", AUTUMN, 26257)]

    fixed = ledger.correct("P1", moved, "the move was on 1 November", effective=date(2025, 11, 1))
    spring = pay(ledger, SPRING)
    # now 61 days each: 51667 each (as above). Oak 51667 − 77077 = −25410; Elm 51667 − 26257
    # = 25410; spring at Elm: 129167 − 51667 = 77500 (first payment for spring: the move
    # and the correction that changed it explain it).
    assert lines(spring) == [
        (OAK, "clawback", AUTUMN, -25410, "base", (fixed,)),
        (ELM, "arrears", AUTUMN, 25410, "base", (fixed,)),
        (ELM, "regular", SPRING, 77500, "base", (moved, fixed)),
    ]


def test_correction_of_the_band_the_plan_was_issued_on(ledger: Ledger) -> None:
    set_up(ledger)
    issued = ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    pay(ledger, AUTUMN)  # 103333
    fixed = ledger.correct("P1", issued, "it was C, not B, from the start", band="C")
    spring = pay(ledger, SPRING)
    # autumn on C: 500000 × 4/12 = 166666.67 → 166667, less 103333 = 63334 arrears;
    # spring: 500000 × 7/12 = 291666.67 → 291667, less 166667 = 125000.
    assert lines(spring) == [
        (OAK, "arrears", AUTUMN, 63334, "base", (fixed,)),
        (OAK, "regular", SPRING, 125000, "base", (issued, fixed)),
    ]
    assert spring.school_paid[0].lines[0].band_or_hours == "C"


def test_a_correction_that_moves_the_issue_date_into_an_earlier_year_pays_those_days(
        ledger: Ledger) -> None:
    set_up(ledger)
    issued = ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    fixed = ledger.correct("P1", issued, "the plan was issued in June", effective=date(2025, 6, 1))
    # The calendar must reach back to academic year 2024-25: summer 2024-25 is 1 Apr–31 Aug
    # 2025 (153 days, financial year 2025-26); 1 Jun–31 Aug is 92 days:
    # 310000 × 5/12 × 92/153 = 77669.28… → 77669 (arrears: an earlier term than the run's)
    assert lines(pay(ledger, AUTUMN)) == [
        (OAK, "arrears", "2024-25/summer", 77669, "base", (issued, fixed)),
        (OAK, "regular", AUTUMN, 103333, "base", (issued, fixed)),
    ]


def test_tariff_revision_after_a_run_is_paid_as_arrears_naming_the_tariff_event(
        ledger: Ledger) -> None:
    set_up(ledger)
    issued = ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    pay(ledger, AUTUMN)  # 103333
    revision = ledger.set_tariff("2025-26", {"B": 320000}, reason="Schools Forum revision")
    assert revision == "tariff:2025-26/2"
    spring = pay(ledger, SPRING)
    # autumn: 320000 × 4/12 = 106666.67 → 106667, less 103333 = 3334;
    # spring: 320000 × 7/12 = 186666.67 → 186667, less 106667 = 80000.
    assert lines(spring) == [
        (OAK, "arrears", AUTUMN, 3334, "base", ("tariff:2025-26/2",)),
        (OAK, "regular", SPRING, 80000, "base", (issued,)),
    ]


# 3. Protection.


def test_protection_is_its_own_line_while_it_applies_and_none_after(ledger: Ledger) -> None:
    set_up(ledger)
    issued = ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal("25"))
    transfer = ledger.transfer("P1", "B", date(2026, 1, 1), protect_until=date(2026, 2, 14))
    assert ledger.plan("P1").corrected[transfer].prior_annual == 540000  # type: ignore[attr-defined]

    # autumn on hours: (25 × 1200 × 38 − 600000) × 4/12 = 540000/3 = 180000
    assert lines(pay(ledger, AUTUMN)) == [(OAK, "regular", AUTUMN, 180000, "base", (issued,))]
    spring = pay(ledger, SPRING)
    # base on band B: 180000 + 310000 × 3/12 = 257500 cumulative, less 180000 = 77500;
    # protection 1 Jan–14 Feb, 45 of 90 days: (540000 − 310000) × 3/12 × 45/90 = 28750 (£287.50)
    assert lines(spring) == [
        (OAK, "regular", SPRING, 77500, "base", (transfer,)),
        (OAK, "protection", SPRING, 28750, "protection", (transfer,)),
    ]
    assert spring.school_paid[0].lines[1].days == 90  # the days at the school in the term
    # summer: protection has ended; base 257500 + 129166.67 = 386666.67 → 386667 − 257500
    assert lines(pay(ledger, SUMMER)) == [(OAK, "regular", SUMMER, 129167, "base", (transfer,))]


def test_protection_for_a_whole_term(ledger: Ledger) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal("25"))
    ledger.transfer("P1", "B", date(2025, 9, 1), protect_until=date(2025, 12, 31))
    # (540000 − 310000) × 4/12 = 76666.67 → 76667; base 310000 × 4/12 → 103333
    assert sorted(line[1:4] for line in lines(pay(ledger, AUTUMN))) == [
        ("protection", AUTUMN, 76667), ("regular", AUTUMN, 103333)]
    assert [line[1:4] for line in lines(pay(ledger, SPRING))] == [("regular", SPRING, 77500)]


# 4. Idempotency and supplementary runs.


def test_the_same_run_twice_records_nothing_the_second_time(ledger: Ledger) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    first = pay(ledger, AUTUMN)
    before = events(ledger)
    again = pay(ledger, AUTUMN)
    assert not again.recorded and again.run_id == "2025-26-autumn-r1" and again.school_paid == []
    assert events(ledger) == before
    assert paid_for(ledger, "P1") == {(AUTUMN, OAK, "base"): first.total}


def test_a_later_run_for_the_same_term_is_supplementary_and_pays_only_the_difference(
        ledger: Ledger) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    ledger.issue_plan("P2", "PR-2", ELM, date(2025, 9, 1), band="C")
    assert pay(ledger, AUTUMN).total == 103333 + 166667
    review = ledger.change_band("P1", "D", date(2025, 11, 1), "annual-review")
    supplementary = pay(ledger, AUTUMN)
    assert supplementary.recorded and supplementary.supplementary
    assert supplementary.run_id == "2025-26-autumn-r2" and supplementary.sequence == 2
    # only P1 changed: 168333 − 103333 = 65000, a regular line (it is the run's own term)
    assert lines(supplementary) == [(OAK, "regular", AUTUMN, 65000, "base", (review,))]
    before = events(ledger)
    third = pay(ledger, AUTUMN)
    assert not third.recorded and third.run_id == "2025-26-autumn-r2"
    assert events(ledger) == before
    known = read_known(ledger.store)
    assert [(r.run_id, r.sequence, r.total) for r in known.runs_for(AUTUMN)] == [
        ("2025-26-autumn-r1", 1, 270000), ("2025-26-autumn-r2", 2, 65000)]


def test_a_run_for_an_earlier_term_after_a_later_one(ledger: Ledger) -> None:
    set_up(ledger, tariffs={"2025-26": BANDS, "2026-27": BANDS, "2027-28": BANDS})
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    later = pay(ledger, "2026-27/autumn")  # pays all of 2025-26 as arrears, then its own term
    assert [line[1:4] for line in lines(later)] == [
        ("arrears", AUTUMN, 103333), ("arrears", SPRING, 77500), ("arrears", SUMMER, 129167),
        ("regular", "2026-27/autumn", 103333)]
    # A run for 2025-26 now finds it all paid (the calendar it reads stops at August 2026,
    # before the later run's term).
    earlier = pay(ledger, AUTUMN)
    assert earlier.school_paid == []
    review = ledger.change_band("P1", "D", date(2025, 11, 1), "annual-review")
    after = pay(ledger, SPRING)
    # autumn +65000 (as above); spring on D: 168333.33 + 175000 = 343333.33 → 343333 − 168333
    # = 175000 due, less 77500 = 97500. Summer and 2026-27 wait for their own runs.
    assert lines(after) == [(OAK, "arrears", AUTUMN, 65000, "base", (review,)),
                            (OAK, "regular", SPRING, 97500, "base", (review,))]


def test_a_settled_cushion_pays_nothing_twice(ledger: Ledger) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal("25"))
    ledger.transfer("P1", "B", date(2025, 9, 1))
    ledger.set_cushion(OAK, date(2025, 9, 1), date(2026, 8, 31), Decimal(50), "first year")
    first = pay(ledger, AUTUMN)
    # base 103333; cushion 50% × (540000 − 310000) × 4/12 = 38333.33 → 38333
    assert sorted(line[1:4] for line in lines(first)) == [
        ("cushion", AUTUMN, 38333), ("regular", AUTUMN, 103333)]
    before = events(ledger)
    again = pay(ledger, AUTUMN)
    assert not again.recorded and again.school_paid == []
    assert events(ledger) == before


# 5. Refusal: nothing recorded, every missing item listed.

MONTHS = (("apr", 4, 13), ("may", 5, 19), ("jun", 6, 21), ("jul", 7, 16), ("aug", 8, 2),
          ("sep", 9, 20), ("oct", 10, 18), ("nov", 11, 20), ("dec", 12, 15), ("jan", 1, 19),
          ("feb", 2, 15), ("mar", 3, 16))  # school days: 194 in all


def months_of_2025_26() -> list[tuple[str, date, date, int]]:
    rows = []
    for name, month, days in MONTHS:
        year = 2025 if month >= 4 else 2026
        end = date(year + (month == 12), month % 12 + 1, 1)
        rows.append((name, date(year, month, 1), date.fromordinal(end.toordinal() - 1), days))
    return rows


def test_a_run_is_refused_listing_every_missing_item_and_records_nothing(
        ledger: Ledger, cli: Invoke, tmp_path: Path) -> None:
    # No hourly rate for 2025-26, no tariff for D in 2026-27, and a monthly calendar for
    # financial year 2025-26 only: it displaces the default terms of academic year 2025-26,
    # so 1 April–31 August 2026 is in no payment period.
    set_up(ledger, rates=("2026-27",), tariffs={"2025-26": BANDS, "2026-27": {"B": 310000}})
    ledger.set_calendar("2025-26", school_day_periods("2025-26", months_of_2025_26()))
    ledger.issue_plan("P1", "PR-1", OAK, date(2026, 3, 2), band="D")
    ledger.issue_plan("P2", "PR-2", OAK, date(2026, 3, 2), hours=Decimal("20"))
    ledger.cease("P2", date(2026, 4, 1), "needs met")
    ledger.issue_plan("P3", "PR-3", ELM, date(2026, 3, 2), band="B")
    before = events(ledger)
    with pytest.raises(MissingTerms) as refused:
        pay(ledger, "2026-27/autumn")
    expected = [
        "no hourly rate for financial year 2025-26 (plan P2, 2025-26/mar)",
        "no payment period in the calendar covers 2026-04-01 to 2026-08-31 (plan P1)",
        "no payment period in the calendar covers 2026-04-01 to 2026-08-31 (plan P3)",
        "no tariff for band D in financial year 2026-27 (plan P1, 2026-27/autumn)",
    ]
    assert refused.value.missing == expected
    assert events(ledger) == before

    result = cli("pay", "2026-27/autumn", "--out", str(tmp_path / "out"), ok=False)
    assert result.exit_code == 2
    assert "nothing was recorded" in result.output
    for item in expected:
        assert item in result.output
    assert events(ledger) == before
    assert not (tmp_path / "out").exists()


def test_a_run_leaves_no_lines_on_disk_whether_recorded_or_refused(
        ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's lines wait in a temporary file until recorded; they name pupils, so the file
    goes once the run is recorded or refused."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    set_up(ledger, rates=("2026-27",))
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    ledger.issue_plan("P2", "PR-2", OAK, date(2025, 9, 1), hours=Decimal("20"))
    with pytest.raises(MissingTerms):
        pay(ledger, AUTUMN)  # no hourly rate for 2025-26
    assert list(scratch.iterdir()) == []
    ledger.set_rate("2025-26", 1200, Decimal(38), 600000)
    result = pay(ledger, AUTUMN)
    assert list(scratch.iterdir()) == []
    # 310,000 × 4/12 = 103,333.33 → 103,333; (20 × 1,200 × 38 − 600,000) × 4/12 = 104,000
    assert result.schools == [(OAK, 103333 + 104000, 2)]
    assert [(p.school, len(p.lines)) for p in result.school_paid] == [(OAK, 2)]


def test_a_run_whose_lines_were_cleared_from_disk_meanwhile_is_refused(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A temporary-files cleaner may empty the folder while a run is worked out: the run
    must then record nothing, not a run with fewer lines."""
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    ledger.issue_plan("P2", "PR-2", ELM, date(2025, 9, 1), band="C")
    totals = run_lines.RunLines.totals

    def cleared_first(self: run_lines.RunLines) -> list[run_lines.SchoolTotal]:
        for path in self.folder.iterdir():
            path.unlink()
        return totals(self)

    monkeypatch.setattr(run_lines.RunLines, "totals", cleared_first)
    before = events(ledger)
    with pytest.raises(run_lines.LinesLost, match=r"cannot be read.*Nothing was recorded"):
        pay(ledger, AUTUMN)
    assert events(ledger) == before
    monkeypatch.undo()
    assert pay(ledger, AUTUMN).total == 103333 + 166667  # 310,000 and 500,000 × 4/12


def losing_the_lines_of(plan: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Delete ``plan``'s lines from the run's first scratch file once they are written."""
    totals = run_lines.RunLines.totals

    def lost(self: run_lines.RunLines) -> list[run_lines.SchoolTotal]:
        with sqlite3.connect(self.spilled[0].path) as conn:
            conn.execute("DELETE FROM line WHERE plan = ?", (plan,))
        return totals(self)

    monkeypatch.setattr(run_lines.RunLines, "totals", lost)


@pytest.mark.parametrize(("second_school", "refusal"), [
    (ELM, "worked out 2 lines but 1 are in its files"),  # a school missing whole
    # one of a school's lines missing; P1 alone: 310,000 × 4/12 = 103,333.33 → £1,033.33
    (OAK, r"hold 1 lines \(£1,033\.33\) for school 100001, not what it worked out"),
])
def test_a_run_with_fewer_lines_on_disk_than_it_worked_out_is_refused(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch, second_school: str, refusal: str) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    ledger.issue_plan("P2", "PR-2", second_school, date(2025, 9, 1), band="C")
    losing_the_lines_of("P2", monkeypatch)
    before = events(ledger)
    with pytest.raises(run_lines.LinesLost, match=refusal):
        pay(ledger, AUTUMN)
    assert events(ledger) == before


def test_a_run_removes_the_lines_of_runs_whose_process_was_killed(
        ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    abandoned = scratch / f"topup-run-{int(ended.stdout)}-x1"
    running = scratch / f"topup-run-{os.getppid()}-x2"  # a process that is still there
    for folder in (abandoned, running):
        folder.mkdir()
        (folder / "1-1.sqlite").write_bytes(b"lines naming pupils")
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    pay(ledger, AUTUMN)
    assert sorted(p.name for p in scratch.iterdir()) == [running.name]


def test_a_run_for_a_period_not_in_the_calendar_is_refused(ledger: Ledger, cli: Invoke,
                                                           tmp_path: Path) -> None:
    set_up(ledger)
    ledger.set_calendar("2025-26", school_day_periods("2025-26", months_of_2025_26()))
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    before = events(ledger)
    for period in ("2025-26/autumn", "2025-26/winter", "autumn"):  # the months replaced terms
        with pytest.raises(RuleError) as refused:
            pay(ledger, period)
        assert refused.value.field == "period"
        result = cli("pay", period, "--out", str(tmp_path / "out"), ok=False)
        assert result.exit_code == 2 and "nothing was recorded" in result.output
    assert events(ledger) == before


# 9. Two runs at once must not pay twice.


def test_a_run_worked_out_before_another_was_recorded_conflicts_and_records_nothing(
        ledger: Ledger, location: str, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    other = Ledger(EventStore(location), clock=clock)
    try:
        # the second run has read the ledger …
        stale = read_reference(other.store, other.store.max_position())
        pay(ledger, AUTUMN)  # … when the first records
        after_first = events(ledger)
        monkeypatch.setattr(payrun, "read_reference", lambda store, upto: stale)
        with pytest.raises(ConflictError):
            pay(other, AUTUMN)
        with pytest.raises(ConflictError):
            pay(other, SPRING)  # any period: every run is ordered on the payments stream
        assert events(ledger) == after_first
    finally:
        other.store.close()
    assert paid_for(ledger, "P1") == {(AUTUMN, OAK, "base"): 103333}


def test_two_runs_that_both_pass_the_check_collide_in_the_store(
        ledger: Ledger, location: str, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The version check is only a courtesy: the payments stream's version is the guard."""
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    other = Ledger(EventStore(location), clock=clock)
    try:
        stale = read_reference(other.store, other.store.max_position())
        pay(ledger, AUTUMN)
        after_first = events(ledger)
        monkeypatch.setattr(payrun, "read_reference", lambda store, upto: stale)
        monkeypatch.setattr(other.store, "version", lambda name: 0)  # as read before the first
        with pytest.raises(ConflictError):
            pay(other, AUTUMN)
        assert events(ledger) == after_first
    finally:
        other.store.close()
    assert paid_for(ledger, "P1") == {(AUTUMN, OAK, "base"): 103333}


def test_two_runs_in_threads_at_once_pay_once(
        ledger: Ledger, location: str, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    before = events(ledger)
    both_read = threading.Barrier(2)
    real_read = payrun.read_reference

    def read_then_wait(store: EventStore, upto: int) -> Known:
        known = real_read(store, upto)
        both_read.wait(timeout=30)  # neither records before both have worked out the run
        return known

    monkeypatch.setattr(payrun, "read_reference", read_then_wait)
    outcomes: list[object] = []

    def run() -> None:
        store = EventStore(location)
        try:
            outcomes.append(pay(Ledger(store, clock=clock), AUTUMN))
        except ConflictError as error:
            outcomes.append(error)
        finally:
            store.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(type(o).__name__ for o in outcomes) == ["ConflictError", "RunResult"]
    assert events(ledger) == before + 3  # one seal, one run, one school paid
    assert paid_for(ledger, "P1") == {(AUTUMN, OAK, "base"): 103333}


def test_a_run_shared_out_over_processes_pays_what_one_process_pays(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """On each backend: the plans split over three forked processes, each reading its own
    plans through a connection of its own, give the same lines as one process, and the run
    records them once."""
    set_up(ledger)
    for n, (school, band) in enumerate([(OAK, "B"), (ELM, "C"), (BEACON, "D"), (OAK, "C"),
                                        (ELM, "B"), (BEACON, "B"), (OAK, "C")], start=1):
        ledger.issue_plan(f"P{n}", f"PR-{n}", school, date(2025, 9, 1), band=band)
    pay(ledger, AUTUMN)
    ledger.change_band("P2", "D", date(2025, 10, 1), "annual-review")  # backdated: arrears for autumn
    ledger.move("P5", OAK, date(2026, 1, 5))
    ledger.cease("P7", date(2025, 12, 1), "needs met")  # claw-back
    store = ledger.store

    def worked_out(shared: bool) -> tuple[int, dict[str, list[ev.PaymentLine]]]:
        monkeypatch.setattr(cores, "PLANS_PER_CORE", 1 if shared else 10**9)
        monkeypatch.setattr(cores, "cores", lambda: 3)
        # shared: each process writes its lines out one at a time
        monkeypatch.setattr(run_lines, "LINES_HELD", 1 if shared else 10**9)
        known = read_reference(store, store.max_position())
        plans = StoredPlans(store, known.position)
        try:
            sequence, lines = payrun.work_out(known, SPRING, plans, store)
        finally:
            plans.close()
        with lines:
            return sequence, {school: list(found) for school, found in lines.by_school()}

    alone = worked_out(shared=False)
    assert worked_out(shared=True) == alone
    assert {line.kind for lines in alone[1].values() for line in lines} == {
        "regular", "arrears", "clawback"}
    spring = pay(ledger, SPRING)  # still forced to share
    assert {p.school: list(p.lines) for p in spring.school_paid} == alone[1]


def test_a_line_says_in_words_every_state_behind_it_and_where_it_is_no_longer_funded(
        ledger: Ledger) -> None:
    """Spring at ELM after a transfer on 1 Feb: both states, in order, in every field; the
    autumn claw-back at OAK, where a correction says the child never was: nothing there."""
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal("30"))
    pay(ledger, AUTUMN)  # 30 h x £12 x 38 - £6,000 = £7,680 a year; autumn 4/12 = £2,560
    ledger.correct("P1", "P1/1", "placed at Elm from the start", school=ELM)
    ledger.transfer("P1", "C", date(2026, 2, 1))
    spring = pay(ledger, SPRING)
    said = {(paid.school, line.for_period): (line.kind, line.amount, line.basis,
                                              line.band_or_hours, line.days, line.reason)
            for paid in spring.school_paid for line in paid.lines}
    assert said[(OAK, AUTUMN)] == (
        "clawback", -256000, "none", "none", 0,
        "2025-26/autumn: due now £0.00 (no longer funded here, 0 days), already paid £2560.00")
    assert said[(ELM, AUTUMN)] == ("arrears", 256000, "hours", "30h", 122,
                                   "2025-26/autumn: due now £2560.00 (30h a week, 122 days), "
                                   "already paid £0.00")
    # January at £7,680 and February-March at band C (£5,000): 3/12 of each year's amount by
    # days, 31 and 59 of 90: 768000 x 3/12 x 31/90 + 500000 x 3/12 x 59/90 = 66133.33 +
    # 81944.44, with the year so far (256000 + 148077.78 = 404077.78 → 404078) less 256000
    assert said[(ELM, SPRING)] == ("regular", 148078, "hours/band", "30h→C", 90,
                                   "2025-26/spring: 30h a week then band C, 90 of 90 days")


def test_plans_alike_are_paid_alike_each_under_its_own_name_and_events(ledger: Ledger) -> None:
    """A run works out the lines of plans in one state all year once, for all such plans:
    each still gets its own plan, pupil and causing events, and its hours as written."""
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal("20"))
    ledger.issue_plan("P2", "PR-2", OAK, date(2025, 9, 1), hours=Decimal("20.0"))
    ledger.issue_plan("P3", "PR-3", ELM, date(2025, 9, 1), band="B")
    ledger.issue_plan("P4", "PR-4", ELM, date(2025, 9, 1), band="B")
    pay(ledger, AUTUMN)
    ledger.correct("P4", "P4/1", "the pupil reference was mistyped", band="B")  # same B
    spring = pay(ledger, SPRING)
    said = {line.plan: (paid.school, line.pupil, line.kind, line.amount, line.band_or_hours,
                        line.reason, line.caused_by)
            for paid in spring.school_paid for line in paid.lines}
    # 20 h x £12 x 38 - £6,000 = £3,120 a year: 104000 for autumn, 182000 by spring
    assert said["P1"] == (OAK, "PR-1", "regular", 78000, "20h",
                          "2025-26/spring: 20h a week, 90 of 90 days", ("P1/1",))
    assert said["P2"] == (OAK, "PR-2", "regular", 78000, "20.0h",
                          "2025-26/spring: 20.0h a week, 90 of 90 days", ("P2/1",))
    assert said["P3"] == (ELM, "PR-3", "regular", 77500, "B",
                          "2025-26/spring: band B, 90 of 90 days", ("P3/1",))
    assert said["P4"] == (ELM, "PR-4", "regular", 77500, "B",
                          "2025-26/spring: band B, 90 of 90 days", ("P4/1", "P4/2"))


def test_a_runs_payments_are_stored_as_the_mapper_stores_their_facts(ledger: Ledger) -> None:
    """A school's payment is written from its lines' bytes as they were worked out, never
    from the objects: what is stored must still be, byte for byte, what ``FactMapper`` stores
    for the payment it decodes to (the hash chain and the seals cover these bytes)."""
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    ledger.issue_plan("P2", "PR-2", ELM, date(2025, 9, 1), hours=Decimal("25"))
    pay(ledger, AUTUMN)
    ledger.change_band("P1", "D", date(2025, 10, 1), "annual-review")  # arrears, naming it
    ledger.move("P2", OAK, date(2025, 12, 1))  # backdated: claw-back at ELM for December
    spring = pay(ledger, SPRING)
    store = ledger.store
    stored = store.recorder.select_events(f"run:{spring.run_id}")
    assert [row.originator_version for row in stored] == [1, 2]  # one payment per school
    for row in stored:
        recorded = store.mapper.to_domain_event(row)
        assert isinstance(recorded.fact, ev.SchoolPaid) and recorded.fact.lines
        assert store.mapper.to_stored_event(recorded).state == row.state
    paid = {p.school: p.lines for p in spring.school_paid}
    assert sorted(paid) == sorted([OAK, ELM])
    arrears = [line for line in paid[OAK] if line.kind == "arrears"]
    assert sorted((line.plan, line.caused_by) for line in arrears) == [
        ("P1", ("P1/2",)), ("P2", ("P2/2",))]
    assert [(line.plan, line.kind) for line in paid[ELM]] == [("P2", "clawback")]


def test_what_each_plan_has_settled_is_the_same_worked_out_over_processes(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """The window of a run: the plans written since the last run, shared over three forked
    processes, settle the same periods as in one process, each as the period itself."""
    set_up(ledger)
    for n in range(1, 8):
        ledger.issue_plan(f"P{n}", f"PR-{n}", OAK, date(2025, 9, 1), band="B")
    pay(ledger, AUTUMN)
    ledger.change_band("P2", "D", date(2025, 10, 1), "annual-review")  # into the paid autumn
    ledger.change_band("P4", "C", date(2026, 2, 1), "annual-review")  # after it: autumn stays
    ledger.move("P5", ELM, date(2026, 1, 5))
    ledger.cease("P7", date(2025, 12, 1), "needs met")
    ledger.issue_plan("P8", "PR-8", ELM, date(2026, 1, 5), band="C")  # new: settles nothing
    store = ledger.store

    def settled(shared: bool) -> dict[str, object]:
        monkeypatch.setattr(cores, "PLANS_PER_CORE", 1 if shared else 10**9)
        monkeypatch.setattr(cores, "cores", lambda: 3)
        known = read_reference(store, store.max_position())
        plans = StoredPlans(store, known.position)
        try:
            window = payrun.window_for(known, SPRING, plans)
        finally:
            plans.close()
        return {plan: window.settled_for(f"plan:{plan}") for plan in
                ("P1", "P2", "P4", "P5", "P7", "P8")}

    alone = settled(shared=False)
    autumn = next(p for p in termly_periods("2025-26") if p.id == AUTUMN)
    assert alone == {"P1": autumn, "P2": None, "P4": autumn, "P5": autumn, "P7": None,
                     "P8": None}
    assert settled(shared=True) == alone


def test_a_runs_first_reads_side_by_side_give_what_they_give_one_after_the_other(
        ledger: Ledger, location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large ledger's run reads the reference (and the chain since the last seal) in a
    forked child while this process reads every plan's first event: the same reference,
    runs, seals, chain head and plans as reading them in turn; and an event after the seal
    that no longer decodes refuses the run with the same words."""
    set_up(ledger)
    for n in range(1, 6):
        ledger.issue_plan(f"P{n}", f"PR-{n}", OAK if n % 2 else ELM, date(2025, 9, n), band="B")
    pay(ledger, AUTUMN)
    ledger.change_band("P2", "C", date(2025, 10, 1), "annual-review")
    store = ledger.store
    upto = store.max_position()
    forks: list[int] = []
    original = cores.shared_out

    def counted(shares: Any, work: Any) -> Any:
        forks.append(len(shares))
        return original(shares, work)

    monkeypatch.setattr(payrun, "shared_out", counted)
    monkeypatch.setattr(cores, "cores", lambda: 2)

    def first_reads(side_by_side: bool) -> tuple[Any, ...]:
        monkeypatch.setattr(payrun, "READ_SIDE_BY_SIDE_FROM", 0 if side_by_side else 10**9)
        known, plans = payrun.reference_and_plans(store, upto)
        try:
            return (known.position, known.head, sorted(known.terms.schools), known.terms.sources,
                    [(p, r.fact) for p, r in known.runs], known.seals, known.reference.reshaped_at,
                    plans.issued, plans.first_issued())
        finally:
            plans.close()

    assert first_reads(True) == first_reads(False)
    assert forks == [2] and len(first_reads(False)[-2]) == 5
    if not location.endswith(".sqlite"):
        return
    damaged = str(tmp_path / "damaged.sqlite")
    with sqlite3.connect(location) as conn, sqlite3.connect(damaged) as copy:
        conn.backup(copy)
        copy.execute("UPDATE stored_events SET state = x'7b6e6f' WHERE rowid = ?", (upto,))
    refusals = []
    copied = EventStore(damaged)
    try:
        for side_by_side in (True, False):
            monkeypatch.setattr(payrun, "READ_SIDE_BY_SIDE_FROM", 0 if side_by_side else 10**9)
            with pytest.raises(StoreError) as refused:
                pay(Ledger(copied, clock=ledger.clock), SPRING)
            refusals.append(str(refused.value))
        assert copied.max_position() == upto  # nothing recorded either way
    finally:
        copied.close()
    assert refusals[0] == refusals[1] and "cannot be read" in refusals[0]
