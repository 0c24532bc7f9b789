"""Run controls (issue 23; DESIGN.md §2 "Money leaves only after review"): no silent
catch-up, the release policy, two-person release of a prepared run, and its withdrawal.

``topup pay`` pays through ``pay_under_controls``: a run that would pay periods no run has
paid before (or a year on the default terms while the LA records its own calendars) is
refused with the list unless the officer says ``--catch-up``; the run then records what it
caught up. Under two-person release the run is recorded as *prepared* and only draft files
(``DRAFT-``, not for payment) are written; ``release`` by another actor records the release
and writes the files for finance; ``withdraw`` records that a prepared run was never paid
and reverses its payments, so what it would have paid is due again in the next run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError
from topup_ledger.engine.window import calendar_for
from topup_ledger.services.payment_run import (
    RunResult,
    pay_and_write,
    write_and_record,
)
from topup_ledger.services.recording import Ledger, check_reason, check_text
from topup_ledger.storage.known import Known
from topup_ledger.storage.plan_streams import StoredPlans
from topup_ledger.storage.releases import (
    PREPARED,
    RELEASE_POLICY_STREAM,
    RELEASED,
    WITHDRAWN,
    RunStatus,
    control_stream,
    release_policy,
    run_status,
)
from topup_ledger.storage.runs import run_payments
from topup_ledger.storage.store import ConflictError, Recorded
from topup_ledger.storage.streams import run_stream


@dataclass
class CatchUp:
    """What a run would pay that no run paid before: periods never run, and academic years
    paid on the default terms although the LA records its own calendars."""

    never_run: list[str] = field(default_factory=list)
    default_terms: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.never_run or self.default_terms)

    def lines(self) -> list[str]:
        said = [f"{period}: no run has paid this earlier period" for period in self.never_run]
        said += [f"{year}: no payment calendar recorded for this academic year; the default "
                 "terms would be used (`topup calendar set --ay {year}`)".replace("{year}", year)
                 for year in self.default_terms]
        return said


class CatchUpRefused(RuleError):
    def __init__(self, period_id: str, found: CatchUp) -> None:
        super().__init__("period", f"a run for {period_id} would catch up:\n  "
                         + "\n  ".join(found.lines())
                         + "\nrun the periods in order, record the calendar, or say "
                         "--catch-up if the run is meant to pay them")
        self.found = found


def catch_up_of(known: Known, period_id: str, first_issued: date | None) -> CatchUp:
    """The periods between the latest standing run's period (a run pays its own period and
    every one before it) and ``period_id`` that no run paid, or, before any run, every period
    from the first plan's first day; and the academic years among those and the run's own
    that have no recorded calendar although an earlier year has one (an LA that records its
    own calendars forgot that year's; one that never recorded a calendar, or only from a
    later year, pays on the default terms by design)."""
    calendar = calendar_for(known, period_id, first_issued)
    run_period = calendar.period(period_id)
    starts = {p.id: p.start for p in calendar.periods}
    ran = [starts[r.fact.period] for _, r in known.runs  # type: ignore[attr-defined]
           if r.fact.run_id not in known.withdrawn and r.fact.period in starts]  # type: ignore[attr-defined]
    paid_to = max(ran, default=None)
    reached = [p for p in calendar.periods if p.start <= run_period.start
               and (paid_to is None or p.start > paid_to)
               and (first_issued is None or p.end_exclusive > first_issued)]
    never = [p.id for p in reached if p.start < run_period.start]
    years = sorted({p.year for p in reached})
    recorded = min(known.calendars, default=None)
    default = [y for y in years if recorded is not None and y > recorded
               and y not in known.calendars]
    return CatchUp(never, default)


@dataclass
class RunControls:
    """``payment_run.Controls`` for ``topup pay``: the catch-up check, and the run's
    ``RunPrepared`` recorded in its batch."""

    release: str
    catch_up: bool = False
    found: CatchUp = field(default_factory=CatchUp)

    def check(self, known: Known, period_id: str, plans: StoredPlans) -> None:
        self.found = catch_up_of(known, period_id, plans.first_issued())
        if self.found and not self.catch_up:
            raise CatchUpRefused(period_id, self.found)

    def facts(self, run_id: str) -> Sequence[tuple[str, ev.Fact]]:
        return [(control_stream(run_id), ev.RunPrepared(
            run_id, self.release, tuple(self.found.never_run), tuple(self.found.default_terms)))]



def pay_under_controls(ledger: Ledger, period_id: str, out: Path, *, copy: bool = False,
                       catch_up: bool = False, pay_on: date | None = None
                       ) -> tuple[RunResult, list[Path]]:
    """``topup pay``: the run under the ledger's release policy and the catch-up check."""
    controls = RunControls(release_policy(ledger.store), catch_up)
    return pay_and_write(ledger, period_id, out, copy=copy, controls=controls, pay_on=pay_on)


