"""The payment run's engine: every plan's lines worked out over the machine's cores and
spilled to disk, ready for the run to record (``services.payment_run``). Records nothing."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from topup_ledger.domain.calendar import ONE_DAY, Period
from topup_ledger.domain.errors import MissingTerms
from topup_ledger.domain.payments import PaidSoFar, cushion_lines, open_window
from topup_ledger.domain.payments import Window as PlanWindow
from topup_ledger.domain.plan import Plan, RecordedFact, earliest_issue
from topup_ledger.engine.cores import cores, shared_out, shares_of
from topup_ledger.engine.pricing import PricingCache
from topup_ledger.engine.run_lines import LinesFile, LineSpill, RunLines
from topup_ledger.engine.window import Window, calendar_for, window_for
from topup_ledger.storage.known import Known, read_reference
from topup_ledger.storage.pages import for_forked
from topup_ledger.storage.plan_streams import Plans, StoredPlans
from topup_ledger.storage.store import EventStore
from topup_ledger.storage.streams import plan_stream


class CalendarMoved(Exception):
    """A plan was said to start (by a correction) in an earlier year than the calendar the
    run began with: the run is worked out again from it."""

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



def compute_run(known: Known, period_id: str, window: Window, plans: Plans,
                store: EventStore | None = None) -> tuple[int, RunLines]:
    """The lines ``window`` asks for, each plan's worked out on its own, the plans shared
    out over the machine's cores; on disk, in a ``RunLines`` the caller closes.

    The payments of ``window.needed_runs`` are read from ``store`` by each share, only its
    own plans' lines, once it runs: no process holds every plan's payments, and none is
    handed to a forked child to copy. Without ``store``, ``known`` must hold them all."""
    names = plans.names()
    shares = shares_of(names)
    runs = window.needed_runs(known) if store is not None else set()
    lines = RunLines()
    pricing = PricingCache(known.terms)  # each forked share remembers its own

    def part(share: Sequence[str], forked: bool) -> tuple[Part, LinesFile]:
        if store is not None:
            compared_in = window.compared_in if len(shares) == 1 else within(share, window.compared_in)
            known.read_payments(for_forked(store) if forked else store, runs, compared_in)
        spill = lines.spill()
        try:
            found = plans_part(known, window, (plans.reopened() if forked else plans).read(share),
                               spill, pricing)
        finally:
            spilled = spill.close()
        return found, spilled

    try:
        parts = []
        for found, spilled in shared_out(shares, part):
            parts.append(found)
            lines.add(spilled)
        # A correction may have moved an issue earlier than the plans' issue dates as first
        # recorded: the calendar reaches back to it (docs/rules.md §2). It never narrows:
        # what was paid while a plan was said to start earlier is due back (§7).
        earliest = min((p.earliest for p in parts if p.earliest is not None), default=None)
        if (earliest is not None and earliest < window.calendar.periods[0].start
                and calendar_for(known, period_id, earliest) != window.calendar):
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
    earliest: date | None  # the earliest day any plan was ever said to start


def plans_part(known: Known, window: Window, facts: Iterable[tuple[str, list[RecordedFact]]],
               spill: LineSpill, pricing: PricingCache) -> Part:
    """The lines for the plans whose facts are given, written to ``spill``."""
    run_period, periods = window.run_period, window.periods
    part = Part([], [], None)
    gaps = calendar_gaps(periods)
    windows: dict[str | None, PlanWindow] = {}
    cushioned = set(known.cushions)
    for ref, plan_facts in facts:
        issued = earliest_issue(plan_facts)
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
        settled = window.settled_despite_revisions(ref, plan, settled)
        if settled is not None and settled.start >= run_period.start:
            continue  # nor do the terms revised since, on the days they price
        part.missing.extend(uncovered(plan, periods, gaps))
        key = settled.id if settled else None
        if key not in windows:
            windows[key] = open_window(periods, settled)
        paid = known.paid.get(plan.ref) or PaidSoFar()
        positions = {f.id: f.position for f in plan_facts}
        try:
            lines = pricing.plan_lines(plan, windows[key], run_period, paid, positions)
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


# Below this many events, each read takes a fraction of a second: not worth a process.
READ_SIDE_BY_SIDE_FROM = 100_000


def reference_and_plans(store: EventStore, upto: int) -> tuple[Known, StoredPlans]:
    """A run's two first reads, side by side on two cores: every plan's first event (here:
    they stay in this process, as they would cost more to send) and the reference facts
    with the chain since the last seal (in a forked child, which sends them back: a few
    megabytes): nothing else can start before both."""

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


