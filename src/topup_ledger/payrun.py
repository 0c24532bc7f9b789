"""Payment runs: pay every school what is due for a period and record why (issue 3).

A run reads the ledger as known at its start, works out every plan's lines with the rules
in ``domain.payments``, and records them atomically: one PaymentRunRecorded on the
``payments`` stream (whose version orders all runs, so two runs at once conflict instead of
paying twice), a Sealed event with the chain head it was computed from, and one SchoolPaid
event per school holding its lines. Nothing is recorded if anything it needs is missing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

from . import collector
from .audit.chain import digest
from .cores import cores, shared_out, shares_of
from .domain import events as ev
from .domain.calendar import ONE_DAY, Calendar, Period, parse_year, with_default_terms
from .domain.errors import MissingTerms, RuleError
from .domain.payments import (
    PaidSoFar,
    cushion_lines,
    first_day_of_year,
    first_repriced_day,
    open_window,
    plan_lines,
    still_settled,
)
from .domain.plan import Plan, RecordedFact, first_changed_day, issue_date
from .io.payment_files import write_run_files
from .known import Known, read_reference
from .ledger import Ledger, plan_stream, school_stream
from .plan_streams import Plans, StoredPlans
from .run_lines import LineSpill, RunLines, SchoolTotal, Spilled
from .store import ConflictError, EventStore, Recorded
from .stored_pages import StoredPages, for_forked

PAYMENTS_STREAM = "payments"
SEALS_STREAM = "seals"


@dataclass
class RunResult:
    run_id: str
    period: str
    sequence: int
    seal: str
    position: int  # the ledger position of the run's record
    schools: list[SchoolTotal] = field(default_factory=list)  # in school order
    recorded: bool = True
    store: EventStore | None = field(default=None, repr=False, compare=False)

    @property
    def supplementary(self) -> bool:
        return self.sequence > 1

    @property
    def total(self) -> int:
        return sum(school.pence for school in self.schools)

    @cached_property
    def school_paid(self) -> list[ev.SchoolPaid]:
        """The run's school payments, read back from the ledger (a national run's are over
        a million lines: read them a page at a time with ``run_payments`` instead)."""
        if not self.recorded or self.store is None:
            return []
        return list(run_payments(self.store, self.run_id))


def run_id_for(period_id: str, sequence: int) -> str:
    """'2025-26/autumn', 1 → '2025-26-autumn-r1': safe in file names and URLs."""
    return f"{period_id.replace('/', '-')}-r{sequence}"


@dataclass
class Window:
    """What a run for a period looks at: its calendar, and for each plan the last period
    known to be paid as due (the ``settled`` rule of ``domain.payments.plan_lines``).

    Most plans are unchanged since the last run and share ``unchanged``; only the plans
    written to since have a ``settled`` of their own, and a plan issued since has none."""

    calendar: Calendar
    run_period: Period
    periods: tuple[Period, ...]
    plans: int  # how many plans the run looks at
    unchanged: Period | None = None
    settled: dict[str, Period | None] = field(default_factory=dict)  # by plan stream
    new: set[str] = field(default_factory=set)  # plan streams issued since the last run
    # The last run's period, and from when each basis's terms were revised since that run
    # (``domain.payments.first_repriced_day``): ``unchanged`` is what every plan unchanged
    # since has settled, whatever its basis; ``narrowed`` what one such plan has.
    paid_up_to: Period | None = None
    revised_from: dict[str, date] = field(default_factory=dict)

    def settled_for(self, plan: str) -> Period | None:
        if plan in self.new:
            return None
        return self.settled.get(plan, self.unchanged)

    def narrowed(self, stream: str, plan: Plan, settled: Period | None) -> Period | None:
        """``settled`` (``settled_for(stream)``) for a plan unchanged since the last run, as
        far as the terms revised since can reprice its days: a plan on hours throughout has
        settled every paid period despite a tariff revision."""
        if (not self.revised_from or self.paid_up_to is None or stream in self.new
                or stream in self.settled):
            return settled
        return still_settled(self.paid_up_to, self.calendar.periods,
                             first_repriced_day(plan, self.revised_from))

    def compared_in(self, run_period: str) -> Callable[[str], bool] | None:
        """Which plans (by ref) a run for ``run_period`` may have paid for a period this run
        looks at again, one after the plan's settled period (None: every plan)."""
        paid_in = next((p for p in self.calendar.periods if p.id == run_period), None)
        if paid_in is None:
            return None
        start = paid_in.start
        # Most plans are unchanged since the last run: one answer for all of them.
        unchanged = self.unchanged is None or start > self.unchanged.start

        def compared(plan: str) -> bool:
            stream = plan_stream(plan)
            if stream not in self.settled and stream not in self.new:
                return unchanged
            settled = self.settled_for(stream)
            return settled is None or start > settled.start

        return compared

    def needed_runs(self, known: Known) -> set[str]:
        """The periods of the runs whose payments this run compares with due: a run pays
        its own and earlier periods, so the runs for periods up to the earliest that every
        plan has settled hold nothing this run looks at. A plan issued since the last run
        was never paid; a cushion compares every period, so it needs every run."""
        runs = {r.fact.period for _, r in known.runs}  # type: ignore[attr-defined]
        settled = list(self.settled.values())
        if self.plans > len(self.new) + len(self.settled):
            settled.append(self.unchanged)
        if known.cushions or None in settled:
            return runs
        if not settled:
            return set()
        earliest = min(settled, key=lambda p: p.start)  # type: ignore[union-attr]
        done = {p.id for p in self.calendar.periods if p.start <= earliest.start}
        return runs - done


