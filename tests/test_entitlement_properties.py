"""Properties of entitlement that must hold for any plan history (DESIGN §3 "Entitlement").

The reference for "exact" here is a day-by-day sum, independent of the stretch machinery:
for every day of a period on which the plan is funded, annual amount on that day × period
share ÷ days in the period.

Domain only: no store, no CLI.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import (
    Period,
    check_periods,
    financial_year_of,
    financial_years_within,
    school_day_periods,
    termly_periods,
)
from topup_ledger.domain.entitlement import dues, exact_due, placements, stretches
from topup_ledger.domain.money import round_half_up
from topup_ledger.domain.plan import Plan, RecordedFact
from topup_ledger.domain.rules import Terms

YEAR = "2025-26"
YEAR_START, YEAR_END = date(2025, 9, 1), date(2026, 8, 31)  # 365 days
DAYS_IN_YEAR = (YEAR_END - YEAR_START).days + 1
ONE_DAY = timedelta(days=1)
FINANCIAL_YEARS = ("2024-25", "2025-26", "2026-27")
BANDS = ("A", "B", "C", "D", "E")
SCHOOLS = {"100001": "mainstream", "100002": "special", "100003": "resourced", "100004": "mainstream"}

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Strategies.

pence = st.integers(min_value=0, max_value=2_000_000)
hours_st = st.integers(min_value=1, max_value=4000).map(lambda n: Decimal(n) / 100)  # 0.01-40.00
day_of_year = st.integers(min_value=0, max_value=DAYS_IN_YEAR - 1).map(lambda n: YEAR_START + n * ONE_DAY)


@st.composite
def calendars(draw: st.DrawFn) -> tuple[Period, ...]:
    """The default terms, months weighted by random school days, or a random partition
    of the year into periods with random shares adding up to 1."""
    kind = draw(st.sampled_from(["terms", "school-days", "random"]))
    if kind == "terms":
        periods = termly_periods(YEAR)
    elif kind == "school-days":
        months = []
        for i in range(12):
            first = date(2025 + (8 + i) // 12, (8 + i) % 12 + 1, 1)
            after = date(2025 + (9 + i) // 12, (9 + i) % 12 + 1, 1)
            months.append((first.strftime("%b").lower(), first, after - ONE_DAY,
                           draw(st.integers(min_value=1, max_value=23))))
        periods = school_day_periods(YEAR, months)
    else:
        cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=DAYS_IN_YEAR - 1), max_size=7)))
        bounds = [0, *cuts, DAYS_IN_YEAR]
        weights = [draw(st.integers(min_value=1, max_value=20)) for _ in bounds[1:]]
        periods = tuple(
            Period(YEAR_START + a * ONE_DAY, YEAR_START + (b - 1) * ONE_DAY, f"{YEAR}/p{i}",
                   Fraction(w, sum(weights)))
            for i, (a, b, w) in enumerate(zip(bounds[:-1], bounds[1:], weights, strict=True))
        )
    check_periods(YEAR, periods)
    return periods


@st.composite
def terms_st(draw: st.DrawFn, *, same_every_year: bool = False) -> Terms:
    """Schools, hourly rates and tariffs (with a special-school override) per financial year."""
    terms = Terms()
    for urn, setting in SCHOOLS.items():
        terms.apply(ev.SchoolAdded(urn, f"School {urn}", setting))
    years = FINANCIAL_YEARS[:1] if same_every_year else FINANCIAL_YEARS
    for year in years:
        rate = ev.HourlyRateSet(year, draw(st.integers(min_value=1, max_value=10_000)),
                                Decimal(draw(st.integers(min_value=2, max_value=104))) / 2,
                                draw(st.sampled_from([0, 600_000, draw(pence)])))
        general = ev.TariffSet(year, tuple((b, draw(pence)) for b in BANDS))
        special = ev.TariffSet(year, tuple((b, draw(pence)) for b in draw(
            st.lists(st.sampled_from(BANDS), unique=True, max_size=3))), "special")
        for fact in (rate, general, special):
            if same_every_year:
                for other in FINANCIAL_YEARS:
                    terms.apply(dataclasses.replace(fact, year=other))
            else:
                terms.apply(fact)
    return terms


def plan_of(facts: Sequence[ev.Fact]) -> Plan:
    return Plan([RecordedFact(f"P1/{n}", fact, n) for n, fact in enumerate(facts, start=1)])


@st.composite
def histories(draw: st.DrawFn, *, band_only: bool = False) -> Plan:
    """A plan issued on or before some day of the year, on hours or a band, with band or
    hours changes, a transfer to a band (perhaps protected), moves, perhaps a cease and a
    correction; facts recorded in a random order (backdating), as the ledger would accept."""
    school = draw(st.sampled_from(sorted(SCHOOLS)))
    start = draw(st.one_of(st.just(YEAR_START - 40 * ONE_DAY), day_of_year))
    on_hours = not band_only and draw(st.booleans())
    issue = ev.PlanIssued("P1", "pupil-1", school, start,
                          hours=draw(hours_st) if on_hours else None,
                          band=None if on_hours else draw(st.sampled_from(BANDS)))

    def days(first: date, last: date) -> st.SearchStrategy[date]:
        return st.integers(min_value=0, max_value=(last - first).days).map(lambda n: first + n * ONE_DAY)

    later = days(start, YEAR_END)
    # Hours facts come before the transfer, band facts from it on.
    transfer_on = draw(later) if on_hours else start
    changes: list[ev.Fact] = []
    if on_hours:
        if transfer_on > start:
            for day in draw(st.lists(days(start, transfer_on - ONE_DAY), max_size=3)):
                changes.append(ev.HoursChanged("P1", day, draw(hours_st)))
        protect = draw(st.one_of(st.none(), days(transfer_on, YEAR_END + 30 * ONE_DAY)))
        changes.append(ev.TransferredToBand("P1", transfer_on, draw(st.sampled_from(BANDS)),
                                            draw(pence), protect))
    for day in draw(st.lists(days(transfer_on, YEAR_END), max_size=4)):
        changes.append(ev.BandChanged("P1", day, draw(st.sampled_from(BANDS)), "annual-review"))
    # Moves: each to a school other than the one the plan is at just before (by date).
    moves = sorted(draw(st.lists(later, max_size=3, unique=True)))
    at = school
    for day in moves:
        at = draw(st.sampled_from(sorted(set(SCHOOLS) - {at})))
        changes.append(ev.PlacementMoved("P1", day, at))
    changes = draw(st.permutations(changes))  # recorded in any order
    facts: list[ev.Fact] = [issue, *changes]
    if draw(st.booleans()):
        facts.append(ev.PlanCeased("P1", draw(later), "ceased"))
    band_events = [i for i, f in enumerate(facts, start=1) if isinstance(f, ev.BandChanged)]
    if band_events and draw(st.booleans()):
        target = draw(st.sampled_from(band_events))
        facts.append(ev.Corrected("P1", f"P1/{target}", "typed the wrong band",
                                  band=draw(st.sampled_from(BANDS))))
    return plan_of(facts)


# The reference: day by day.


Amounts = dict[tuple[str, str], Fraction]


def exact_by_day(plan: Plan, periods: Sequence[Period], terms: Terms) -> dict[str, Amounts]:
    result: dict[str, Amounts] = {}
    for period in periods:
        exact: Amounts = defaultdict(Fraction)
        day = period.start
        while day <= period.end:
            state = plan.state_on(day)
            if state is not None:
                annual = terms.annual_amount(state, day)
                exact[(state.school, "base")] += annual.base * period.share / period.days
                exact[(state.school, "protection")] += annual.protection * period.share / period.days
            day += ONE_DAY
        result[period.id] = {k: v for k, v in exact.items() if v}
    return result


def with_totals(by_period: dict[str, dict[tuple[str, str], int]] | dict[str, Amounts]
                ) -> dict[str, dict[tuple[str, str], Fraction]]:
    """Each period's amounts with, per school, base and protection together as "total"."""
    result: dict[str, dict[tuple[str, str], Fraction]] = {}
    for period, amounts in by_period.items():
        found = {key: Fraction(amount) for key, amount in amounts.items()}
        for (school, component), amount in amounts.items():
            if component in ("base", "protection"):
                found[(school, "total")] = found.get((school, "total"), Fraction(0)) + amount
        result[period] = found
    return result


