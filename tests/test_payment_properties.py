"""THE invariant of payment runs, as a property (DESIGN §3 "Payment run"; issue 3).

Random histories — plans issued on hours or bands at three schools (two mainstream, one
special), hours changes, transfers to bands with and without protection, backdated band
changes, moves, cessations, corrections of any of these, tariff and hourly-rate revisions —
interleaved with payment runs for random terms of 2025-26 and 2026-27 in random order
(earlier and later terms, repeated runs). After EVERY run, for every plan and every term up
to the run's term: paid — the sum of every recorded SchoolPaid line for that plan, term,
school and component, read back from the ledger — equals due, computed afresh with
``domain.entitlement.dues`` over the calendar, to the penny. A refused command records
nothing; a run repeated with nothing new records nothing. Accepted and refused commands are
counted over all the examples, and most must be accepted (``check_tally``). (The expected
amounts here come from the product's own ``dues``: tests/test_money_differential.py checks
them against the oracle.)

Domain and service API only (Ledger + pay), on SQLite: a fresh ledger file per example.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import FakeClock
from schema_check import validate_stored
from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import with_default_terms
from topup_ledger.domain.entitlement import dues
from topup_ledger.domain.errors import RuleError
from topup_ledger.services.payment_run import RunResult, pay, run_id_for
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.known import read_known
from topup_ledger.storage.store import EventStore

SCHOOLS = (("100001", "mainstream"), ("100002", "mainstream"), ("100003", "special"))
BANDS = ("A", "B", "C", "D", "E")
TARIFF = {"A": 160000, "B": 310000, "C": 500000, "D": 700000, "E": 1000000}
YEARS = ("2025-26", "2026-27", "2027-28")  # financial years the terms below reach into
PERIODS = tuple(f"{year}/{term}" for year in ("2025-26", "2026-27")
                for term in ("autumn", "spring", "summer"))
PLANS = ("P1", "P2", "P3", "P4")
FIRST, LAST = date(2025, 9, 1), date(2027, 8, 31)
HORIZON = (LAST - FIRST).days + 1
HOURS = tuple(Decimal(h) for h in ("5", "12.5", "20", "25", "32.5"))
KINDS = ("issue",) * 2 + ("pay",) * 6 + ("band",) * 4 + ("move",) * 2 + ("cease", "hours") + (
    "correct",) * 3 + ("tariff", "tariff", "rate")


def new_ledger(folder: Path) -> Ledger:
    location = str(folder / f"property-{uuid.uuid4().hex[:12]}.sqlite")
    EventStore(location, create=True).close()
    ledger = Ledger(EventStore(location), clock=FakeClock())
    for urn, setting in SCHOOLS:
        ledger.add_school(urn, f"School {urn}", setting)
    for year in YEARS:
        ledger.set_tariff(year, TARIFF, reason="approved by the Schools Forum")
        ledger.set_rate(year, 1181, Decimal(38), 600000)
    return ledger


def day_between(start: date, end_exclusive: date, pick: int) -> date:
    return start + timedelta(days=pick % max(1, (end_exclusive - start).days))


def paid_from_events(store: EventStore) -> dict[str, dict[tuple[str, str, str], int]]:
    """plan → (period, school, component) → pence, summed from every SchoolPaid line."""
    paid: dict[str, dict[tuple[str, str, str], int]] = defaultdict(lambda: defaultdict(int))
    for _, recorded in store.recorded(types=(ev.SchoolPaid.TYPE,)):
        fact = recorded.fact
        assert isinstance(fact, ev.SchoolPaid)
        for line in fact.lines:
            paid[line.plan][(line.for_period, fact.school, line.component)] += line.amount
    return paid


def check_paid_equals_due(ledger: Ledger, run: RunResult) -> int:
    """After a run for ``run.period``: paid == due for every plan and term up to it.
    Returns how many (plan, term, school, component) amounts were compared."""
    known = read_known(ledger.store)
    plans = known.plans()
    last = date(int(run.period[:4]) + 1, 8, 31)
    calendar = with_default_terms(known.calendars, min([*(p.start for p in plans), last]), last)
    run_period = calendar.period(run.period)
    periods = calendar.up_to(run_period)
    from_events = paid_from_events(ledger.store)
    compared = 0
    for plan in plans:
        due = dues(plan, periods, known.terms)
        paid = from_events[plan.ref]
        assert {k: v for k, v in paid.items() if v} == {
            k: v for k, v in known.paid[plan.ref].amounts.items() if v}
        for period in periods:
            owed = due.get(period.id, {})
            keys = {*owed, *((s, c) for (p, s, c) in paid if p == period.id)}
            for school, component in keys:
                compared += 1
                assert paid.get((period.id, school, component), 0) == owed.get(
                    (school, component), 0), (plan.ref, period.id, school, component)
    return compared


def check_run(ledger: Ledger, run: RunResult, before: int, runs_before: int) -> None:
    """A run records a seal, its record and one SchoolPaid per school, or nothing at all."""
    after = ledger.store.max_position()
    if not run.recorded:
        assert after == before and run.school_paid == []
        assert run.run_id == run_id_for(run.period, runs_before)
        return
    assert after == before + 2 + len(run.school_paid)
    assert run.run_id == run_id_for(run.period, runs_before + 1)
    assert run.supplementary == (runs_before >= 1)
    order = {p: i for i, p in enumerate(PERIODS)}
    order.update({"2024-25/summer": -1})
    for paid in run.school_paid:
        assert paid.lines, "a school with nothing to pay gets no SchoolPaid"
        for line in paid.lines:
            assert line.amount != 0
            assert order.get(line.for_period, 99) <= order[run.period], line
            if line.for_period == run.period:
                assert line.kind == ("protection" if line.component == "protection" else "regular")
            else:
                assert line.kind == ("arrears" if line.amount > 0 else "clawback")


def try_command(ledger: Ledger, kind: str, data: st.DataObject, tally: Counter[str]) -> None:
    """One random command through ``do``: accepted (it recorded one fact, or nothing when it
    repeats the latest fact exactly) or refused (RuleError, recording nothing); counted."""
    store = ledger.store
    before = store.max_position()
    try:
        do(ledger, kind, data)
    except RuleError:
        assert store.max_position() == before, f"a refused {kind} recorded something"
        tally[f"refused {kind}"] += 1
        event(f"refused: {kind}")
        return
    recorded = store.max_position() - before
    assert recorded in (0, 1), (kind, recorded)
    tally[f"{'accepted' if recorded else 'repeated'} {kind}"] += 1
    event(f"recorded: {kind}" if recorded else f"repeated: {kind}")


def check_tally(tally: Counter[str], kinds: tuple[str, ...]) -> None:
    """Over all the examples, the generated commands mostly did something: most were
    accepted, and every kind of command was accepted at least once, so a refusal that
    became the rule (a broken command, a generator out of step) fails here."""
    accepted = sum(n for key, n in tally.items() if key.startswith("accepted "))
    refused = sum(n for key, n in tally.items() if key.startswith("refused "))
    assert accepted >= refused, dict(tally)
    for kind in kinds:
        assert tally[f"accepted {kind}"] > 0, (kind, dict(tally))


def test_after_every_run_paid_equals_due_for_every_plan_and_term(tmp_path: Path) -> None:
    tally: Counter[str] = Counter()

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def histories(data: st.DataObject) -> None:
        ledger = new_ledger(tmp_path)
        store = ledger.store
        runs: dict[str, int] = defaultdict(int)
        checked = 0
        try:
            steps = data.draw(st.integers(min_value=8, max_value=30), label="steps")
            for step in range(steps):
                kind = "issue" if step == 0 else data.draw(st.sampled_from(KINDS), label="kind")
                before = store.max_position()
                if kind == "pay":
                    period = data.draw(st.sampled_from(PERIODS), label="period")
                    run = pay(ledger, period)
                    check_run(ledger, run, before, runs[period])
                    runs[period] += run.recorded
                    tally["run recorded" if run.recorded else "run with nothing new"] += 1
                    checked += check_paid_equals_due(ledger, run)
                    event(f"run: {'recorded' if run.recorded else 'nothing new'}")
                    for kind_of_line in {line.kind for p in run.school_paid for line in p.lines}:
                        event(f"line: {kind_of_line}")
                    if data.draw(st.booleans(), label="run again"):
                        before = store.max_position()
                        again = pay(ledger, period)
                        assert not again.recorded
                        check_run(ledger, again, before, runs[period])
                    continue
                try_command(ledger, kind, data, tally)
            event(f"amounts compared: {min(checked // 25 * 25, 200)}+")
            tally["amounts compared"] += checked
            validate_stored(store)
        finally:
            store.close()

    histories()
    check_tally(tally, ("issue", "band", "move", "cease", "hours", "correct", "tariff", "rate"))
    assert tally["run recorded"] > tally["run with nothing new"], dict(tally)
    assert tally["amounts compared"] > 0


def do(ledger: Ledger, kind: str, data: st.DataObject) -> None:
    """One random command; it may be refused (RuleError), which ``try_command`` checks."""
    draw = data.draw
    pick = draw(st.integers(min_value=0, max_value=HORIZON * 3), label="day")
    if kind == "tariff":
        # a revision of every band of a year (for every setting, or special schools only)
        year = draw(st.sampled_from(YEARS), label="year")
        setting = draw(st.sampled_from([None, None, "special"]), label="setting")
        delta = draw(st.integers(min_value=-50000, max_value=80000), label="pence more")
        ledger.set_tariff(year, {b: p + delta for b, p in TARIFF.items()}, setting, "revision")
        return
    if kind == "rate":
        year = draw(st.sampled_from(YEARS), label="year")
        hourly = draw(st.integers(min_value=1000, max_value=1600), label="hourly")
        ledger.set_rate(year, hourly, Decimal(38), 600000, reason="revision")
        return
    issued = [r for r in PLANS if ledger.store.version(f"plan:{r}")]
    school = draw(st.sampled_from([urn for urn, _ in SCHOOLS]), label="school")
    band = draw(st.sampled_from(BANDS), label="band")
    hours = draw(st.sampled_from(HOURS), label="hours")
    if kind == "issue" or not issued:
        # mostly a new plan; sometimes one already issued, which must be refused
        ref = draw(st.sampled_from(PLANS), label="plan") if len(issued) == len(PLANS) or draw(
            st.integers(0, 9), label="reissue") == 0 else PLANS[len(issued)]
        when = day_between(FIRST, LAST, pick)
        if draw(st.booleans(), label="on band"):
            ledger.issue_plan(ref, f"PR-{ref}", school, when, band=band)
        else:
            ledger.issue_plan(ref, f"PR-{ref}", school, when, hours=hours)
        return
    ref = draw(st.sampled_from(issued), label="plan")
    plan = ledger.plan(ref)
    end = plan.ceased_from or LAST + timedelta(days=1)
    when = day_between(plan.start, end, pick)
    state = plan.state_on(when)
    on_hours = state is not None and state.basis == "hours"
    if kind == "band" and on_hours:  # the move to bands, protected or not
        protect = draw(st.sampled_from([None, 0, 45, 120, 400]), label="protect days")
        until = None if protect is None else when + timedelta(days=protect)
        ledger.transfer(ref, band, when, protect_until=until)
        event("recorded: transfer")
    elif kind == "band":
        reason = draw(st.sampled_from(ev.BAND_CHANGE_REASONS), label="reason")
        ledger.change_band(ref, band, when, reason)
    elif kind == "hours":
        ledger.change_hours(ref, hours, when, "review")  # refused on a band
    elif kind == "move":
        ledger.move(ref, school, when)
    elif kind == "cease":
        ledger.cease(ref, when, "needs met")
    elif kind == "correct":
        targets = sorted(plan.corrected)
        target = targets[draw(st.integers(min_value=0, max_value=len(targets) - 1), label="event")]
        fact = plan.corrected[target]
        field = draw(st.sampled_from(["effective", "band", "hours", "school"]), label="field")
        value: dict[str, object] = {
            "effective": {"effective": day_between(FIRST, LAST, pick)},
            "band": {"band": band}, "hours": {"hours": hours}, "school": {"school": school},
        }[field]
        if isinstance(fact, ev.PlanCeased) and field != "effective":
            value = {"effective": day_between(FIRST, LAST, pick)}
        ledger.correct(ref, target, f"the {field} was wrong", **value)  # type: ignore[arg-type]
    else:  # pragma: no cover
        raise AssertionError(kind)
