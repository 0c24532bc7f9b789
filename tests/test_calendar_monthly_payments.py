"""Payment calendars and what they pay (DESIGN §3 "Years and payment periods"; issue 3).

The default calendar pays three terms of an academic year, shares 4/12, 3/12 and 5/12, pro
rata by calendar days within a term. An LA that pays monthly records its own calendar: months
weighted by school days over the school days of the year (194 here), still pro rata by
calendar days within a month. The calendar's year label groups its periods for cumulative
rounding. Amounts are worked out by hand in the comments; each test runs on both backends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import Result

from conftest import FakeClock
from schema_check import validate_stored
from topup_ledger.domain.calendar import school_day_periods, termly_periods
from topup_ledger.domain.errors import RuleError
from topup_ledger.services.payment_run import RunResult, pay
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.known import read_known
from topup_ledger.storage.store import EventStore

OAK, ELM = "100001", "100002"
B, D = 310000, 700000
Invoke = Callable[..., Result]

# School days per month of a financial year, Apr–Mar: 194 in all (one training day in August).
SCHOOL_DAYS = (("apr", 13), ("may", 19), ("jun", 21), ("jul", 16), ("aug", 1), ("sep", 20),
               ("oct", 18), ("nov", 20), ("dec", 15), ("jan", 19), ("feb", 15), ("mar", 17))
assert sum(days for _, days in SCHOOL_DAYS) == 194


def months(start_year: int) -> list[tuple[str, date, date, int]]:
    """The twelve months of financial year ``start_year``-``start_year+1`` with school days."""
    rows = []
    first = date(start_year, 4, 1)
    for name, days in SCHOOL_DAYS:
        after = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        rows.append((name, first, after - timedelta(days=1), days))
        first = after
    return rows


def set_up(ledger: Ledger) -> None:
    ledger.add_school(OAK, "Oakfield Primary", "mainstream")
    ledger.add_school(ELM, "Elm Academy", "mainstream")
    for year in ("2025-26", "2026-27"):
        ledger.set_tariff(year, {"B": B, "D": D})


def amounts(result: RunResult) -> list[tuple[str, str, str, int]]:
    return [(p.school, line.kind, line.for_period, line.amount)
            for p in result.school_paid for line in p.lines]


def test_the_default_calendar_is_three_terms_of_four_three_and_five_twelfths() -> None:
    autumn, spring, summer = termly_periods("2025-26")
    assert [(p.id, p.start, p.end, p.share, p.days) for p in (autumn, spring, summer)] == [
        ("2025-26/autumn", date(2025, 9, 1), date(2025, 12, 31), Fraction(4, 12), 122),
        ("2025-26/spring", date(2026, 1, 1), date(2026, 3, 31), Fraction(3, 12), 90),
        ("2025-26/summer", date(2026, 4, 1), date(2026, 8, 31), Fraction(5, 12), 153),
    ]
    # 2027-28 spring has a 29 February: 91 days
    assert termly_periods("2027-28")[1].days == 91


def test_termly_payments_are_pro_rata_by_calendar_days_within_the_term(ledger: Ledger) -> None:
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 11, 20), band="D")
    # autumn: 20 Nov–31 Dec = 11 + 31 = 42 of 122 days: 700000 × 4/12 × 42/122
    # = 700000 × 42/366 = 80327.87… → 80328
    assert amounts(pay(ledger, "2025-26/autumn")) == [(OAK, "regular", "2025-26/autumn", 80328)]
    # spring: 80327.87 + 700000 × 3/12 = 255327.87 → 255328, less 80328 = 175000
    assert amounts(pay(ledger, "2025-26/spring")) == [(OAK, "regular", "2025-26/spring", 175000)]
    # summer: 255327.87 + 291666.67 = 546994.54 → 546995, less 255328 = 291667
    assert amounts(pay(ledger, "2025-26/summer")) == [(OAK, "regular", "2025-26/summer", 291667)]


def test_a_month_is_paid_its_school_days_over_the_years_pro_rata_by_calendar_days(
        ledger: Ledger) -> None:
    set_up(ledger)
    periods = school_day_periods("2025-26", months(2025))
    ledger.set_calendar("2025-26", periods, reason="we pay monthly by school days on roll")
    recorded = ledger.calendars()["2025-26"]
    assert recorded == periods
    october = recorded[6]
    assert (october.id, october.start, october.end, october.school_days, october.share) == (
        "2025-26/oct", date(2025, 10, 1), date(2025, 10, 31), 18, Fraction(18, 194))

    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 10, 15), band="B")
    # October: 18 of 194 school days; 15–31 Oct is 17 of 31 calendar days:
    # 310000 × 18/194 × 17/31 = 10000 × 18 × 17 / 194 = 3060000/194 = 15773.19… → 15773
    october_run = pay(ledger, "2025-26/oct")
    assert amounts(october_run) == [(OAK, "regular", "2025-26/oct", 15773)]
    assert october_run.school_paid[0].lines[0].days == 17
    # November: 20 of 194: 6200000/194 = 31958.76…; cumulative 9260000/194 = 47731.96…
    # → 47732, less 15773 = 31959
    assert amounts(pay(ledger, "2025-26/nov")) == [(OAK, "regular", "2025-26/nov", 31959)]


def test_a_whole_year_of_months_adds_up_to_the_annual_amount(ledger: Ledger) -> None:
    set_up(ledger)
    ledger.set_calendar("2025-26", school_day_periods("2025-26", months(2025)))
    ledger.set_calendar("2026-27", school_day_periods("2026-27", months(2026)))
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 4, 1), band="B")
    paid = {}
    for name, _ in SCHOOL_DAYS:
        result = pay(ledger, f"2025-26/{name}")
        paid[name] = sum(line[3] for line in amounts(result))
    # April: 310000 × 13/194 = 4030000/194 = 20773.19… → 20773; May: cumulative 32 days
    # 9920000/194 = 51134.02… → 51134, less 20773 = 30361; August, 1 day: cumulative 70 days
    # 21700000/194 = 111855.67 → 111856, less 69 days' 21390000/194 = 110257.73 → 110258 = 1598.
    assert (paid["apr"], paid["may"], paid["aug"]) == (20773, 30361, 1598)
    assert sum(paid.values()) == B  # exactly £3,100.00 over the year
    # A new calendar year restarts the cumulative rounding: April 2026 is 20773 again.
    assert amounts(pay(ledger, "2026-27/apr")) == [(OAK, "regular", "2026-27/apr", 20773)]


def test_a_recorded_calendar_replaces_the_default_terms_it_overlaps(ledger: Ledger) -> None:
    set_up(ledger)
    ledger.set_calendar("2025-26", school_day_periods("2025-26", months(2025)))
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    before = ledger.store.max_position()
    # The months of financial year 2025-26 overlap academic years 2024-25 and 2025-26,
    # so neither's default terms exist.
    for period in ("2025-26/autumn", "2024-25/summer"):
        with pytest.raises(RuleError, match="not a period in the payment calendar"):
            pay(ledger, period)
    assert ledger.store.max_position() == before
    # … and the default terms of a year that overlaps no recorded calendar still do.
    calendar = read_known(ledger.store).calendar_through(date(2027, 8, 31))
    assert [p.id for p in calendar.periods][-4:] == [
        "2025-26/mar", "2026-27/autumn", "2026-27/spring", "2026-27/summer"]


def test_a_backdated_move_within_a_month_calendar_splits_the_month_by_calendar_days(
        ledger: Ledger) -> None:
    set_up(ledger)
    ledger.set_calendar("2025-26", school_day_periods("2025-26", months(2025)))
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 11, 1), band="B")
    assert amounts(pay(ledger, "2025-26/nov")) == [(OAK, "regular", "2025-26/nov", 31959)]
    # November: 310000 × 20/194 = 31958.76… → 31959 (the plan's first month)
    ledger.move("P1", ELM, date(2025, 11, 16))  # recorded in December, effective mid-November
    # 1–15 Nov at Oak and 16–30 Nov at Elm: 15 of 30 days each, 15979.38… → 15979 each.
    # December at Elm: 15979.38 + 310000 × 15/194 (23969.07…) = 39948.45… → 39948, less 15979
    assert amounts(pay(ledger, "2025-26/dec")) == [
        (OAK, "clawback", "2025-26/nov", 15979 - 31959),
        (ELM, "arrears", "2025-26/nov", 15979),
        (ELM, "regular", "2025-26/dec", 39948 - 15979),
    ]


def test_a_monthly_calendar_from_a_csv_file_through_the_command_line(
        cli: Invoke, tmp_path: Path) -> None:
    cli("school", "add", OAK, "--name", "Oakfield Primary", "--setting", "mainstream")
    cli("tariff", "set", "--year", "2025-26", "--band", "B=3100")
    table = tmp_path / "months.csv"
    table.write_text("period,start,end,school_days\n" + "".join(
        f"{name},{start},{end},{days}\n" for name, start, end, days in months(2025)))
    cli("calendar", "set", "--year", "2025-26", "--file", str(table))
    cli("plan", "issue", "P1", "--pupil", "PR-1", "--school", OAK, "--from", "15/10/2025",
        "--band", "B")
    report = json.loads(cli("pay", "2025-26/oct", "--out", str(tmp_path / "out"), "--json").output)
    assert (report["run_id"], report["total_pence"], report["total_gbp"]) == (
        "2025-26-oct-r1", 15773, "157.73")


def test_a_month_with_no_school_days_pays_nothing_and_is_stored_as_its_schema_says(
        tmp_path: Path, clock: FakeClock) -> None:
    location = str(tmp_path / "ledger.sqlite")
    EventStore(location, create=True).close()
    store = EventStore(location)
    try:
        ledger = Ledger(store, clock=clock)
        set_up(ledger)
        # August's school day moved to March: still 194 in all, and August's share is 0.
        no_august = [(name, start, end, {"aug": 0, "mar": days + 1}.get(name, days))
                     for name, start, end, days in months(2025)]
        ledger.set_calendar("2025-26", school_day_periods("2025-26", no_august))
        ledger.issue_plan("P1", "PR-1", OAK, date(2025, 4, 1), band="B")
        paid = {name: sum(line[3] for line in amounts(pay(ledger, f"2025-26/{name}")))
                for name, _ in SCHOOL_DAYS}
        # July: cumulative 69 days 21390000/194 = 110257.73 → 110258; August adds nothing;
        # September: 89 days 27590000/194 = 142216.49 → 142216, less 110258 = 31958.
        assert (paid["aug"], paid["sep"]) == (0, 31958)
        assert sum(paid.values()) == B
        validate_stored(store)
    finally:
        store.close()