def totals(by_period: dict[str, dict[tuple[str, str], int]] | dict[str, dict[tuple[str, str], Fraction]]
           ) -> dict[tuple[str, str], Fraction]:
    summed: dict[tuple[str, str], Fraction] = defaultdict(Fraction)
    for amounts in by_period.values():
        for key, amount in amounts.items():
            summed[key] += amount
    return {k: v for k, v in summed.items() if v}


# (1) One school, one rate, a whole year: exactly the annual amount.


@PROPERTY
@given(periods=calendars(), terms=terms_st(same_every_year=True), data=st.data())
def test_one_rate_for_a_whole_year_is_paid_exactly_its_annual_amount(
        periods: tuple[Period, ...], terms: Terms, data: st.DataObject) -> None:
    school = data.draw(st.sampled_from(sorted(SCHOOLS)))
    start = data.draw(st.sampled_from([YEAR_START, date(2024, 9, 1), date(2025, 4, 1)]))
    if data.draw(st.booleans()):
        issue = ev.PlanIssued("P1", "pupil-1", school, start, hours=data.draw(hours_st))
    else:
        issue = ev.PlanIssued("P1", "pupil-1", school, start, band=data.draw(st.sampled_from(BANDS)))
    facts: list[ev.Fact] = [issue]
    if data.draw(st.booleans()):  # ceasing from the first day of the next year changes nothing
        facts.append(ev.PlanCeased("P1", YEAR_END + ONE_DAY, "left at the end of the year"))
    plan = plan_of(facts)
    state = plan.state_on(YEAR_START)
    assert state is not None
    annual = terms.annual_amount(state, YEAR_START).base
    due = dues(plan, periods, terms)
    paid = sum(amounts.get((school, "base"), 0) for amounts in due.values())
    assert paid == round_half_up(annual)
    assert all(set(amounts) <= {(school, "base")} for amounts in due.values())


