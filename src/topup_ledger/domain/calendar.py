"""Years and payment periods (docs/rules.md §2).

A financial year ``2025-26`` runs 1 Apr 2025 – 31 Mar 2026 and carries band rates, hourly
rates and the notional threshold. An academic year ``2025-26`` runs 1 Sep 2025 – 31 Aug 2026
and is what the default payment calendar divides into terms. A payment calendar is data (an
event), so an LA can record its own periods, for example months weighted by school days.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError

_YEAR = re.compile(r"^(\d{4})-(\d{2})$")
_PERIOD_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
ONE_DAY = timedelta(days=1)

# Earliest and latest years the ledger accepts: anything outside is a typing mistake.
FIRST_YEAR = 2000
LAST_YEAR = 2099


def parse_year(label: str, field: str = "year") -> int:
    """'2025-26' → 2025 (the year in which it starts)."""
    match = _YEAR.match(label.strip())
    if not match:
        raise RuleError(field, f"{label!r} is not a year like 2025-26")
    start = int(match.group(1))
    if int(match.group(2)) != (start + 1) % 100:
        raise RuleError(field, f"{label!r}: the second part must be the year after {start}")
    if not FIRST_YEAR <= start <= LAST_YEAR:
        raise RuleError(field, f"{label!r} is outside {FIRST_YEAR}-{LAST_YEAR}")
    return start


def year_label(start: int) -> str:
    return f"{start}-{(start + 1) % 100:02d}"


def financial_year_of(day: date) -> str:
    """The financial year (1 Apr – 31 Mar) containing ``day``."""
    return year_label(day.year if day.month >= 4 else day.year - 1)


def academic_year_of(day: date) -> str:
    """The academic year (1 Sep – 31 Aug) containing ``day``."""
    return year_label(day.year if day.month >= 9 else day.year - 1)


def financial_year_starts(start: date, end_exclusive: date) -> Iterator[date]:
    """Every 1 April strictly inside (start, end_exclusive): where rates may change."""
    for year in range(start.year, end_exclusive.year + 1):
        boundary = date(year, 4, 1)
        if start < boundary < end_exclusive:
            yield boundary


def financial_years_within(start: date, end_exclusive: date) -> frozenset[str]:
    """The financial years in which the days [start, end_exclusive) fall."""
    return frozenset({financial_year_of(start),
                      *map(financial_year_of, financial_year_starts(start, end_exclusive))})


@dataclass(frozen=True, order=True)
class Period:
    """One payment period: inclusive dates and its share of the year's annual amount."""

    start: date
    end: date
    id: str
    share: Fraction
    school_days: int | None = None
    # The period's school days, where its calendar holds them (docs/rules.md §2): a plan is
    # then paid the school days it is funded on; None: pro rata by calendar days.
    school_dates: frozenset[date] | None = field(default=None, compare=False, repr=False)
    # What follows from the above, worked out once: a period never changes.
    year: str = field(init=False, compare=False, repr=False)  # '2025-26' of '2025-26/autumn'
    days: int = field(init=False, compare=False, repr=False)
    end_exclusive: date = field(init=False, compare=False, repr=False)
    # The period by its content: a recorded calendar may give an id other days or shares,
    # so what is remembered by period is remembered by this.
    key: tuple[object, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        derived = {"year": self.id.split("/", 1)[0], "days": (self.end - self.start).days + 1,
                   "end_exclusive": self.end + ONE_DAY,
                   "key": (self.id, self.start, self.end, self.share.numerator,
                           self.share.denominator,
                           None if self.school_dates is None else tuple(sorted(self.school_dates)))}
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def weight(self, start: date, end_exclusive: date) -> int:
        """What the days [start, end_exclusive) of the period count for pro rata: its school
        days among them where the calendar holds school days, else the calendar days."""
        if self.school_dates is None:
            return (end_exclusive - start).days
        return sum(1 for day in self.school_dates if start <= day < end_exclusive)

    @property
    def weight_total(self) -> int:
        """What the whole period counts for: its school days, or its calendar days."""
        return self.days if self.school_dates is None else len(self.school_dates)


TERMS = (("autumn", (9, 1), (12, 31), Fraction(4, 12)),
         ("spring", (1, 1), (3, 31), Fraction(3, 12)),
         ("summer", (4, 1), (8, 31), Fraction(5, 12)))


def termly_periods(year: str) -> tuple[Period, ...]:
    """The default calendar: three terms of an academic year, shares 4/12, 3/12, 5/12."""
    start = parse_year(year)
    periods = []
    for name, (m1, d1), (m2, d2), share in TERMS:
        y = start if m1 >= 9 else start + 1
        periods.append(Period(date(y, m1, d1), date(y, m2, d2), f"{year}/{name}", share))
    return tuple(periods)


def school_day_periods(year: str, rows: Iterable[tuple[str, date, date, int]]) -> tuple[Period, ...]:
    """Periods weighted by school days: each period's share is its school days over the year's.

    This is how LAs that pay monthly pro rata by school days on roll (e.g. 194 a year) state
    their schedule.
    """
    rows = list(rows)
    total = sum(days for *_, days in rows)
    if total <= 0:
        raise RuleError("school_days", "the periods must have some school days")
    return tuple(
        Period(start, end, f"{year}/{name}", Fraction(days, total), days)
        for name, start, end, days in rows
    )


def check_periods(year: str, periods: tuple[Period, ...]) -> None:
    """A calendar is valid when its periods are named, ordered, contiguous and share 1."""
    if not periods:
        raise RuleError("periods", f"the calendar for {year} has no periods")
    seen = set()
    for period in periods:
        name = period.id.split("/", 1)[-1]
        if period.year != year or not _PERIOD_NAME.match(name):
            raise RuleError("period", f"{period.id!r} is not a period id like {year}/autumn")
        if period.id in seen:
            raise RuleError("period", f"{period.id} appears twice")
        seen.add(period.id)
        if period.end < period.start:
            raise RuleError("end", f"{period.id} ends before it starts")
        if period.share < 0:
            # A share of 0 is allowed: a month with no school days (August) pays nothing.
            raise RuleError("share", f"{period.id} has a negative share of the year")
    for before, after in itertools.pairwise(periods):
        if after.start != before.end_exclusive:
            raise RuleError(
                "start",
                f"{after.id} starts {after.start} but {before.id} ends {before.end}: "
                "periods must follow each other with no gap or overlap",
            )
    total = sum((p.share for p in periods), Fraction(0))
    if total != 1:
        raise RuleError("share", f"the shares of {year}'s periods add up to {total}, not 1")


def periods_of(fact: ev.CalendarSet) -> tuple[Period, ...]:
    """A recorded calendar's periods, with their school days where it holds them."""
    dates = school_dates(fact.terms, fact.closures) if fact.terms else None
    return tuple(Period(p.start, p.end, p.id, Fraction(p.share), p.school_days,
                        None if dates is None else frozenset(d for d in dates if p.start <= d <= p.end))
                 for p in fact.periods)


def school_dates(terms: Iterable[ev.TermDates], closures: Iterable[date] = ()) -> frozenset[date]:
    """The school days: every weekday (Monday to Friday) of a term, less the closures."""
    closed = set(closures)
    found = set()
    for term in terms:
        day = term.start
        while day <= term.end:
            if day.weekday() < 5 and day not in closed:
                found.add(day)
            day += ONE_DAY
    return frozenset(found)


def check_terms(periods: tuple[Period, ...], terms: tuple[ev.TermDates, ...],
                closures: tuple[date, ...]) -> tuple[Period, ...]:
    """A calendar's periods paid by the school days its terms hold: the terms inside the
    calendar's days, in order and apart; each closure a weekday of a term; each period's
    school days as the terms give them (a count given must agree) and its share its school
    days over the year's. Returns the periods with their school days and shares."""
    first, last = periods[0].start, periods[-1].end
    for term in terms:
        if term.end < term.start:
            raise RuleError("term", f"the term {term.start} to {term.end} ends before it starts")
        if term.start < first or term.end > last:
            raise RuleError("term", f"the term {term.start} to {term.end} is not within the "
                            f"calendar's periods ({first} to {last})")
    for before, after in itertools.pairwise(terms):
        if after.start <= before.end:
            raise RuleError("term", f"the term from {after.start} starts before the one before "
                            f"it ends ({before.end}): give terms in date order, apart")
    for day in closures:
        if day.weekday() >= 5 or not any(t.start <= day <= t.end for t in terms):
            raise RuleError("closure", f"{day} is not a weekday of a term, so it is no school day "
                            "to close")
    dates = school_dates(terms, closures)
    counted = [(p, sum(1 for d in dates if p.start <= d <= p.end)) for p in periods]
    for period, days in counted:
        if period.school_days is not None and period.school_days != days:
            raise RuleError("school_days", f"{period.id} has {period.school_days} school days, but "
                            f"the term dates give it {days}")
    total = len(dates)
    if total == 0:
        raise RuleError("term", "the term dates hold no school days")
    return tuple(Period(p.start, p.end, p.id, Fraction(days, total), days,
                        frozenset(d for d in dates if p.start <= d <= p.end))
                 for p, days in counted)


@dataclass(frozen=True)
class Calendar:
    """All payment periods the ledger knows, across years, in date order."""

    periods: tuple[Period, ...]

    @classmethod
    def of(cls, by_year: dict[str, tuple[Period, ...]]) -> Calendar:
        periods = tuple(sorted(p for ps in by_year.values() for p in ps))
        for before, after in itertools.pairwise(periods):
            if after.start <= before.end:
                raise RuleError(
                    "calendar", f"{after.id} overlaps {before.id}: calendars may not overlap"
                )
        return cls(periods)

    def period(self, period_id: str) -> Period:
        for period in self.periods:
            if period.id == period_id:
                return period
        raise RuleError("period", f"{period_id!r} is not a period in the payment calendar")

    def up_to(self, period: Period) -> tuple[Period, ...]:
        """Every period of the calendar up to and including ``period``."""
        return tuple(p for p in self.periods if p.start <= period.start)

    def year_before(self, period: Period) -> tuple[Period, ...]:
        """The periods of ``period``'s year that come before it: cumulative rounding runs
        over these."""
        return tuple(p for p in self.periods if p.year == period.year and p < period)

    def overlapping(self, start: date, end_exclusive: date) -> tuple[Period, ...]:
        return tuple(p for p in self.periods if p.start < end_exclusive and start <= p.end)


_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})", re.ASCII)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)  # not the week or compact forms


