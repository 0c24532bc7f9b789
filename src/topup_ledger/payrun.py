"""Payment runs: pay every school what is due for a period and record why (issue 3).

A run reads the ledger as known at its start, works out every plan's lines with the rules
in ``domain.payments``, and records them atomically: one PaymentRunRecorded on the
``payments`` stream (whose version orders all runs, so two runs at once conflict instead of
paying twice), a Sealed event with the chain head it was computed from, and one SchoolPaid
event per school holding its lines. Nothing is recorded if anything it needs is missing.
"""

from __future__ import annotations

import gc
import itertools
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from .audit.chain import digest
from .domain import events as ev
from .domain.calendar import ONE_DAY, Calendar, Period, parse_year, with_default_terms
from .domain.errors import MissingTerms, RuleError
from .domain.payments import (
    cushion_lines,
    first_day_of_year,
    open_window,
    plan_lines,
    still_settled,
)
from .domain.plan import Plan, first_changed_day, issue_date
from .io.payment_files import write_run_files
from .known import Known, read_known
from .ledger import Ledger
from .store import ConflictError, EventStore, Recorded

PAYMENTS_STREAM = "payments"
SEALS_STREAM = "seals"


@dataclass
class RunResult:
    run_id: str
    period: str
    sequence: int
    seal: str
    position: int  # the ledger position of the run's record
    school_paid: list[ev.SchoolPaid] = field(default_factory=list)
    recorded: bool = True

    @property
    def supplementary(self) -> bool:
        return self.sequence > 1

    @property
    def total(self) -> int:
        return sum(line.amount for paid in self.school_paid for line in paid.lines)


def run_id_for(period_id: str, sequence: int) -> str:
    """'2025-26/autumn', 1 → '2025-26-autumn-r1': safe in file names and URLs."""
    return f"{period_id.replace('/', '-')}-r{sequence}"


@dataclass
class Window:
    """What a run for a period looks at: its calendar, and for each plan the last period
    known to be paid as due (the ``settled`` rule of ``domain.payments.plan_lines``)."""

    calendar: Calendar
    run_period: Period
    periods: tuple[Period, ...]
    settled: dict[str, Period | None]  # by plan stream
    new: set[str] = field(default_factory=set)  # plan streams issued since the last run

    def needed_runs(self, known: Known) -> set[str]:
        """The periods of the runs whose payments this run compares with due: a run pays
        its own and earlier periods, so the runs for periods up to the earliest that every
        plan has settled hold nothing this run looks at. A plan issued since the last run
        was never paid; a cushion compares every period, so it needs every run."""
        runs = {r.fact.period for _, r in known.runs}  # type: ignore[attr-defined]
        settled = [self.settled.get(ref) for ref in known.plan_facts if ref not in self.new]
        if known.cushions or None in settled:
            return runs
        if not settled:
            return set()
        earliest = min(settled, key=lambda p: p.start)  # type: ignore[union-attr]
        done = {p.id for p in self.calendar.periods if p.start <= earliest.start}
        return runs - done


def window_for(known: Known, period_id: str) -> Window:
    """The calendar up to ``period_id`` and what each plan has settled since the last run."""
    year, slash, _ = period_id.partition("/")
    if not slash:
        raise RuleError("period", f"{period_id!r} is not a period id like 2025-26/autumn")
    start = parse_year(year, "period")
    last = date(start + 1, 8, 31)
    # From the earliest start as corrected (a correction may move an issue date earlier).
    starts = [issue_date(facts) for facts in known.plan_facts.values()]
    calendar = with_default_terms(known.calendars, min([*starts, last]), last)
    run_period = calendar.period(period_id)
    window = Window(calendar, run_period, calendar.up_to(run_period), {})
    last_run = known.runs[-1] if known.runs else None
    if last_run is None:
        return window
    run_fact = last_run[1].fact
    assert isinstance(run_fact, ev.PaymentRunRecorded)
    last_position, last_period = run_fact.worked_out_at, run_fact.period
    if known.reference_changed_at > last_position:
        return window
    # A run for a later year than this one's calendar reaches settles nothing here.
    if not any(p.id == last_period for p in calendar.periods):
        return window
    paid_up_to = calendar.period(last_period)
    years = [year for year, sources in known.terms.sources.items()
             if sources and sources[-1][0] > last_position]
    terms_from = min(map(first_day_of_year, years), default=None)
    unchanged = still_settled(paid_up_to, calendar.periods, terms_from)
    for ref, facts in known.plan_facts.items():
        if facts[-1].position <= last_position:
            window.settled[ref] = unchanged
            continue
        # Facts recorded since the last run: only the days from the first one whose state
        # they change are unsettled.
        known_then = [f for f in facts if f.position <= last_position]
        if not known_then:  # issued since the last run: nothing of it was paid then
            window.new.add(ref)
            continue
        changed = first_changed_day(Plan(known_then).segments, Plan(facts).segments)
        changed_from = min((d for d in (changed, terms_from) if d is not None), default=None)
        window.settled[ref] = still_settled(paid_up_to, calendar.periods, changed_from)
    return window