# (2) Any history: the year's dues add up to the exact total rounded once, per school and
#     component, and no period is more than a penny from its exact amount.


@PROPERTY
@given(periods=calendars(), terms=terms_st(), plan=histories())
def test_a_years_dues_add_up_to_the_exact_total_rounded_once(
        periods: tuple[Period, ...], terms: Terms, plan: Plan) -> None:
    due = dues(plan, periods, terms)
    exact = exact_by_day(plan, periods, terms)
    # The stretches agree with the day-by-day sum, period by period.
    for period in periods:
        assert exact_due(stretches(plan, period, terms)) == exact[period.id]
    # Base and protection are rounded as one (docs/rules.md §6): the base, and base and
    # protection together, each add up to its exact total rounded once.
    paid = totals(with_totals(due))
    owed = totals(with_totals(exact))
    assert {k for k in paid if k[1] != "protection"} <= set(owed)
    for key, amount in owed.items():
        if key[1] != "protection":
            assert paid.get(key, 0) == round_half_up(amount), key
    for period in periods:
        paid_now, owed_now = with_totals({"": due.get(period.id, {})})[""], with_totals(
            {"": exact[period.id]})[""]
        for key in set(paid_now) | set(owed_now):
            difference = paid_now.get(key, 0) - owed_now.get(key, Fraction(0))
            # protection is the difference of two amounts each within a penny
            assert abs(difference) <= (2 if key[1] == "protection" else 1), (period.id, key, difference)


# (3) Splitting a stretch changes nothing: a "band change" to the same band (or an hours
#     change to the same hours) on any day gives the same dues.


