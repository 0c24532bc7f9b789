"""Years, payment periods and dates (DESIGN §3 "Years and payment periods").

Domain only: no store, no CLI.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import (
    Calendar,
    Period,
    academic_year_of,
    check_periods,
    financial_year_of,
    financial_year_starts,
    parse_date,
    parse_year,
    school_day_periods,
    termly_periods,
    with_default_terms,
)
from topup_ledger.domain.entitlement import dues
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.plan import Plan, RecordedFact
from topup_ledger.domain.rules import Terms

# Years.


def test_parse_year() -> None:
    assert parse_year("2025-26") == 2025
    assert parse_year(" 2099-00 ") == 2099  # the century rolls over in the second part
    for bad in ("2025-27", "2025/26", "2025-2026", "25-26", "1999-00", "2100-01", ""):
        with pytest.raises(RuleError) as refused:
            parse_year(bad, "year")
        assert refused.value.field == "year"


@pytest.mark.parametrize(
    ("day", "financial", "academic"),
    [
        (date(2025, 3, 31), "2024-25", "2024-25"),
        (date(2025, 4, 1), "2025-26", "2024-25"),  # a new financial year, same academic year
        (date(2025, 8, 31), "2025-26", "2024-25"),
        (date(2025, 9, 1), "2025-26", "2025-26"),  # a new academic year, same financial year
        (date(2025, 12, 31), "2025-26", "2025-26"),
        (date(2026, 1, 1), "2025-26", "2025-26"),
        (date(2026, 3, 31), "2025-26", "2025-26"),
        (date(2026, 4, 1), "2026-27", "2025-26"),
        (date(2026, 8, 31), "2026-27", "2025-26"),
        (date(2026, 9, 1), "2026-27", "2026-27"),
        (date(2028, 2, 29), "2027-28", "2027-28"),
    ],
)
def test_financial_and_academic_year_at_their_boundaries(day: date, financial: str,
                                                         academic: str) -> None:
    assert financial_year_of(day) == financial
    assert academic_year_of(day) == academic


def test_financial_year_starts_strictly_inside() -> None:
    # The summer term starts on 1 April itself: no cut inside it.
    assert list(financial_year_starts(date(2026, 4, 1), date(2026, 9, 1))) == []
    # The spring term ends the day before 1 April: none either.
    assert list(financial_year_starts(date(2026, 1, 1), date(2026, 4, 1))) == []
    # A stretch from 15 March to 14 April contains the 1 April 2026 boundary.
    assert list(financial_year_starts(date(2026, 3, 15), date(2026, 4, 15))) == [date(2026, 4, 1)]
    # Two and a bit years contain two boundaries.
    assert list(financial_year_starts(date(2025, 3, 1), date(2027, 3, 1))) == [
        date(2025, 4, 1), date(2026, 4, 1)]


# The default termly calendar.


def test_termly_periods_dates_shares_and_days() -> None:
    autumn, spring, summer = termly_periods("2025-26")
    assert (autumn.id, autumn.start, autumn.end) == ("2025-26/autumn", date(2025, 9, 1), date(2025, 12, 31))
    assert (spring.id, spring.start, spring.end) == ("2025-26/spring", date(2026, 1, 1), date(2026, 3, 31))
    assert (summer.id, summer.start, summer.end) == ("2025-26/summer", date(2026, 4, 1), date(2026, 8, 31))
    assert (autumn.share, spring.share, summer.share) == (Fraction(4, 12), Fraction(3, 12), Fraction(5, 12))
    # Days: autumn 30+31+30+31 = 122; spring 31+28+31 = 90; summer 30+31+30+31+31 = 153.
    assert (autumn.days, spring.days, summer.days) == (122, 90, 153)
    assert autumn.days + spring.days + summer.days == 365
    assert {p.year for p in (autumn, spring, summer)} == {"2025-26"}
    assert autumn.end_exclusive == spring.start and spring.end_exclusive == summer.start
    check_periods("2025-26", (autumn, spring, summer))


def test_termly_periods_in_a_leap_year() -> None:
    # Spring 2028: 31 + 29 + 31 = 91 days.
    assert termly_periods("2027-28")[1].days == 91


def test_period_contains_its_first_and_last_day_only() -> None:
    autumn = termly_periods("2025-26")[0]
    assert autumn.contains(date(2025, 9, 1)) and autumn.contains(date(2025, 12, 31))
    assert not autumn.contains(date(2025, 8, 31)) and not autumn.contains(date(2026, 1, 1))


# Checking a recorded calendar.


def _refused(periods: tuple[Period, ...], field: str, words: str, year: str = "2025-26") -> None:
    with pytest.raises(RuleError, match=words) as refused:
        check_periods(year, periods)
    assert refused.value.field == field


def test_check_periods_refuses_a_gap() -> None:
    autumn, spring, summer = termly_periods("2025-26")
    short_autumn = dataclasses.replace(autumn, end=date(2025, 12, 30))  # 31 Dec belongs to no one
    _refused((short_autumn, spring, summer), "start", "no gap or overlap")


def test_check_periods_refuses_an_overlap() -> None:
    autumn, spring, summer = termly_periods("2025-26")
    long_autumn = dataclasses.replace(autumn, end=date(2026, 1, 1))  # 1 Jan in two terms
    _refused((long_autumn, spring, summer), "start", "no gap or overlap")


def test_check_periods_refuses_periods_out_of_order() -> None:
    autumn, spring, summer = termly_periods("2025-26")
    _refused((spring, autumn, summer), "start", "no gap or overlap")


def test_check_periods_refuses_shares_not_adding_up_to_one() -> None:
    autumn, spring, summer = termly_periods("2025-26")
    # 4/12 + 3/12 + 4/12 = 11/12
    _refused((autumn, spring, dataclasses.replace(summer, share=Fraction(4, 12))), "share", "11/12, not 1")
    # 4/12 + 3/12 + 6/12 = 13/12
    _refused((autumn, spring, dataclasses.replace(summer, share=Fraction(6, 12))), "share", "13/12, not 1")


def test_check_periods_refuses_bad_periods() -> None:
    autumn, spring, summer = termly_periods("2025-26")
    _refused((), "periods", "no periods")
    _refused((autumn, spring, summer), "period", "not a period id", year="2026-27")
    _refused((dataclasses.replace(autumn, id="2025-26/Autumn Term"), spring, summer), "period",
             "not a period id")
    _refused((autumn, dataclasses.replace(spring, id="2025-26/autumn"), summer), "period", "twice")
    _refused((autumn, dataclasses.replace(spring, end=date(2025, 12, 1)), summer), "end",
             "ends before it starts")
    _refused((dataclasses.replace(autumn, share=Fraction(-1, 12)), spring,
              dataclasses.replace(summer, share=Fraction(10, 12))), "share", "negative share")
    # A period with no share is allowed: a month with no school days (August) pays nothing.
    check_periods("2025-26", (dataclasses.replace(autumn, share=Fraction(0)), spring,
                              dataclasses.replace(summer, share=Fraction(9, 12))))


def test_calendar_of_refuses_overlapping_years_and_unknown_periods() -> None:
    calendar = Calendar.of({"2025-26": termly_periods("2025-26"), "2026-27": termly_periods("2026-27")})
    assert [p.id for p in calendar.periods][2:4] == ["2025-26/summer", "2026-27/autumn"]
    spring = calendar.period("2026-27/spring")
    assert spring.start == date(2027, 1, 1)
    assert [p.id for p in calendar.year_before(spring)] == ["2026-27/autumn"]
    assert len(calendar.up_to(spring)) == 5
    with pytest.raises(RuleError, match="not a period") as refused:
        calendar.period("2025-26/winter")
    assert refused.value.field == "period"
    shifted = tuple(dataclasses.replace(p, id=p.id.replace("2026-27", "2025-27")) for p in
                    termly_periods("2025-26"))
    with pytest.raises(RuleError, match="overlaps"):
        Calendar.of({"2025-26": termly_periods("2025-26"), "x": shifted})


def test_with_default_terms_fills_years_without_a_recorded_calendar() -> None:
    monthly = _monthly_2025_26()
    calendar = with_default_terms({"2025-26": monthly}, date(2024, 9, 1), date(2027, 8, 31))
    ids = [p.id for p in calendar.periods]
    assert ids[:3] == ["2024-25/autumn", "2024-25/spring", "2024-25/summer"]
    assert ids[3:15] == [p.id for p in monthly]
    assert ids[15:] == ["2026-27/autumn", "2026-27/spring", "2026-27/summer"]


# A calendar of months weighted by school days.

# School days of each month of 2025-26, 194 in all (including training days):
# 20+18+20+15 = 73 (Sep-Dec), 19+15+21 = 55 (Jan-Mar), 12+18+20+16+0 = 66 (Apr-Aug);
# 73 + 55 + 66 = 194. August has no school days: its share is 0 and it pays nothing.
MONTHS = (
    ("sep", date(2025, 9, 1), date(2025, 9, 30), 20),
    ("oct", date(2025, 10, 1), date(2025, 10, 31), 18),
    ("nov", date(2025, 11, 1), date(2025, 11, 30), 20),
    ("dec", date(2025, 12, 1), date(2025, 12, 31), 15),
    ("jan", date(2026, 1, 1), date(2026, 1, 31), 19),
    ("feb", date(2026, 2, 1), date(2026, 2, 28), 15),
    ("mar", date(2026, 3, 1), date(2026, 3, 31), 21),
    ("apr", date(2026, 4, 1), date(2026, 4, 30), 12),
    ("may", date(2026, 5, 1), date(2026, 5, 31), 18),
    ("jun", date(2026, 6, 1), date(2026, 6, 30), 20),
    ("jul", date(2026, 7, 1), date(2026, 7, 31), 16),
    ("aug", date(2026, 8, 1), date(2026, 8, 31), 0),
)


def _monthly_2025_26() -> tuple[Period, ...]:
    return school_day_periods("2025-26", MONTHS)


def test_school_day_periods_share_is_days_over_the_years_days() -> None:
    months = _monthly_2025_26()
    assert len(months) == 12
    assert sum(p.school_days or 0 for p in months) == 194
    sep, oct_, aug = months[0], months[1], months[11]
    assert (sep.id, sep.school_days, sep.share) == ("2025-26/sep", 20, Fraction(20, 194))
    assert sep.share == Fraction(10, 97)  # 20/194 in lowest terms
    assert oct_.share == Fraction(18, 194)
    assert (aug.school_days, aug.share) == (0, 0)  # a month with no school days is allowed
    assert sum((p.share for p in months), Fraction(0)) == 1
    check_periods("2025-26", months)


def test_school_day_periods_need_some_school_days() -> None:
    with pytest.raises(RuleError) as refused:
        school_day_periods("2025-26", [("sep", date(2025, 9, 1), date(2025, 9, 30), 0)])
    assert refused.value.field == "school_days"


def _banded_plan(effective: date, band: str = "A") -> Plan:
    return Plan([RecordedFact("P1/1", ev.PlanIssued("P1", "pupil-1", "100001", effective, band=band))])


def _terms(bands: dict[str, int]) -> Terms:
    terms = Terms()
    terms.apply(ev.SchoolAdded("100001", "Oak Primary", "mainstream"), "school:100001/1")
    terms.apply(ev.HourlyRateSet("2025-26", 1181, Decimal(38), 600_000), "rate:2025-26/1")
    for year in ("2025-26", "2026-27"):
        terms.apply(ev.TariffSet(year, tuple(bands.items())), f"tariff:{year}/1")
    return terms


def test_monthly_dues_by_school_days_worked_by_hand() -> None:
    # Band A is £1,940.00 a year = 194000p, so each school day is worth 194000 / 194 = 1000p.
    months = _monthly_2025_26()
    terms = _terms({"A": 194_000})
    due = dues(_banded_plan(date(2025, 9, 1)), months, terms)
    key = ("100001", "base")
    # sep: 194000 × 20/194 = 20000p; oct: × 18/194 = 18000p; jul: × 16/194 = 16000p;
    # aug: × 0/194 = nothing.
    assert due["2025-26/sep"] == {key: 20_000}
    assert due["2025-26/oct"] == {key: 18_000}
    assert due["2025-26/mar"] == {key: 21_000}
    assert due["2025-26/jul"] == {key: 16_000}
    assert "2025-26/aug" not in due
    expected = {f"2025-26/{name}": {key: days * 1000} for name, _, _, days in MONTHS if days}
    assert due == expected
    # The whole year: 194 days × 1000p = 194000p = the annual amount.
    assert sum(d[key] for d in due.values()) == 194_000


def test_monthly_dues_for_a_plan_starting_mid_month() -> None:
    # Issued 16 Oct: within October the due is pro rata by calendar days, 16 of 31
    # (16 Oct - 31 Oct inclusive): 194000 × 18/194 × 16/31 = 18000 × 16/31 = 288000/31
    # = 9290.32p → 9290p.
    # November: cumulative 288000/31 + 20000 = 908000/31 = 29290.32p → 29290p, less the
    # 9290p rounded before = 20000p.
    months = _monthly_2025_26()
    due = dues(_banded_plan(date(2025, 10, 16)), months, _terms({"A": 194_000}))
    key = ("100001", "base")
    assert "2025-26/sep" not in due
    assert due["2025-26/oct"] == {key: 9_290}
    assert due["2025-26/nov"] == {key: 20_000}
    # The year: everything but September (20000p) and the 15 days of October before the
    # plan started (18000 × 15/31 = 8709.68p): 194000 − 20000 − 8709.68 = 165290.32p
    # → 165290p.
    assert sum(d[key] for d in due.values()) == 165_290


def test_monthly_school_day_share_20_of_194_for_a_20_day_month() -> None:
    # A band of £3,100.00 = 310000p for September (20 of 194 school days):
    # 310000 × 20/194 = 6200000/194 = 31958.76p → 31959p.
    # October cumulative: 310000 × 38/194 = 11780000/194 = 60721.65p → 60722p;
    # October's due = 60722 − 31959 = 28763p (its exact share would be 28762.89p).
    due = dues(_banded_plan(date(2025, 9, 1), "B"), _monthly_2025_26(), _terms({"B": 310_000}))
    key = ("100001", "base")
    assert due["2025-26/sep"] == {key: 31_959}
    assert due["2025-26/oct"] == {key: 28_763}
    assert sum(d[key] for d in due.values()) == 310_000


# Dates as people type them.


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2025-09-01", date(2025, 9, 1)),
        ("01/09/2025", date(2025, 9, 1)),  # day first, as in England
        ("1/9/2025", date(2025, 9, 1)),
        (" 31/03/2026 ", date(2026, 3, 31)),
        ("29/02/2028", date(2028, 2, 29)),
        ("2000-01-01", date(2000, 1, 1)),
        ("31/12/2099", date(2099, 12, 31)),
    ],
)
def test_parse_date(text: str, day: date) -> None:
    assert parse_date(text) == day


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1850-01-01", "outside 2000-2099"),
        ("01/01/2100", "outside 2000-2099"),
        ("31/02/2025", "is not a date"),
        ("29/02/2025", "is not a date"),  # 2025 is not a leap year
        ("2025-13-01", "is not a date"),
        ("09/31/2025", "is not a date"),  # month first is not how dates are written here
        ("", "is not a date"),
        ("tomorrow", "is not a date"),
        ("2025-09-01T00:00", "is not a date"),
    ],
)
def test_parse_date_refuses(text: str, words: str) -> None:
    with pytest.raises(RuleError, match=words) as refused:
        parse_date(text, "from")
    assert refused.value.field == "from"