def calendar_for(known: Known, period_id: str, first: date | None) -> Calendar:
    """The calendar from the academic year of ``first`` (the earliest issue date) to the
    end of the run's year: the recorded calendars, and the default terms elsewhere."""
    year, slash, _ = period_id.partition("/")
    if not slash:
        raise RuleError("period", f"{period_id!r} is not a period id like 2025-26/autumn")
    last = date(parse_year(year, "period") + 1, 8, 31)
    return with_default_terms(known.calendars, min(first or last, last), last)


def window_for(known: Known, period_id: str, plans: Plans, first: date | None = None
               ) -> Window:
    """The calendar up to ``period_id`` and what each plan has settled since the last run.
    ``first`` is the earliest issue date, if known better than ``plans.first_issued()``."""
    calendar = calendar_for(known, period_id, plans.first_issued() if first is None else first)
    run_period = calendar.period(period_id)
    window = Window(calendar, run_period, calendar.up_to(run_period), plans.count())
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
    revised_from: dict[str, date] = {}
    for (basis, year), position in known.terms.set_at.items():
        if position > last_position:
            day = first_day_of_year(year)
            revised_from[basis] = min(revised_from.get(basis, day), day)
    terms_from = min(revised_from.values(), default=None)
    window.unchanged = still_settled(paid_up_to, calendar.periods, terms_from)
    window.paid_up_to, window.revised_from = paid_up_to, revised_from
    window.new = plans.issued_after(last_position)
    # Facts recorded since the last run: only the days from the first one whose state they
    # change are unsettled. Each plan is worked out on its own, so the plans are shared out
    # over the cores as the run's own work is; a share sends back period ids, not periods.
    written = sorted(plans.written_after(last_position) - window.new)

    def settle(share: Sequence[str], forked: bool) -> dict[str, str | None]:
        settled = {}
        for ref, facts in (plans.reopened() if forked else plans).read(share):
            known_then = [f for f in facts if f.position <= last_position]
            plan = Plan(facts)
            changed = first_changed_day(Plan(known_then).segments, plan.segments)
            # Before ``changed`` the plan's days are as they were: the same basis then and now.
            repriced = first_repriced_day(plan, revised_from)
            changed_from = min((d for d in (changed, repriced) if d is not None), default=None)
            period = still_settled(paid_up_to, calendar.periods, changed_from)
            settled[ref] = None if period is None else period.id
        return settled

    by_id = {p.id: p for p in calendar.periods}
    for share in shared_out(shares_of(written, PLANS_PER_CORE), settle):
        window.settled.update((ref, None if i is None else by_id[i]) for ref, i in share.items())
    return window


class CalendarMoved(Exception):
    """The earliest issue date as corrected starts the calendar in another year than the
    date the run began with: the run is worked out again from it."""

    def __init__(self, first: date) -> None:
        super().__init__(first)
        self.first = first


def work_out(known: Known, period_id: str, plans: Plans, store: EventStore | None
             ) -> tuple[int, RunLines]:
    """The lines a run for ``period_id`` would pay now, on disk (close them when done);
    records nothing. Reads the payments it compares with from ``store`` (None: ``known``
    holds them all)."""
    first = plans.first_issued()
    while True:
        window = window_for(known, period_id, plans, first)
        try:
            return compute_run(known, period_id, window, plans, store)
        except CalendarMoved as moved:
            first = moved.first
            known.forget_payments()  # read for the other calendar's window


# Below this many plans a share, a forked process costs more than it saves. A county's
# 8,000 plans in two shares: its slowest run 2.2-4.1 s in one process, 1.7-2.3 s in two.
PLANS_PER_CORE = 2_000