@PROPERTY
@given(periods=calendars(), terms=terms_st(), plan=histories(), day=day_of_year)
def test_splitting_a_stretch_does_not_change_the_due(
        periods: tuple[Period, ...], terms: Terms, plan: Plan, day: date) -> None:
    state = plan.state_on(day)
    if state is None or state.prior_hours is not None:
        return  # a band change, even to the same band, ends protection (docs/rules.md §10)
    if state.basis == "band":
        assert state.band is not None
        same: ev.Fact = ev.BandChanged("P1", day, state.band, "other")
    else:
        assert state.hours is not None
        same = ev.HoursChanged("P1", day, state.hours, "confirmed at review")
    split = plan_of([r.fact for r in plan.facts] + [same])
    assert split.state_on(day) is not None
    assert dataclasses.replace(split.state_on(day), because="") == dataclasses.replace(state, because="")
    assert dues(split, periods, terms) == dues(plan, periods, terms)


# (4) A band change effective on a period's first day moves the whole period to the new rate.


@PROPERTY
@given(periods=calendars(), terms=terms_st(), data=st.data())
def test_a_band_change_on_a_periods_first_day_moves_the_whole_period(
        periods: tuple[Period, ...], terms: Terms, data: st.DataObject) -> None:
    period = data.draw(st.sampled_from(periods))
    school = data.draw(st.sampled_from(sorted(SCHOOLS)))
    old, new = data.draw(st.lists(st.sampled_from(BANDS), min_size=2, max_size=2, unique=True))
    plan = plan_of([
        ev.PlanIssued("P1", "pupil-1", school, date(2025, 4, 1), band=old),
        ev.BandChanged("P1", period.start, new, "annual-review"),
    ])
    found = stretches(plan, period, terms)
    # One stretch per financial year the period touches, all on the new band.
    assert [s.band_or_hours for s in found] == [new] * len(found)
    assert all(s.because == "P1/2" for s in found)
    assert found[0].start == period.start and found[-1].end_exclusive == period.end_exclusive
    assert sum(s.days for s in found) == period.days
    rate = terms.annual_amount(plan.state_on(period.start), period.start).base  # type: ignore[arg-type]
    if len(found) == 1:
        assert exact_due(found) == ({(school, "base"): rate * period.share} if rate else {})
    # The period before is wholly on the old band.
    before = [p for p in periods if p.end_exclusive == period.start]
    for p in before:
        assert {s.band_or_hours for s in stretches(plan, p, terms)} == {old}


@PROPERTY
@given(periods=calendars(), terms=terms_st(), plan=histories())
def test_placements_say_of_a_periods_days_what_its_priced_stretches_say(
        periods: tuple[Period, ...], terms: Terms, plan: Plan) -> None:
    """A payment line describes its days from ``placements`` (unpriced) rather than from
    ``stretches``: per school, the same days, bases, bands or hours, causing events and
    financial years, in the same order."""

    def described(found: Sequence[object]) -> dict[str, tuple[object, ...]]:
        by_school: dict[str, list[object]] = defaultdict(list)
        for s in found:
            by_school[s.school].append(s)  # type: ignore[attr-defined]
        return {school: (sum(s.days for s in here),
                         tuple(dict.fromkeys(s.basis for s in here)),
                         tuple(dict.fromkeys(s.band_or_hours for s in here)),
                         tuple(dict.fromkeys(s.because for s in here)),
                         frozenset(financial_year_of(s.start) for s in here),
                         frozenset(y for s in here
                                   for y in financial_years_within(s.start, s.end_exclusive)))
                for school, here in by_school.items()}

    for period in periods:
        priced = described(stretches(plan, period, terms))
        unpriced = described(placements(plan, period))
        assert {school: d[:4] for school, d in unpriced.items()} == {
            school: d[:4] for school, d in priced.items()}
        # A stretch is cut at each 1 April, so its start names every financial year it spans;
        # a placement spans them whole, and financial_years_within names them.
        assert {school: d[5] for school, d in unpriced.items()} == {
            school: d[4] for school, d in priced.items()}