def set_policy(ledger: Ledger, release: str, reason: str = "") -> str:
    if release not in ev.RELEASE_POLICIES:
        raise RuleError("release", f"{release!r} is not one of {', '.join(ev.RELEASE_POLICIES)}")
    return ledger._record_once(RELEASE_POLICY_STREAM, ev.ReleasePolicySet(release, reason))


def held_run(ledger: Ledger, run_id: str, doing: str) -> RunStatus:
    """The run, if it is prepared and waiting for release; otherwise a refusal."""
    status = run_status(ledger.store, run_id)
    if status is None:
        raise RuleError("run", f"no payment run {run_id} in the ledger")
    if status.state == RELEASED:
        how = ("it was released as it was recorded (one-person release)"
               if status.release == "one-person" else f"it was released by {status.released_by}")
        raise RuleError("run", f"cannot {doing} run {run_id}: {how}")
    if status.state == WITHDRAWN:
        raise RuleError("run", f"cannot {doing} run {run_id}: it was withdrawn by "
                        f"{status.withdrawn_by} ({status.withdrawn_because})")
    assert status.state == PREPARED
    return status


def release(ledger: Ledger, run_id: str, out: Path) -> tuple[RunStatus, list[Path]]:
    """Release a prepared run, as an actor other than its preparer, and write its files."""
    store = ledger.store
    status = held_run(ledger, run_id, "release")
    actor = store.mapper.actor or store.actor()
    if actor == status.prepared_by:
        raise RuleError("run", f"run {run_id} was prepared by {actor}: under two-person release "
                        "someone else must release it")
    version = status.controls + 1
    try:
        store.append([Recorded(control_stream(run_id), version, ledger.clock(),
                               ev.RunReleased(run_id))])
    except ConflictError:
        raise ConflictError(f"run {run_id} was released or withdrawn meanwhile; nothing was "
                            "recorded") from None
    files = write_and_record(ledger, run_id, out)
    released = run_status(store, run_id)
    assert released is not None
    return released, files


# An earlier period's line reversed changes sign, so it changes name: arrears taken back are
# a claw-back, a claw-back given back is arrears (a line's kind and its sign agree).
REVERSED_KIND: dict[ev.LineKind, ev.LineKind] = {"arrears": "clawback", "clawback": "arrears"}


def withdraw(ledger: Ledger, run_id: str, reason: str) -> RunStatus:
    """Record that a prepared run was never paid: its withdrawal and, in its own stream,
    each school's payment reversed line by line, in one batch; what it would have paid is
    then due again in the next run."""
    reason = check_reason(reason)
    check_text(ev.RunWithdrawn(run_id, reason))
    store = ledger.store
    status = held_run(ledger, run_id, "withdraw")
    now = ledger.clock()
    withdrawal = Recorded(control_stream(run_id), status.controls + 1, now,
                          ev.RunWithdrawn(run_id, reason))
    stream = run_stream(run_id)
    reversals = [
        ev.SchoolPaid(paid.run_id, paid.period, paid.school, tuple(
            dataclasses.replace(line, amount=-line.amount, kind=REVERSED_KIND.get(line.kind, line.kind),
                                caused_by=(withdrawal.id,),
                                reason=f"run {run_id} withdrawn, never paid ({reason}): "
                                       f"{line.reason}")
            for line in paid.lines))
        for paid in run_payments(store, run_id)]
    first = store.version(stream) + 1
    store.append([withdrawal, *(Recorded(stream, first + i, now, fact)
                                for i, fact in enumerate(reversals))])
    withdrawn = run_status(store, run_id)
    assert withdrawn is not None
    return withdrawn