def parse_moment(text: str) -> datetime:
    """A recorded time as people give it, for "as known at": ISO with ``Z`` or an offset
    (none means UTC), or a date alone, meaning the end of that day (UTC)."""
    value = text.strip()
    try:
        return datetime.combine(date.fromisoformat(value), time.max, UTC)
    except ValueError:
        pass
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use 2025-12-01T17:00:00Z, 2025-12-01 17:00 "
                         "(UTC) or a date like 2025-12-01 (the end of that day)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_date(text: str, field: str = "date") -> date:
    """An effective date as people write it: 2025-09-01 or 01/09/2025 (day first)."""
    value = text.strip()
    try:
        if match := _DMY.fullmatch(value):
            day = date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
        elif _ISO.fullmatch(value):
            day = date.fromisoformat(value)
        else:
            raise ValueError(value)
    except ValueError:
        raise RuleError(field, f"{text!r} is not a date (use 2025-09-01 or 01/09/2025)") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise RuleError(field, f"{day} is outside {FIRST_YEAR}-{LAST_YEAR}")
    return day


def with_default_terms(explicit: dict[str, tuple[Period, ...]], first: date,
                       last: date) -> Calendar:
    """The recorded calendars, plus the default termly calendar for every academic year from
    ``first`` to ``last`` that has no calendar of its own and overlaps none that is recorded."""
    recorded = [p for ps in explicit.values() for p in ps]
    years = dict(explicit)
    for start in range(parse_year(academic_year_of(first)), parse_year(academic_year_of(last)) + 1):
        label = year_label(start)
        if label in years:
            continue
        terms = termly_periods(label)
        if not any(t.start <= r.end and r.start <= t.end for t in terms for r in recorded):
            years[label] = terms
    return Calendar.of(years)
