"""Paying a period, as one use case: read the ledger, work out every plan's lines, record
the run with its seal, then write the run's files and record their digests.

``topup pay`` and the demo both call ``pay_and_write``; the work itself (windows, shares
over the cores, lines spilled to disk) is the engine's (``topup_ledger.engine``), and the
rules it applies are the domain's (``docs/rules.md`` §7).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Protocol

from topup_ledger.audit import witness
from topup_ledger.audit.files import written_files
from topup_ledger.domain import events as ev
from topup_ledger.engine import collector
from topup_ledger.engine.run import reference_and_plans, work_out
from topup_ledger.engine.run_lines import RunLines, SchoolTotal
from topup_ledger.io.draft_files import write_drafts
from topup_ledger.io.payment_files import write_files_for_run
from topup_ledger.services.payees import finance_records
from topup_ledger.services.recording import Ledger
from topup_ledger.services.sealing import ledger_id_of, witness_from_environment
from topup_ledger.storage.chain import digest
from topup_ledger.storage.known import Known
from topup_ledger.storage.plan_streams import StoredPlans
from topup_ledger.storage.releases import held, prepared_under_policy
from topup_ledger.storage.runs import run_payments
from topup_ledger.storage.store import ConflictError, EventStore, Recorded, StoreError
from topup_ledger.storage.streams import PAYMENTS_STREAM, SEALS_STREAM, files_stream, run_stream


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


def refuse_forgeries(store: EventStore, upto: int) -> None:
    """Refuse to pay on a ledger holding an event its key does not authenticate: it was
    added or altered by someone who could write the database but does not hold the key."""
    forged = store.unauthenticated(upto)
    if forged:
        position, name, why = forged[0]
        more = f" and {len(forged) - 1} more" if len(forged) > 1 else ""
        raise StoreError(f"refusing to pay: event {name} at position {position}{more} is not "
                         f"authenticated by the ledger's key ({why}); `topup verify` names every "
                         "such event; nothing was recorded")


class Controls(Protocol):
    """What ``topup pay`` adds to a run (``services.run_controls``): a check before it is
    recorded (a catch-up refused), and facts recorded with it, in its batch (how it is
    released). Without controls a run still records the release policy's hold."""

    def check(self, known: Known, period_id: str, plans: StoredPlans) -> None: ...

    def facts(self, run_id: str) -> Sequence[tuple[str, ev.Fact]]: ...


def pay(ledger: Ledger, period_id: str, controls: Controls | None = None, *,
        pay_on: date | None = None) -> RunResult:
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
        if controls is not None:  # after the work, so a run lacking terms says that first
            controls.check(known, period_id, plans)
        # after the work (whose reading names damaged events plainly), before recording
        refuse_forgeries(store, upto)
        return record_run(ledger, known, period_id, sequence, lines, controls, pay_on=pay_on)


def record_run(ledger: Ledger, known: Known, period_id: str, sequence: int,
               lines: RunLines, controls: Controls | None = None, *,
               pay_on: date | None = None) -> RunResult:
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
    # the finance files' payees, mapping and payment date, recorded with the run (issue 22)
    head.extend(finance_records(store, known.reference, known.position, run_id, period_id,
                                [(s.school, s.pence) for s in schools], now, pay_on))
    extra = (controls.facts(run_id) if controls is not None
             else prepared_under_policy(store, run_id))
    for stream, fact in extra:
        head.append(Recorded(stream, store.version(stream) + 1, now, fact))
    paid = (Recorded(run_stream(run_id), i, now, payment)
            for i, payment in enumerate(lines.payments(run_id, period_id), start=1))
    # A national run is tens of thousands of school payments in one batch: the bulk path,
    # because the library's own insert stalls on PostgreSQL at that size; it inserts them as
    # they are read back, one school's lines at a time, each written from its lines' bytes.
    positions = store.append_many(itertools.chain(head, paid))
    log = witness_from_environment()
    if log is not None:
        witness.append(log, seal, ledger_id_of(store), head[0].id)
    return RunResult(run_id, period_id, sequence, seal, positions[1], schools, store=store)



def record_files(ledger: Ledger, run_id: str, paths: list[Path]) -> str | None:
    """Record the digests of a run's files just written; None if exactly this is recorded."""
    if not paths:
        return None
    directory = str(paths[0].resolve().parent)
    fact = ev.FilesWritten(run_id, directory, written_files(paths))
    stream = files_stream(run_id)
    earlier = ledger.store.stream(stream)
    if any(r.fact == fact for r in earlier):
        return None  # the same bytes to the same folder again: nothing new to record
    version = len(earlier) + 1
    ledger.store.append([Recorded(stream, version, ledger.clock(), fact)])
    return f"{stream}/{version}"


def write_and_record(ledger: Ledger, run_id: str, out: Path) -> list[Path]:
    """Write a run's payment files to ``out`` and record their digests in the ledger."""
    files = write_files_for_run(ledger.store, run_id, out)
    record_files(ledger, run_id, files)
    return files


class AlreadyReleased(RuntimeError):
    """A recorded run's files were written already: one release per run."""


COPY_PREFIX = "COPY-"  # how a copy of a run's files is marked (their bytes are the release's)


def released_to(ledger: Ledger, run_id: str) -> list[ev.FilesWritten]:
    return [r.fact for r in ledger.store.stream(files_stream(run_id))
            if isinstance(r.fact, ev.FilesWritten)]


def write_copy(ledger: Ledger, run_id: str, out: Path) -> list[Path]:
    """The run's files written again to ``out`` as copies: the same bytes (so their digests
    match the release), each name marked ``COPY-``; not recorded as a release."""
    files = []
    for path in write_files_for_run(ledger.store, run_id, out):
        marked = path.with_name(COPY_PREFIX + path.name)
        path.replace(marked)
        files.append(marked)
    return files


def pay_and_write(ledger: Ledger, period_id: str, out: Path, *, copy: bool = False,
                  controls: Controls | None = None, pay_on: date | None = None
                  ) -> tuple[RunResult, list[Path]]:
    """Pay ``period_id`` and write the run's files to ``out``.

    One release per run: when nothing new was paid, the files of the run that stands were
    released already; they are written again only to the folder they were released to
    (the same bytes), or with ``copy``, as copies marked ``COPY-``."""
    result = pay(ledger, period_id, controls, pay_on=pay_on)
    if held(ledger.store, result.run_id):  # two-person release: drafts until it is released
        return result, write_drafts(ledger.store, result.run_id, out)
    if result.recorded:  # a new run: this is its release (``copy`` only matters otherwise)
        return result, write_and_record(ledger, result.run_id, out)
    released = released_to(ledger, result.run_id)
    if copy:
        return result, write_copy(ledger, result.run_id, out)
    folder = str(out.resolve())
    if released and all(r.directory != folder for r in released):
        raise AlreadyReleased(
            f"the files of run {result.run_id} were released already, to {released[0].directory}; "
            f"nothing new to pay for {period_id}: `topup pay {period_id} --copy --out DIR` writes "
            "copies, marked COPY-, which `topup verify --files DIR` checks by their digests")
    return result, write_and_record(ledger, result.run_id, out)