def compute_run(known: Known, period_id: str, window: Window | None = None
                ) -> tuple[int, dict[str, list[ev.PaymentLine]]]:
    """The lines a run for ``period_id`` would pay now, by school; records nothing.

    ``known`` must hold the payments of ``window.needed_runs`` (``read_known`` reads them
    all unless asked not to)."""
    window = window or window_for(known, period_id)
    run_period, periods = window.run_period, window.periods
    by_school: dict[str, list[ev.PaymentLine]] = defaultdict(list)
    missing: list[str] = []
    gaps = calendar_gaps(periods)
    windows: dict[str | None, tuple[tuple[Period, ...], frozenset[str]]] = {}
    for ref, facts in known.plan_facts.items():
        settled = window.settled.get(ref)
        if settled is not None and settled.start >= run_period.start:
            continue  # paid as due up to this period, and nothing since changes that
        plan = Plan(facts)
        missing.extend(uncovered(plan, periods, gaps))
        key = settled.id if settled else None
        if key not in windows:
            windows[key] = open_window(periods, settled)
        try:
            lines = plan_lines(plan, periods, run_period, known.terms, known.paid[plan.ref],
                               known.terms.sources, known.positions, settled, windows[key])
        except MissingTerms as gap:
            missing.extend(gap.missing)
            continue
        for school, line in lines:
            by_school[school].append(line)
    if missing:
        raise MissingTerms(missing)
    if known.cushions:
        plans = known.plans()
        for school, cushion in sorted(known.cushions.items()):
            by_school[school].extend(cushion_lines(cushion, plans, periods, run_period,
                                                   known.terms, known.cushion_paid[school]))
    for lines in by_school.values():
        lines.sort(key=lambda line: line.plan)  # stable: each plan's periods stay in order
    # A school with nothing to pay (e.g. its cushion is settled) gets no SchoolPaid.
    return len(known.runs_for(period_id)) + 1, {s: ls for s, ls in by_school.items() if ls}


def calendar_gaps(periods: tuple[Period, ...]) -> list[tuple[date, date]]:
    """The days between consecutive periods that no period covers ([start, end))."""
    return [(a.end_exclusive, b.start) for a, b in itertools.pairwise(periods)
            if a.end_exclusive < b.start]


def uncovered(plan: Plan, periods: tuple[Period, ...],
              gaps: list[tuple[date, date]] | None = None) -> list[str]:
    """Days up to the end of ``periods`` on which the plan is funded but that no period of
    the calendar covers (e.g. a recorded calendar dropped a default year): the run cannot pay
    them, so it must refuse rather than leave them unpaid. ``gaps`` are the calendar's own
    (``calendar_gaps``), if already worked out."""
    if not plan.segments or not periods:
        return []
    funded_from = plan.segments[0].start
    funded_to = plan.segments[-1].end_exclusive or periods[-1].end_exclusive
    between = calendar_gaps(periods) if gaps is None else gaps
    missing = []
    for gap_start, gap_end in [(funded_from, periods[0].start), *between]:
        first, end = max(gap_start, funded_from), min(gap_end, funded_to)
        if first < end:
            missing.append(f"no payment period in the calendar covers {first} to "
                           f"{end - ONE_DAY} (plan {plan.ref})")
    return missing


def pay(ledger: Ledger, period_id: str) -> RunResult:
    """Record a payment run for the period, or say there is nothing new to pay."""
    with cycle_collection_paused():
        known = read_known(ledger.store, payments=False)
        window = window_for(known, period_id)
        known.read_payments(ledger.store, window.needed_runs(known))
        sequence, by_school = compute_run(known, period_id, window)
    return record_run(ledger, known, period_id, sequence, by_school)


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Reading a ledger builds millions of small objects and no reference cycles, so the
    cyclic garbage collector only rescans them again and again (a sixth of a national run):
    pause it while the run is worked out, as it was before if it was already off."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def record_run(ledger: Ledger, known: Known, period_id: str, sequence: int,
               by_school: dict[str, list[ev.PaymentLine]]) -> RunResult:
    """Record the lines ``compute_run`` worked out from ``known``, atomically with their seal;
    a supplementary run with nothing to pay records nothing."""
    store = ledger.store
    seal = digest(known.head, known.position)
    run_id = run_id_for(period_id, sequence)
    if sequence > 1 and not by_school:
        return RunResult(run_id_for(period_id, sequence - 1), period_id, sequence - 1, seal,
                         known.position, recorded=False)
    paid = [ev.SchoolPaid(run_id, period_id, school, tuple(lines))
            for school, lines in sorted(by_school.items())]
    total = sum(line.amount for p in paid for line in p.lines)
    now = ledger.clock()
    runs_version = store.version(PAYMENTS_STREAM)
    if runs_version != len(known.runs):
        raise ConflictError("another payment run was recorded while this one was being worked "
                            "out; nothing was recorded: run it again")
    batch = [
        Recorded(SEALS_STREAM, store.version(SEALS_STREAM) + 1, now,
                 ev.Sealed(known.head.hex(), known.position, f"payment run {run_id}")),
        Recorded(PAYMENTS_STREAM, runs_version + 1, now,
                 ev.PaymentRunRecorded(run_id, period_id, sequence, len(paid), total, seal)),
        *(Recorded(f"run:{run_id}", i + 1, now, p) for i, p in enumerate(paid)),
    ]
    # A national run is tens of thousands of school payments in one batch: the bulk path,
    # because the library's own insert stalls on PostgreSQL at that size.
    positions = store.append_many(batch)
    return RunResult(run_id, period_id, sequence, seal, positions[1], paid)


def write_files_for_run(store: EventStore, run_id: str, out: Path) -> list[Path]:
    """Write a run's payment files from its recorded events alone (byte-identical later)."""
    runs = [r for r in store.stream_recorded(PAYMENTS_STREAM)
            if isinstance(r.fact, ev.PaymentRunRecorded) and r.fact.run_id == run_id]
    if not runs:
        raise RuleError("run", f"no payment run {run_id} in the ledger")
    run = runs[0]
    paid = [r.fact for r in store.stream_recorded(f"run:{run_id}")]
    # A school's details never change once recorded, so today's names are the run's names.
    names = {r.fact.urn: r.fact.name  # type: ignore[attr-defined]
             for _, r in store.recorded(types=(ev.SchoolAdded.TYPE,))}
    return write_run_files(run.fact, paid, names, out)  # type: ignore[arg-type]
