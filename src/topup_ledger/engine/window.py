"""What a payment run looks at again: its calendar, and for each plan the last period still
paid exactly as due since the last run (``docs/rules.md`` §8)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import Calendar, Period, parse_year
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.plan import Plan
from topup_ledger.domain.settlement import Revisions, settled_plan, still_settled
from topup_ledger.engine.cores import shared_out, shares_of
from topup_ledger.storage.known import Known
from topup_ledger.storage.plan_streams import Plans
from topup_ledger.storage.streams import plan_stream


@dataclass
class Window:
    """What a run for a period looks at: its calendar, and for each plan the last period
    known to be paid as due (``domain.settlement``).

    Most plans are unchanged since the last run and share ``settled_unchanged``; the plans
    written to since have theirs in ``settled_changed``, and a plan issued since has none."""

    calendar: Calendar
    run_period: Period
    periods: tuple[Period, ...]
    plans: int  # how many plans the run looks at
    settled_unchanged: Period | None = None
    settled_changed: dict[str, Period | None] = field(default_factory=dict)  # by plan stream
    new: set[str] = field(default_factory=set)  # plan streams issued since the last run
    # The last run's period, and the terms revised since that run: ``settled_unchanged``
    # is what every plan unchanged since has settled, whatever its basis;
    # ``settled_despite_revisions`` what one such plan has, given the days they reprice.
    paid_up_to: Period | None = None
    revisions: Revisions = field(default_factory=Revisions)

    def settled_for(self, plan: str) -> Period | None:
        if plan in self.new:
            return None
        return self.settled_changed.get(plan, self.settled_unchanged)

    def settled_despite_revisions(self, stream: str, plan: Plan, settled: Period | None
                                  ) -> Period | None:
        """``settled`` (``settled_for(stream)``) for a plan unchanged since the last run, as
        far as the terms revised since can reprice its days: a plan on hours throughout has
        settled every paid period despite a tariff revision."""
        if (not self.revisions or self.paid_up_to is None or stream in self.new
                or stream in self.settled_changed):
            return settled
        return settled_plan(self.paid_up_to, self.calendar.periods, plan, self.revisions)

    def compared_in(self, run_period: str) -> Callable[[str], bool] | None:
        """Which plans (by ref) a run for ``run_period`` may have paid for a period this run
        looks at again, one after the plan's settled period (None: every plan)."""
        paid_in = next((p for p in self.calendar.periods if p.id == run_period), None)
        if paid_in is None:
            return None
        start = paid_in.start
        # Most plans are unchanged since the last run: one answer for all of them.
        unchanged = self.settled_unchanged is None or start > self.settled_unchanged.start

        def compared(plan: str) -> bool:
            stream = plan_stream(plan)
            if stream not in self.settled_changed and stream not in self.new:
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
        settled = list(self.settled_changed.values())
        if self.plans > len(self.new) + len(self.settled_changed):
            settled.append(self.settled_unchanged)
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
    return known.reference.calendar(min(first or last, last), last)


def window_for(known: Known, period_id: str, plans: Plans, first: date | None = None
               ) -> Window:
    """The calendar up to ``period_id`` and what each plan has settled since the last run.
    ``first`` is the earliest issue date, if known better than ``plans.first_issued()``."""
    calendar = calendar_for(known, period_id, plans.first_issued() if first is None else first)
    run_period = calendar.period(period_id)
    window = Window(calendar, run_period, calendar.up_to(run_period), plans.count())
    last_run = known.last_standing_run()
    if last_run is None:
        return window
    run_fact = last_run[1].fact
    assert isinstance(run_fact, ev.PaymentRunRecorded)
    last_position, last_period = run_fact.worked_out_at, run_fact.period
    if known.reference.reshaped_at > last_position:
        return window
    # A run for a later year than this one's calendar reaches settles nothing here.
    if not any(p.id == last_period for p in calendar.periods):
        return window
    paid_up_to = calendar.period(last_period)
    revisions = Revisions.since(known.terms, last_position)
    window.settled_unchanged = still_settled(paid_up_to, calendar.periods, revisions.first_day())
    window.paid_up_to, window.revisions = paid_up_to, revisions
    window.new = plans.issued_after(last_position)
    # Facts recorded since the last run: only the days from the first one whose state they
    # change are unsettled. Each plan is worked out on its own, so the plans are shared out
    # over the cores as the run's own work is; a share sends back period ids, not periods.
    written = sorted(plans.written_after(last_position) - window.new)

    def settle(share: Sequence[str], forked: bool) -> dict[str, str | None]:
        settled = {}
        for ref, facts in (plans.reopened() if forked else plans).read(share):
            known_then = Plan([f for f in facts if f.position <= last_position])
            period = settled_plan(paid_up_to, calendar.periods, Plan(facts), revisions,
                                  known_then)
            settled[ref] = None if period is None else period.id
        return settled

    by_id = {p.id: p for p in calendar.periods}
    for share in shared_out(shares_of(written), settle):
        window.settled_changed.update((ref, None if i is None else by_id[i])
                                      for ref, i in share.items())
    return window