def compute_run(known: Known, period_id: str, window: Window, plans: Plans,
                store: EventStore | None = None) -> tuple[int, RunLines]:
    """The lines ``window`` asks for, each plan's worked out on its own, the plans shared
    out over the machine's cores; on disk, in a ``RunLines`` the caller closes.

    The payments of ``window.needed_runs`` are read from ``store`` by each share, only its
    own plans' lines, once it runs: no process holds every plan's payments, and none is
    handed to a forked child to copy. Without ``store``, ``known`` must hold them all."""
    names = plans.names()
    shares = shares_of(names, PLANS_PER_CORE)
    runs = window.needed_runs(known) if store is not None else set()
    lines = RunLines()

    def part(share: Sequence[str], forked: bool) -> tuple[Part, Spilled]:
        if store is not None:
            compared_in = window.compared_in if len(shares) == 1 else within(share, window.compared_in)
            known.read_payments(for_forked(store) if forked else store, runs, compared_in)
        spill = lines.spill()
        try:
            found = plans_part(known, window, (plans.reopened() if forked else plans).read(share),
                               spill)
        finally:
            spilled = spill.close()
        return found, spilled

    try:
        parts = []
        for found, spilled in shared_out(shares, part):
            parts.append(found)
            lines.add(spilled)
        earliest = min((p.earliest for p in parts if p.earliest is not None), default=None)
        if earliest is not None and calendar_for(known, period_id, earliest) != window.calendar:
            raise CalendarMoved(earliest)
        missing = [gap for part in parts for gap in part.missing]
        if missing:
            raise MissingTerms(missing)
        at_cushioned = [plan for part in parts for plan in part.at_cushioned]
        spill = lines.spill()
        try:
            for school, cushion in sorted(known.cushions.items()):
                for line in cushion_lines(cushion, at_cushioned, window.periods,
                                          window.run_period, known.terms,
                                          known.cushion_paid[school]):
                    spill.add(school, line)
        finally:
            lines.add(spill.close())
    except BaseException:
        lines.close()
        raise
    return len(known.runs_for(period_id)) + 1, lines


def within(share: Sequence[str], compared_in: Callable[[str], Callable[[str], bool] | None]
           ) -> Callable[[str], Callable[[str], bool]]:
    """``compared_in`` narrowed to the plans of ``share`` (plan streams: a run of them in
    name order, so a plan is in it if its stream lies between the first and the last)."""
    first, last = share[0], share[-1]

    def compared(period: str) -> Callable[[str], bool]:
        keep = compared_in(period)
        if keep is None:
            return lambda plan: first <= plan_stream(plan) <= last
        return lambda plan: first <= plan_stream(plan) <= last and keep(plan)

    return compared


@dataclass
class Part:
    """What the run must know of some of the plans, whose lines went to a ``LineSpill``."""

    missing: list[str]  # days or terms the run cannot price
    at_cushioned: list[Plan]  # the plans at a school with a cushion
    earliest: date | None  # the earliest issue date, as corrected


def plans_part(known: Known, window: Window, facts: Iterable[tuple[str, list[RecordedFact]]],
               spill: LineSpill) -> Part:
    """The lines for the plans whose facts are given, written to ``spill``."""
    run_period, periods = window.run_period, window.periods
    part = Part([], [], None)
    gaps = calendar_gaps(periods)
    windows: dict[str | None, tuple[tuple[Period, ...], frozenset[str]]] = {}
    cushioned = set(known.cushions)
    for ref, plan_facts in facts:
        issued = issue_date(plan_facts)
        part.earliest = issued if part.earliest is None else min(part.earliest, issued)
        settled = window.settled_for(ref)
        plan = None
        if cushioned:
            plan = Plan(plan_facts)
            if cushioned.intersection(plan.schools()):
                part.at_cushioned.append(plan)
        if settled is not None and settled.start >= run_period.start:
            continue  # paid as due up to this period, and nothing since changes that
        plan = plan or Plan(plan_facts)
        settled = window.narrowed(ref, plan, settled)
        if settled is not None and settled.start >= run_period.start:
            continue  # nor do the terms revised since, on the days they price
        part.missing.extend(uncovered(plan, periods, gaps))
        key = settled.id if settled else None
        if key not in windows:
            windows[key] = open_window(periods, settled)
        paid = known.paid.get(plan.ref) or PaidSoFar()
        positions = {f.id: f.position for f in plan_facts}
        try:
            lines = plan_lines(plan, periods, run_period, known.terms, paid,
                               known.terms.sources, positions, settled, windows[key])
        except MissingTerms as gap:
            part.missing.extend(gap.missing)
            continue
        if not part.missing:  # a refused run records nothing: no need to keep its lines
            for school, line in lines:
                spill.add(school, line)
    return part


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
    store = ledger.store
    with collector.paused():
        upto = store.max_position()
        known, plans = reference_and_plans(store, upto)
        try:
            sequence, lines = work_out(known, period_id, plans, store)
        finally:
            plans.close()
    with lines:
        return record_run(ledger, known, period_id, sequence, lines)


