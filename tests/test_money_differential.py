"""Differential property tests: every payment run equals the oracle's, to the penny (issue 27).

Hypothesis writes ledger histories through the public commands (``Ledger``): schools of two
settings; hourly rates and tariffs for every financial year, revised later for the whole
year or from a day inside it (an in-year uplift), for every setting or a setting's own
bands; plans issued on hours and on bands; hours changes; transfers to a band with and
without protection; band changes; moves; ceasing; corrections of any of these; cushions (for
the transfers of the year they start in, or of another year); and payment runs in between,
in order, skipping ahead, again and for earlier periods, so that facts are backdated behind
runs already made. Calendars: the default terms, recorded half-terms for some academic years
(shares by school days), recorded months for every financial year (leap year 2027-28
included: 29 February 2028), or months holding their terms and closures (paid by school days
on roll).

After every run, its lines — (plan, school, period, component, kind, pence) — and its school
totals must equal the oracle's run (``tests/oracle.py``, in the policy the product follows,
``money_support.POLICY``: docs/rules.md), computed from the facts the test asked for
(``money_support.Model``), never from the product's functions. Each run is worked out twice:
with the fast paths off (every plan afresh, in one process) and through ``pay`` (settled
periods skipped, plans shared out over 2 or 3 forked processes).

Each example has a ledger of its own on the backend under test (the ``backend`` fixture: a
fixture-made ledger would be shared by every example). Counts of accepted and refused
commands are asserted over all the examples: a generator whose commands were mostly refused
would test little. The failures the search found are kept as regression tests at the end.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import FakeClock, new_location
from money_support import Driver, Model, full_lines, keyed, shared_over
from schema_check import validate_stored
from topup_ledger.domain import events as ev
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.store import EventStore

OAK, ELM, BEACON = "100001", "100002", "100003"
SCHOOLS = ((OAK, "mainstream"), (ELM, "mainstream"), (BEACON, "special"))
BANDS = ("B", "C", "D", "H")
PLANS = ("P1", "P2", "P3", "P4")
HOURS = tuple(Decimal(h) for h in ("5", "12.25", "12.5", "13.37", "20", "25", "32.5", "40"))
ONE_DAY = timedelta(days=1)
SCALE = max(1, int(os.environ.get("TOPUP_MONEY_EXAMPLES", "1")))  # more examples: a longer search
ACADEMIC = ("2025-26", "2026-27", "2027-28")
COMMANDS = ("issue", "hours", "transfer", "band", "move", "cease", "correct", "rate", "tariff", "cushion")
HALF_TERMS = (("ht1", (9, 1), (10, 31)), ("ht2", (11, 1), (12, 31)), ("ht3", (1, 1), (2, 14)),
              ("ht4", (2, 15), (3, 31)), ("ht5", (4, 1), (5, 31)), ("ht6", (6, 1), (8, 31)))
KINDS = (("pay",) * 8 + ("issue",) * 3 + ("transfer",) * 6 + ("hours",) * 2 + ("band",) * 3
         + ("move",) * 2 + ("cease",) + ("correct",) * 3 + ("rate",) + ("tariff",) * 2 + ("cushion",) * 2
         + ("protect",) * 2 + ("extend",) + ("unprotect",) + ("policy",))
PROTECTION_COMMANDS = ("protect", "extend", "unprotect", "policy")


def year_label(start: int) -> str:
    return f"{start}-{(start + 1) % 100:02d}"


class Calendar:
    """The calendar an example pays by: its periods in order and the days they cover."""

    def __init__(self, periods: list[tuple[str, date, date]]) -> None:
        self.periods = periods
        self.first, self.last = periods[0][1], periods[-1][2]

    @property
    def ids(self) -> list[str]:
        return [p for p, _, _ in self.periods]

    def interesting_days(self) -> list[date]:
        """Days where rules change: period edges, 1 April, the leap day and around it."""
        days = {d for _, start, end in self.periods for d in (start, end, end + ONE_DAY)}
        days |= {date(y, 4, 1) for y in range(2025, 2029)} | {date(y, 3, 31) for y in range(2026, 2029)}
        days |= {date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1)}
        return sorted(d for d in days if self.first <= d <= self.last)


def termly_periods(year: str) -> list[tuple[str, date, date]]:
    start = int(year[:4])
    return [(f"{year}/autumn", date(start, 9, 1), date(start, 12, 31)),
            (f"{year}/spring", date(start + 1, 1, 1), date(start + 1, 3, 31)),
            (f"{year}/summer", date(start + 1, 4, 1), date(start + 1, 8, 31))]


def month_rows(start_year: int, days: list[int]) -> list[tuple[str, date, date, int]]:
    names = ("apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", "jan", "feb", "mar")
    rows, first = [], date(start_year, 4, 1)
    for name, n in zip(names, days, strict=True):
        after = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        rows.append((name, first, after - ONE_DAY, n))
        first = after
    return rows


def half_term_rows(year: str, days: list[int]) -> list[tuple[str, date, date, int]]:
    start = int(year[:4])
    rows = []
    for (name, (m1, d1), (m2, d2)), n in zip(HALF_TERMS, days, strict=True):
        rows.append((name, date(start + (m1 < 9), m1, d1), date(start + (m2 < 9), m2, d2), n))
    return rows


def term_dates(data: st.DataObject, start_year: int) -> tuple[list[tuple[date, date]], list[date]]:
    """Two to four terms inside the financial year from 1 April ``start_year`` (with a weekend
    or a gap between them), and a few closed weekdays inside them."""
    draw = data.draw
    first, terms = date(start_year, 4, 1), []
    for _ in range(draw(st.integers(2, 4), label="terms")):
        begin = first + timedelta(days=draw(st.integers(0, 40), label="gap before a term"))
        end = begin + timedelta(days=draw(st.integers(0, 100), label="term days"))
        if end > date(start_year + 1, 3, 31):
            break
        terms.append((begin, end))
        first = end + timedelta(days=1)
    if not terms or all((b - a).days < 7 and all((a + timedelta(n)).weekday() >= 5
                                                 for n in range((b - a).days + 1)) for a, b in terms):
        terms = [(date(start_year, 9, 1), date(start_year, 12, 19))]
    weekdays = [a + timedelta(n) for a, b in terms for n in range((b - a).days + 1)
                if (a + timedelta(n)).weekday() < 5]
    closures = sorted(set(draw(st.lists(st.sampled_from(weekdays), max_size=4), label="closures")))
    if len(closures) == len(weekdays):
        closures = closures[:-1]
    return terms, closures


def set_up(driver: Driver, data: st.DataObject, mode: str) -> Calendar:
    """Schools, a calendar, an hourly rate and a tariff for every financial year it reaches."""
    draw = data.draw
    for urn, setting in SCHOOLS:
        assert driver.add_school(urn, setting)
    periods: list[tuple[str, date, date]] = []
    if mode in ("monthly", "school days"):
        years = [2025, 2026, 2027]
        for start in years:
            days = draw(st.lists(st.integers(0, 23), min_size=12, max_size=12).filter(any),
                        label="school days")
            rows = month_rows(start, days)
            if mode == "school days":  # the calendar holds its terms and closures
                terms, closures = term_dates(data, start)
                assert driver.set_school_day_calendar(year_label(start), [r[:3] for r in rows], terms,
                                                      closures, "we pay by school days on roll")
            else:
                assert driver.set_calendar(year_label(start), rows, "we pay monthly")
            periods += [(f"{year_label(start)}/{name}", first, end) for name, first, end, _ in rows]
        financial_years = [year_label(y) for y in years]
    else:
        recorded = draw(st.lists(st.booleans(), min_size=3, max_size=3), label="half-terms") \
            if mode == "half-terms" else [False] * 3
        if mode == "half-terms" and not any(recorded):
            recorded[draw(st.integers(0, 2), label="recorded year")] = True
        for year, halves in zip(ACADEMIC, recorded, strict=True):
            if halves:
                days = draw(st.lists(st.integers(0, 40), min_size=6, max_size=6).filter(any), label="days")
                rows = half_term_rows(year, days)
                assert driver.set_calendar(year, rows, "half-terms")
                periods += [(f"{year}/{name}", first, end) for name, first, end, _ in rows]
            else:
                periods += termly_periods(year)
        financial_years = [year_label(y) for y in range(2025, 2029)]
    for year in financial_years:
        hourly = draw(st.integers(1000, 1600), label="hourly")
        weeks = draw(st.sampled_from([Decimal(38), Decimal(39), Decimal("38.5")]), label="weeks")
        threshold = draw(st.sampled_from([600000, 550000]), label="threshold")
        assert driver.set_rate(year, hourly, weeks, threshold, "the year's rate")
        bands = {"B": draw(st.integers(250000, 350000), label="B"),
                 "C": draw(st.integers(400000, 600000), label="C"),
                 "D": draw(st.integers(600000, 900000), label="D"), "H": 300003}
        assert driver.set_tariff(year, bands, None, "the year's tariff")
        if draw(st.booleans(), label="special tariff"):
            assert driver.set_tariff(year, {"D": draw(st.integers(700000, 950000), label="special D")},
                                     "special", "special schools' own D")
    return Calendar(periods)


def a_day(data: st.DataObject, calendar: Calendar, first: date, last: date, label: str) -> date:
    """A day from ``first`` to ``last``: often one where a rule changes, else any."""
    inside = [d for d in calendar.interesting_days() if first <= d <= last]
    if inside and data.draw(st.booleans(), label=f"{label}: a boundary"):
        return data.draw(st.sampled_from(inside), label=label)
    return first + timedelta(days=data.draw(st.integers(0, max(0, (last - first).days)), label=label))


def in_year(data: st.DataObject, calendar: Calendar, year: str) -> date | None:
    """A revision for the whole financial year, or from a day inside it (an in-year uplift:
    the days before keep their value)."""
    if data.draw(st.booleans(), label="in-year revision"):
        return None
    start = int(year[:4])
    first, last = date(start, 4, 1), date(start + 1, 3, 31)
    inside = [d for d in calendar.interesting_days() if first < d <= last] + [date(start + 1, 1, 1)]
    if data.draw(st.booleans(), label="from a boundary"):
        return data.draw(st.sampled_from(sorted(inside)), label="revised from")
    return first + timedelta(days=data.draw(st.integers(1, (last - first).days), label="revised from"))


def hours_days(model: Model, ref: str) -> tuple[date, date] | None:
    """The first and last day a plan is on hours, if it ever is: from its issue to the day
    before it moves to a band (or ceases)."""
    ordered = model.ordered(ref)
    issued = ordered[0]
    if not isinstance(issued, ev.PlanIssued) or issued.hours is None:
        return None
    ends = [f.effective for f in ordered[1:] if isinstance(f, ev.TransferredToBand | ev.PlanCeased)]
    last = min(ends, default=date(2028, 8, 31) + ONE_DAY) - ONE_DAY
    return (issued.effective, last) if last >= issued.effective else None


def step(driver: Driver, data: st.DataObject, calendar: Calendar, kind: str, last: date) -> None:
    """One random command (the product may refuse it: the driver checks and counts), its
    effective dates up to ``last``: a little beyond the runs made so far, mostly behind them."""
    draw, model = data.draw, driver.model
    issued = [ref for ref in PLANS if ref in model.plans]
    first = calendar.first
    school = draw(st.sampled_from([urn for urn, _ in SCHOOLS]), label="school")
    band = draw(st.sampled_from(BANDS), label="band")
    hours = draw(st.sampled_from(HOURS), label="hours")
    if kind == "rate":
        years = sorted({f.year for f in model.reference if isinstance(f, ev.HourlyRateSet)})
        year = draw(st.sampled_from(years), label="year")
        driver.set_rate(year, draw(st.integers(1000, 1600), label="hourly"), Decimal(38),
                        draw(st.sampled_from([600000, 450000]), label="threshold"),
                        f"revised {len(model.reference)}", in_year(data, calendar, year))
        return
    if kind == "tariff":
        years = sorted({f.year for f in model.reference if isinstance(f, ev.TariffSet)})
        year = draw(st.sampled_from(years), label="year")
        named = draw(st.lists(st.sampled_from(BANDS), min_size=1, max_size=3, unique=True), label="bands")
        setting = draw(st.sampled_from([None, None, "special"]), label="setting")
        values = {b: draw(st.integers(150000, 950000), label=f"{b} value") for b in named}
        driver.set_tariff(year, values, setting, f"revised {len(model.reference)}",
                          in_year(data, calendar, year))
        return
    if kind == "cushion":
        # mostly where a plan moved to a band: a cushion elsewhere pays nothing
        moved = sorted({state.school for ref in issued for day in (last,)
                        if (state := model.day_state(ref, day)) is not None and state.transfer is not None})
        if moved and draw(st.integers(0, 4), label="where a plan moved to a band") > 0:
            school = draw(st.sampled_from(moved), label="cushioned school")
        start = a_day(data, calendar, first, last, "cushion from")
        until = calendar.last if draw(st.booleans(), label="cushion to the end") else \
            a_day(data, calendar, start, calendar.last, "cushion until")
        share = draw(st.sampled_from([Decimal(50), Decimal(100), Decimal("33.33"), Decimal("12.5")]),
                     label="share")
        # for the transfers of the year it starts in, or of another year
        year = draw(st.sampled_from([None, None, "2025-26", "2026-27"]), label="cushion's year")
        driver.set_cushion(school, start, until, share, f"cushion {len(model.reference)}", year)
        return
    if kind == "policy":
        prior = draw(st.sampled_from(ev.PROTECTION_PRIORS), label="protection prior")
        driver.set_protection_policy(prior, f"policy {len(model.reference)}")
        return
    if kind == "issue" or not issued:
        if len(issued) == len(PLANS):
            kind = "band"
        else:
            ref = PLANS[len(issued)]
            when = a_day(data, calendar, first, last, "issued from")
            basis = draw(st.sampled_from(["hours", "hours", "band"]), label="basis")
            plan_kind = draw(st.sampled_from(ev.PLAN_KINDS), label="kind")
            driver.issue(ref, school, when, hours=hours if basis == "hours" else None,
                         band=band if basis == "band" else None, kind=plan_kind)
            return
    if kind == "hours":  # a plan with days on hours, one of them
        on_hours = [ref for ref in issued if hours_days(model, ref) is not None]
        if on_hours:
            ref = draw(st.sampled_from(on_hours), label="plan on hours")
            first_day, last_day = hours_days(model, ref)  # type: ignore[misc]
            when = a_day(data, calendar, first_day, min(last, last_day), "from")
            driver.change_hours(ref, hours, when)
            return
    ref = draw(st.sampled_from(issued), label="plan")
    start, ceased = model.start(ref), model.ceased(ref)
    when = a_day(data, calendar, start, min(last, (ceased or last + ONE_DAY) - ONE_DAY), "from")
    state = model.day_state(ref, when)
    if kind == "band" and state is not None and state.basis == "hours":
        kind = "transfer"
    if kind == "transfer" and state is not None and state.basis == "band":
        kind = "band"
    if kind in ("protect", "extend", "unprotect"):
        # mostly a plan moved to a band from hours: the others are refused
        moved = [r for r in issued if any(isinstance(f, ev.TransferredToBand) for f in model.ordered(r))]
        if moved and draw(st.integers(0, 4), label="a plan moved to a band") > 0:
            ref = draw(st.sampled_from(moved), label="moved plan")
            start, ceased = model.start(ref), model.ceased(ref)
            when = a_day(data, calendar, start, min(last, (ceased or last + ONE_DAY) - ONE_DAY), "from")
            if kind == "protect":  # mostly from the transfer on
                moved_on = next(f.effective for f in model.ordered(ref)
                                if isinstance(f, ev.TransferredToBand))
                if when < moved_on or draw(st.booleans(), label="after the transfer"):
                    when = a_day(data, calendar, min(moved_on, last), last, "protected from")
            if kind == "unprotect":  # mostly a plan protected on some day
                still = [r for r in moved if any(d <= last for d in model.protected_days(r))]
                if still and draw(st.integers(0, 3), label="a protected plan") > 0:
                    ref = draw(st.sampled_from(still), label="plan to unprotect")
                    protected = [d for d in model.protected_days(ref) if d <= last]
                    when = draw(st.sampled_from(protected), label="no longer protected from")
            if kind == "extend":  # mostly a plan whose protection ran to its end date
                ran_out = [r for r in moved if running_to_its_date(model, r)]
                if ran_out and draw(st.integers(0, 3), label="protection that ran out") > 0:
                    ref = draw(st.sampled_from(ran_out), label="plan to extend")
                    when = max(model.protected_days(ref)) + ONE_DAY
        until = when + timedelta(days=draw(st.sampled_from([0, 30, 120, 400]), label="protected days"))
        if kind == "protect":
            driver.protect(ref, when, until, f"granted {n_facts(model)}")
        elif kind == "extend":
            driver.extend_protection(ref, until, f"extended {n_facts(model)}")
        else:
            driver.end_protection(ref, when, f"ended {n_facts(model)}")
        return
    if kind == "transfer":
        protect = draw(st.sampled_from([None, 0, 44, 120, 400, "period end"]), label="protect")
        until: date | None
        if protect == "period end":
            until = next((end for _, s, end in calendar.periods if s <= when <= end), None)
        else:
            until = None if protect is None else when + timedelta(days=int(protect))
        driver.transfer(ref, band, when, until)
    elif kind == "band":
        reason = draw(st.sampled_from(ev.BAND_CHANGE_REASONS), label="reason")
        driver.change_band(ref, band, when, reason)
    elif kind == "hours":
        driver.change_hours(ref, hours, when)
    elif kind == "move":
        driver.move(ref, school, when)
    elif kind == "cease":
        driver.cease(ref, when)
    elif kind == "correct":
        targets = [event_id for event_id, fact in model.plans[ref] if not isinstance(fact, ev.Corrected)]
        target = draw(st.sampled_from(targets), label="event")
        fact = dict(model.plans[ref])[target]
        fields = [name for name in ("effective", "band", "hours", "school") if hasattr(fact, name)]
        if isinstance(fact, ev.PlanIssued):
            fields = ["effective", "band", "hours", "school"]
        name = draw(st.sampled_from(fields), label="field")
        value = {"effective": a_day(data, calendar, first, last, "corrected from"), "band": band,
                 "hours": hours, "school": school}[name]
        driver.correct(ref, target, f"the {name} was wrong", **{name: value})
    else:  # pragma: no cover
        raise AssertionError(kind)


def running_to_its_date(model: Model, ref: str) -> bool:
    """Whether the plan's last protected day is its protection's own end date, with the plan
    still funded the day after (so an extension can follow on)."""
    days = model.protected_days(ref)
    if not days:
        return False
    state = model.day_state(ref, days[-1])
    after = model.day_state(ref, days[-1] + ONE_DAY)
    return state is not None and state.protected_until == days[-1] and after is not None \
        and after.basis == "band" and after.protected_until == days[-1]


def n_facts(model: Model) -> int:
    """How many plan facts the model holds: a reason that differs from every earlier one."""
    return sum(len(facts) for facts in model.plans.values())


def transfers_and_a_cushion(driver: Driver, data: st.DataObject, calendar: Calendar) -> None:
    """A start that reaches protection and the cushion: plans issued on hours at one school,
    each moved to a band (protected or not), and a cushion there."""
    draw = data.draw
    school = draw(st.sampled_from([urn for urn, _ in SCHOOLS]), label="school")
    early = calendar.periods[min(2, len(calendar.periods) - 1)][2]
    for ref in PLANS[:draw(st.integers(1, 3), label="plans moving to bands")]:
        issued = a_day(data, calendar, calendar.first, early, "issued from")
        # mostly hours that cost more than the band they move to: a loss for the cushion
        hours = draw(st.sampled_from((Decimal(25), Decimal("32.5"), Decimal(40), Decimal(12))), label="hours")
        driver.issue(ref, school, issued, hours=hours)
        later = calendar.periods[min(5, len(calendar.periods) - 1)][2]
        when = a_day(data, calendar, issued, later, "moved from")
        protect = draw(st.sampled_from([None, None, 30, 200]), label="protect")
        band = draw(st.sampled_from(("B", "H", "C")), label="band")
        driver.transfer(ref, band, when, None if protect is None else when + timedelta(days=protect))
    start = a_day(data, calendar, calendar.first, early, "cushion from")
    share = draw(st.sampled_from([Decimal(50), Decimal(100), Decimal("33.33")]), label="share")
    driver.set_cushion(school, start, calendar.last, share, "the first years of bands")


def history(driver: Driver, data: st.DataObject, calendar: Calendar, monkeypatch: pytest.MonkeyPatch,
            runs: Counter[str], kinds: tuple[str, ...] = KINDS) -> None:
    """A history of commands with runs in between, every run checked against the oracle."""
    processes = data.draw(st.sampled_from([2, 3]), label="processes")
    ids = calendar.ids
    upto = 0  # the next period to pay in order
    steps = data.draw(st.integers(min_value=8, max_value=24), label="steps")
    if kinds is not KINDS or data.draw(st.integers(0, 2), label="start with transfers and a cushion") > 0:
        transfers_and_a_cushion(driver, data, calendar)
    for n in range(steps):
        first = n == 0 and not driver.model.plans
        kind = "issue" if first else data.draw(st.sampled_from(kinds), label="kind")
        if kind != "pay":
            step(driver, data, calendar, kind, calendar.periods[min(upto + 1, len(ids) - 1)][2])
            continue
        how = data.draw(st.sampled_from(["next", "next", "skip", "again", "earlier"]), label="which run")
        if how == "next":
            index = min(upto, len(ids) - 1)
        elif how == "skip":
            index = min(upto + data.draw(st.integers(1, 4), label="skip"), len(ids) - 1)
        else:
            index = data.draw(st.integers(0, max(0, upto - 1)), label="earlier")
        upto = max(upto, index + 1)
        outcome = driver.pay(ids[index], monkeypatch, processes)
        runs["refused" if outcome.refused else "recorded" if outcome.result and outcome.result.recorded
             else "nothing new"] += 1
        event("run: " + ("refused" if outcome.refused else f"{len(outcome.lines)} lines"))
        for kind_of_line in {line[4] for line in outcome.lines}:
            runs[f"line: {kind_of_line}"] += 1
        if outcome.refused is None and data.draw(st.booleans(), label="again at once"):
            again = driver.pay(ids[index], monkeypatch, processes)
            assert again.lines == [] and again.result is not None and not again.result.recorded
    # and a last run for the last period reached, so that every history ends on one
    driver.pay(ids[min(max(upto, 1), len(ids)) - 1], monkeypatch, processes)


def fresh_driver(backend: str, tmp_path: Path) -> Driver:
    location = new_location(backend, tmp_path)
    EventStore(location, create=True).close()
    return Driver(Ledger(EventStore(location), clock=FakeClock()))


def differential(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, modes: list[str],
                 examples: int, kinds: tuple[str, ...] = KINDS) -> tuple[Driver, Counter[str]]:
    """Run ``examples`` histories; returns the counts over all of them."""
    totals = Driver(None)  # type: ignore[arg-type]  # only its counters are used
    runs: Counter[str] = Counter()

    @settings(max_examples=examples * SCALE, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        mode = data.draw(st.sampled_from(modes), label="calendar")
        driver = fresh_driver(backend, tmp_path)
        try:
            calendar = set_up(driver, data, mode)
            history(driver, data, calendar, monkeypatch, runs, kinds)
            validate_stored(driver.store)
        finally:
            driver.store.close()
            totals.accepted.update(driver.accepted)
            totals.refused.update(driver.refused)

    one()
    if os.environ.get("TOPUP_MONEY_STATS"):
        print(f"\naccepted {dict(totals.accepted)}\nrefused {dict(totals.refused)}\nruns {dict(runs)}")
    return totals, runs


def check_counts(totals: Driver, runs: Counter[str]) -> None:
    """Over every example the generated commands mostly did something: most were accepted;
    the commands every history leans on were each accepted, and all but two kinds at least;
    most runs paid something, regular lines and arrears among it. (Protection, cushion and
    claw-back lines are counted as hypothesis events: too few examples meet them every time
    for an assertion that never fails by chance; tests/test_money_worked.py pays each.)"""
    accepted, refused = sum(totals.accepted.values()), sum(totals.refused.values())
    assert accepted >= 2 * refused, (totals.accepted, totals.refused)
    for kind in ("issue", "transfer", "band", "correct", "rate", "tariff", "cushion"):
        assert totals.accepted[kind] > 0, (kind, totals.accepted)
    assert sum(totals.accepted[kind] > 0 for kind in COMMANDS) >= len(COMMANDS) - 2, totals.accepted
    assert runs["recorded"] > runs["refused"] + runs["nothing new"], runs
    assert runs["line: regular"] > 0 and runs["line: arrears"] > 0, runs


def test_termly_runs_pay_what_the_oracle_pays(backend: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    totals, runs = differential(backend, tmp_path, monkeypatch, ["termly"], examples=20)
    check_counts(totals, runs)


def test_recorded_calendars_pay_what_the_oracle_pays(backend: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    totals, runs = differential(backend, tmp_path, monkeypatch, ["monthly", "half-terms"], examples=16)
    check_counts(totals, runs)


def test_school_day_calendars_pay_what_the_oracle_pays(backend: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Monthly calendars holding their terms and closures: every period paid by school days
    on roll (docs/rules.md §2), plans and cushions alike."""
    totals, runs = differential(backend, tmp_path, monkeypatch, ["school days"], examples=12)
    check_counts(totals, runs)


