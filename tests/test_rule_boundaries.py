"""Boundaries of the rules that no money test reached: each test here kills mutants that
survived the money tests (scripts/mutants.py; docs/testing.md lists them). Through the
public entry points: ``Ledger``'s commands, ``pay`` and the command line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import Result

from topup_ledger.domain.calendar import Period
from topup_ledger.domain.errors import RuleError
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger

OAK = "100001"
Invoke = Callable[..., Result]


def period(year: str, name: str, start: date, end: date, share: Fraction = Fraction(1)) -> Period:
    return Period(start=start, end=end, id=f"{year}/{name}", share=share)


def test_years_from_2000_01_to_2099_00_are_accepted_and_no_others(ledger: Ledger) -> None:
    """docs/rules.md §2: a year label names the year it starts in; the ledger takes 2000 to
    2099 (anything else is a typing mistake)."""
    for year in ("2000-01", "2099-00"):
        ledger.set_rate(year, 1200, Decimal(38), 600000, "the year's rate")
    for year in ("1999-00", "2100-01"):
        with pytest.raises(RuleError, match="is outside 2000-2099"):
            ledger.set_rate(year, 1200, Decimal(38), 600000, "the year's rate")


@pytest.mark.parametrize("hours", ["-0.5", "-1", "-40"])
def test_negative_hours_are_refused_as_negative(ledger: Ledger, hours: str) -> None:
    ledger.add_school(OAK, "Oak", "mainstream")
    with pytest.raises(RuleError, match=f"hours: {hours} is negative"):
        ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal(hours))
    assert ledger.store.version("plan:P1") == 0


def test_a_period_name_with_a_slash_is_refused(ledger: Ledger) -> None:
    with pytest.raises(RuleError, match="is not a period id like 2025-26/autumn"):
        ledger.set_calendar("2025-26", (period("2025-26", "a/b", date(2025, 9, 1), date(2026, 8, 31)),))


def test_calendars_of_two_years_may_not_share_a_day(ledger: Ledger) -> None:
    """2025-26 recorded as one period to 1 Sep 2026; 2026-27 from that same 1 Sep: one day
    in both is an overlap."""
    ledger.set_calendar("2025-26", (period("2025-26", "all", date(2025, 9, 1), date(2026, 9, 1)),))
    with pytest.raises(RuleError, match="overlaps 2025-26/all: calendars may not overlap"):
        ledger.set_calendar("2026-27", (period("2026-27", "all", date(2026, 9, 1), date(2027, 8, 31)),))


@pytest.mark.parametrize("recorded", ["ends on the first day of autumn", "starts on the last day of summer"])
def test_a_recorded_calendar_sharing_one_day_with_a_years_terms_replaces_them(
        ledger: Ledger, recorded: str) -> None:
    """docs/rules.md §2: the default terms of an academic year are used except where they
    would overlap a recorded calendar, by as little as one day. A plan from 1 Apr 2025;
    recorded: 2024-25 as one period from 1 Apr to 1 Sep 2025 (autumn 2025-26's first day),
    or 2026-27 as one period from 31 Aug 2026 (summer 2025-26's last day). Either way
    2025-26 has no terms: a run for 2025-26/autumn is refused, and not for an overlap."""
    ledger.add_school(OAK, "Oak", "mainstream")
    ledger.set_tariff("2025-26", {"B": 310000})
    if recorded == "ends on the first day of autumn":
        ledger.set_calendar("2024-25", (period("2024-25", "all", date(2025, 4, 1), date(2025, 9, 1)),))
    else:
        ledger.set_calendar("2026-27", (period("2026-27", "all", date(2026, 8, 31), date(2027, 8, 31)),))
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 4, 1), band="B")
    before = ledger.store.max_position()
    with pytest.raises(RuleError, match="'2025-26/autumn' is not a period in the payment calendar"):
        pay(ledger, "2025-26/autumn")
    assert ledger.store.max_position() == before


def test_a_calendar_file_with_one_school_day_in_all_is_a_calendar(cli: Invoke, tmp_path: Path) -> None:
    """Shares by school days: one period with the year's one school day has all of it."""
    table = tmp_path / "year.csv"
    table.write_text("period,start,end,school_days\nall,2025-09-01,2026-08-31,1\n")
    cli("calendar", "set", "--year", "2025-26", "--file", str(table))
    table.write_text("period,start,end,school_days\nall,2026-09-01,2027-08-31,0\n")
    refused = cli("calendar", "set", "--year", "2026-27", "--file", str(table), ok=False)
    assert refused.exit_code == 2 and "the periods must have some school days" in refused.output


@pytest.mark.parametrize("moment", ["2025-12-01T17:00:00Z", "2025-12-01T17:00:00",
                                    "2025-12-01T17:00:00+00:00"])
def test_as_of_a_time_in_utc_however_it_is_written(cli: Invoke, tmp_path: Path, moment: str) -> None:
    """A recorded time as people give it: with Z, an offset, or none (meaning UTC)."""
    cli("school", "add", OAK, "--name", "Oak", "--setting", "mainstream")
    shown = json.loads(cli("funding", "--as-of", moment, "--out", str(tmp_path / "out"), "--json").output)
    assert shown["as_of"] == "2025-12-01T17:00:00+00:00"