# Below this many events, each read takes a fraction of a second: not worth a process.
READ_SIDE_BY_SIDE_FROM = 100_000


def reference_and_plans(store: EventStore, upto: int) -> tuple[Known, StoredPlans]:
    """A run's two first reads, side by side on two cores: every plan's first event (here:
    they stay in this process, as they would cost more to send) and the reference facts
    with the chain since the last seal (in a forked child, which sends them back: a few
    megabytes). Nationally each took 2-3 s, and nothing else could start before both."""

    opened: list[StoredPlans] = []

    def read(what: str, forked: bool) -> StoredPlans | Known:
        if what == "plans":
            opened.append(StoredPlans(store, upto))
            return opened[-1]
        reading = for_forked(store) if forked else store
        try:
            return read_reference(reading, upto)
        finally:
            if reading is not store:
                reading.close()

    parts = ("plans", "reference")
    side_by_side = cores() > 1 and upto >= READ_SIDE_BY_SIDE_FROM
    try:
        plans, known = shared_out(parts, read) if side_by_side else [read(p, False) for p in parts]
    except BaseException:
        for reader in opened:  # the reference could not be read: let the plans go
            reader.close()
        raise
    assert isinstance(plans, StoredPlans) and isinstance(known, Known)
    return known, plans


def record_run(ledger: Ledger, known: Known, period_id: str, sequence: int,
               lines: RunLines) -> RunResult:
    """Record the lines ``compute_run`` worked out from ``known``, atomically with their seal;
    a supplementary run with nothing to pay records nothing."""
    store = ledger.store
    seal = digest(known.head, known.position)
    run_id = run_id_for(period_id, sequence)
    schools = lines.totals()
    if sequence > 1 and not schools:
        return RunResult(run_id_for(period_id, sequence - 1), period_id, sequence - 1, seal,
                         known.position, recorded=False, store=store)
    total = sum(school.pence for school in schools)
    now = ledger.clock()
    runs_version = store.version(PAYMENTS_STREAM)
    if runs_version != len(known.runs):
        raise ConflictError("another payment run was recorded while this one was being worked "
                            "out; nothing was recorded: run it again")
    head = [
        Recorded(SEALS_STREAM, store.version(SEALS_STREAM) + 1, now,
                 ev.Sealed(known.head.hex(), known.position, f"payment run {run_id}")),
        Recorded(PAYMENTS_STREAM, runs_version + 1, now,
                 ev.PaymentRunRecorded(run_id, period_id, sequence, len(schools), total, seal)),
    ]
    paid = (Recorded(f"run:{run_id}", i, now, payment)
            for i, payment in enumerate(lines.payments(run_id, period_id), start=1))
    # A national run is tens of thousands of school payments in one batch: the bulk path,
    # because the library's own insert stalls on PostgreSQL at that size; it inserts them as
    # they are read back, one school's lines at a time, each written from its lines' bytes.
    positions = store.append_many(itertools.chain(head, paid))
    return RunResult(run_id, period_id, sequence, seal, positions[1], schools, store=store)


def write_files_for_run(store: EventStore, run_id: str, out: Path) -> list[Path]:
    """Write a run's payment files from its recorded events alone (byte-identical later)."""
    runs = [r for r in store.stream_recorded(PAYMENTS_STREAM)
            if isinstance(r.fact, ev.PaymentRunRecorded) and r.fact.run_id == run_id]
    if not runs:
        raise RuleError("run", f"no payment run {run_id} in the ledger")
    run = runs[0].fact
    assert isinstance(run, ev.PaymentRunRecorded)
    return write_run_files(run, run_payments(store, run_id), school_names(store), out)


SCHOOLS_PER_PAGE = 200  # a national school's payment has tens of lines, a large one hundreds


def run_payments(store: EventStore, run_id: str) -> Iterator[ev.SchoolPaid]:
    """A run's school payments in the order recorded (by school), a few hundred at a time:
    a national run records over a million lines."""
    pages = StoredPages(store)
    try:
        for page in pages.stream_pages(f"run:{run_id}", store.max_position(), SCHOOLS_PER_PAGE):
            for row in page:
                fact = store.mapper.to_domain_event(row).fact
                assert isinstance(fact, ev.SchoolPaid)
                yield fact
    finally:
        pages.close()


def school_names(store: EventStore) -> dict[str, str]:
    """Every school's name, read from the first event of its own stream (``school:URN``).
    A school's details never change once recorded, so today's names are the run's names."""
    pages = StoredPages(store)
    names: dict[str, str] = {}
    try:
        for row in pages.first_events(school_stream(""), store.max_position()):
            if row.topic == ev.SchoolAdded.TYPE:
                fact = store.mapper.to_domain_event(row).fact
                names[fact.urn] = fact.name
    finally:
        pages.close()
    return names