# Protection as facts of its own, most of all: plans moved to bands, then protection granted,
# extended and ended early, the LA's policy frozen and recomputed, among the other commands.
PROTECTION_KINDS = (("pay",) * 6 + ("protect",) * 4 + ("extend",) * 3 + ("unprotect",) * 3
                    + ("policy",) * 2 + ("transfer", "band", "move", "cease", "correct", "hours", "rate"))


def test_protection_facts_pay_what_the_oracle_pays(backend: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    totals, runs = differential(backend, tmp_path, monkeypatch, ["termly", "monthly"], examples=16,
                                kinds=PROTECTION_KINDS)
    # Chance decides how many of each are accepted (a grant on a protected day, an extension
    # of protection a review ended, are refused): most kinds, and many in all, must be.
    accepted = [totals.accepted[kind] for kind in PROTECTION_COMMANDS]
    assert sum(n > 0 for n in accepted) >= 3 and sum(accepted) >= 8, (totals.accepted, totals.refused)
    assert runs["recorded"] > runs["refused"] + runs["nothing new"], runs


# Regression tests: the failures the search above found, shrunk by hand to a few facts.

def one_plan_paid_then_issued_a_year_later(ledger: Ledger) -> Driver:
    """P1 on B (£3,100) at Oak from 1 Sep 2025; the autumn run pays 310,000 × 4/12 =
    103,333.33 → 103,333p. Then a correction: P1 was issued from 1 Sep 2026."""
    driver = Driver(ledger)
    assert driver.add_school(OAK, "mainstream")
    for year in ("2025-26", "2026-27", "2027-28"):
        assert driver.set_rate(year, 1200, Decimal(38), 600000, "the year's rate")
        assert driver.set_tariff(year, {"B": 310000, "C": 500000}, None, "the year's tariff")
    assert driver.issue("P1", OAK, date(2025, 9, 1), band="B")
    autumn = pay(ledger, "2025-26/autumn")
    assert [line.amount for paid in autumn.school_paid for line in paid.lines] == [103333]
    assert driver.correct("P1", "P1/1", "issued a year later", effective=date(2026, 9, 1))
    return driver


def test_a_correction_moving_the_only_plan_a_year_later_claws_back_what_was_paid(ledger: Ledger) -> None:
    """Found by test_termly_runs_pay_what_the_oracle_pays (fixed: the calendar once started
    at the earliest issue date as corrected, so 2025-26 fell out of it and was never clawed
    back). After the correction P1 has no day in 2025-26, so 2025-26/autumn is due 0: the
    next run claws back −103,333p and pays 2026-27/autumn 103,333p."""
    one_plan_paid_then_issued_a_year_later(ledger)
    result = pay(ledger, "2026-27/autumn")
    assert keyed(result.school_paid) == [
        ("P1", OAK, "2025-26/autumn", "base", "clawback", -103333),
        ("P1", OAK, "2026-27/autumn", "base", "regular", 103333)]


def test_a_plan_said_to_start_a_year_earlier_then_later_again_has_that_year_clawed_back(
        ledger: Ledger) -> None:
    """Found by test_payment_properties (shrunk by hand). P1 on B (£3,100) at Oak, issued
    from 1 Sep 2026; corrected: from 1 Sep 2025; the autumn 2025-26 run pays 310,000 × 4/12
    = 103,333.33 → 103,333p. Corrected again: from 1 Sep 2026 after all. The 2026-27/autumn
    run claws the 103,333p back (the plan was never funded in 2025-26) and pays 103,333p,
    though neither the first recorded issue date nor the date as corrected now is in
    2025-26: the calendar reaches back to the earliest day the plan was ever said to start."""
    driver = Driver(ledger)
    assert driver.add_school(OAK, "mainstream")
    for year in ("2025-26", "2026-27", "2027-28"):
        assert driver.set_tariff(year, {"B": 310000}, None, "the year's tariff")
    assert driver.issue("P1", OAK, date(2026, 9, 1), band="B")
    assert driver.correct("P1", "P1/1", "issued a year earlier", effective=date(2025, 9, 1))
    assert keyed(pay(ledger, "2025-26/autumn").school_paid) == [
        ("P1", OAK, "2025-26/autumn", "base", "regular", 103333)]
    assert driver.correct("P1", "P1/1", "issued in 2026 after all", effective=date(2026, 9, 1))
    assert keyed(pay(ledger, "2026-27/autumn").school_paid) == [
        ("P1", OAK, "2025-26/autumn", "base", "clawback", -103333),
        ("P1", OAK, "2026-27/autumn", "base", "regular", 103333)]


def test_the_fast_paths_pay_what_a_full_recomputation_pays_when_an_earlier_plan_reopens_the_calendar(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by test_termly_runs_pay_what_the_oracle_pays. After the correction the
    2026-27/autumn run claws P1's 2025-26/autumn back (above). Then P2 is issued on C
    (£5,000) at Oak from 1 Sep 2025. The 2026-27/spring run, through ``pay`` (fast paths)
    and worked out afresh alike, claws nothing more back from P1 and pays:

    P1  2026-27/spring  310,000 × 7/12 = 180,833.33 → 180,833p, less 103,333p: 77,500p
    P2  2025-26/autumn  500,000 × 4/12 = 166,666.67 → 166,667p (arrears)
        2025-26/spring  × 7/12 = 291,666.67 → 291,667p: 125,000p (arrears)
        2025-26/summer  500,000p: 208,333p (arrears)
        2026-27/autumn  166,667p (arrears); 2026-27/spring 125,000p
    """
    driver = one_plan_paid_then_issued_a_year_later(ledger)
    pay(ledger, "2026-27/autumn")
    assert driver.issue("P2", OAK, date(2025, 9, 1), band="C")
    expected = sorted([
        ("P1", OAK, "2026-27/spring", "base", "regular", 77500),
        ("P2", OAK, "2025-26/autumn", "base", "arrears", 166667),
        ("P2", OAK, "2025-26/spring", "base", "arrears", 125000),
        ("P2", OAK, "2025-26/summer", "base", "arrears", 208333),
        ("P2", OAK, "2026-27/autumn", "base", "arrears", 166667),
        ("P2", OAK, "2026-27/spring", "base", "regular", 125000)])
    _, by_school = full_lines(ledger, "2026-27/spring", monkeypatch)
    assert sorted(keyed(by_school)) == expected
    shared_over(monkeypatch, 2)
    assert sorted(keyed(pay(ledger, "2026-27/spring").school_paid)) == expected


@pytest.mark.parametrize("then", ["a review to C", "a move to Elm"])
def test_a_review_on_the_transfer_day_leaves_the_cushion_as_it_was(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch, then: str) -> None:
    """Found by test_recorded_calendars_pay_what_the_oracle_pays (shrunk by hand; fixed in
    edb3938): a band change or a move with the transfer's own effective date dropped the plan
    from its school's cushion. P1, 25 h at Oak from 1 Sep 2025 (25 × 1,200 × 38 − 600,000 =
    540,000p), moves to B (310,000p) from 1 Oct 2025: a loss of 230,000p. Recorded next, with
    effect the same day: a review to C, or a move to Elm. Oak has a 50% cushion from 1 Sep
    2025 to 31 Aug 2026: 115,000p a year (docs/rules.md §11: later reviews and moves do not
    change it; a plan that moves away still counts for the school it left).

    autumn  115,000 × 4/12 = 38,333.33p → 38,333p to Oak (the product paid none)
    """
    driver = Driver(ledger)
    for urn in (OAK, ELM):
        assert driver.add_school(urn, "mainstream")
    assert driver.set_rate("2025-26", 1200, Decimal(38), 600000, "the year's rate")
    assert driver.set_tariff("2025-26", {"B": 310000, "C": 500000}, None, "the year's tariff")
    assert driver.issue("P1", OAK, date(2025, 9, 1), hours=Decimal(25))
    assert driver.transfer("P1", "B", date(2025, 10, 1), None)
    if then == "a review to C":
        assert driver.change_band("P1", "C", date(2025, 10, 1))
    else:
        assert driver.move("P1", ELM, date(2025, 10, 1))
    assert driver.set_cushion(OAK, date(2025, 9, 1), date(2026, 8, 31), Decimal(50), "first year of bands")
    lines = keyed(pay(ledger, "2025-26/autumn").school_paid)
    assert [line for line in lines if line[3] == "cushion"] == [
        ("", OAK, "2025-26/autumn", "cushion", "cushion", 38333)]


def test_the_prior_recorded_at_a_transfer_is_priced_at_the_rate_in_force_the_day_before(
        ledger: Ledger) -> None:
    """Found by test_termly_runs_pay_what_the_oracle_pays (shrunk; fixed in edb3938): the
    recorded prior was priced at the financial year's latest hourly rate, even one revised
    from a later day. P2, 20 h at Oak from 2 Sep 2025. 2026-27's rate is £10.00 an hour (38
    weeks, £6,000 threshold), uplifted to £10.01 from 2 Apr 2026; P2 moves to B from 2 Apr
    2026. docs/rules.md §10: the rate of the day before, 1 Apr, at £10.00: 20 × 1,000 × 38 −
    600,000 = 160,000p (the product recorded 20 × 1,001 × 38 − 600,000 = 160,760p)."""
    driver = Driver(ledger)
    assert driver.add_school(OAK, "mainstream")
    for year in ("2025-26", "2026-27"):
        assert driver.set_rate(year, 1000, Decimal(38), 600000, "the year's rate")
        assert driver.set_tariff(year, {"B": 250000}, None, "the year's tariff")
    assert driver.set_rate("2026-27", 1001, Decimal(38), 600000, "uplift", date(2026, 4, 2))
    assert driver.issue("P2", OAK, date(2025, 9, 2), hours=Decimal(20))
    ledger.transfer("P2", "B", date(2026, 4, 2))
    transfer = ledger.store.stream("plan:P2")[-1].fact
    assert isinstance(transfer, ev.TransferredToBand) and transfer.prior_annual == 160000
