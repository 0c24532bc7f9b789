"""``topup replay --as-of TIME --out DIR``: what the ledger knew at a moment, rebuilt from events.

*As of TIME* means the events up to the last position whose recorded time is at or before TIME
(a date alone means the end of that day, UTC; a time without an offset is UTC). Replay reads the
events only: it never appends to the ledger and writes nothing outside ``--out``.

It writes every payment file of every run recorded by then (built from the run's own recorded
events, so byte-identical to the files the run wrote), the projections as known then (funding,
paid vs due, hours vs band, band calibration: see ``write_projections``), and ``replay.json``:
the moment, the position, the chain digest ``HEX@POSITION`` the replay stands on, and the
SHA-256 of every file written.

Every event up to the position is read through the upcasters: an event of a schema version this
program does not know stops the replay with a clear error (fail closed) rather than rebuilding
amounts from data it may misread.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from topup_ledger.audit.files import file_digest
from topup_ledger.domain import events as ev
from topup_ledger.io.finance_files import nets_of, write_finance_files
from topup_ledger.io.payment_files import write_run_files
from topup_ledger.io.private import private_dir, write_private
from topup_ledger.storage.chain import GENESIS, digest, walk
from topup_ledger.storage.codec import fact_from_data
from topup_ledger.storage.runs import run_payments
from topup_ledger.storage.store import EventStore, event_id
from topup_ledger.storage.upcasting import UnknownSchemaVersion, upcast

Progress = Callable[[int], None]


class ReplayError(ValueError):
    """The ledger cannot be replayed as asked (unreadable or unknown events)."""


def _recorded(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class AsOf:
    """The ledger as known at a moment: its last position, chain head, runs and schools."""

    when: datetime
    position: int = 0
    recorded_at: str = ""  # of the event at ``position``
    head: bytes = GENESIS
    runs: list[tuple[int, ev.PaymentRunRecorded]] = field(default_factory=list)
    schools: dict[str, tuple[int, str]] = field(default_factory=dict)  # urn → (position, name)
    safe_runs: set[str] = field(default_factory=set)  # runs whose CSVs neutralise formulas

    @property
    def digest(self) -> str:
        return digest(self.head, self.position)


def as_of(store: EventStore, when: datetime, *, check_versions: bool = True,
          progress: Progress | None = None) -> AsOf:
    """One pass in ledger order: the last position recorded at or before ``when``, its chain
    head, and the runs and schools recorded up to it. With ``check_versions`` every event up to
    that position must be readable by this program (unknown schema versions fail closed)."""
    known = AsOf(when)
    later_failures: list[tuple[int, str]] = []  # unreadable events recorded after ``when``
    runs: list[tuple[int, ev.PaymentRunRecorded]] = []
    schools: dict[str, tuple[int, str]] = {}
    read = 0
    for link in walk(store):
        name = event_id(link.stream, link.version)
        schema_version, at_text, _, _ = link.fields
        envelope = link.envelope
        moment = _try_recorded(at_text) if at_text else None
        data: Any = envelope.get("data") if envelope is not None else None
        problem = ""
        if not schema_version or moment is None or not isinstance(data, dict):
            problem = f"event {name} at position {link.position} is not a readable event " \
                      "(run `topup verify`)"
        elif check_versions or link.topic in (ev.PaymentRunRecorded.TYPE, ev.SchoolAdded.TYPE):
            try:
                data = upcast(link.topic, int(schema_version), data)
            except UnknownSchemaVersion as error:
                problem = f"event {name} at position {link.position}: {error}"
        if problem:
            if moment is not None and moment > when:
                later_failures.append((link.position, problem))  # fatal only if before the end
                continue
            raise ReplayError(problem)
        assert moment is not None
        if moment <= when:
            known.position, known.recorded_at, known.head = link.position, at_text, link.link
        try:
            if link.topic == ev.PaymentRunRecorded.TYPE:
                runs.append((link.position, fact_from_data(link.topic, data)))  # type: ignore[arg-type]
                if link.fields[3] is not None:  # recorded by this program's generation
                    known.safe_runs.add(data["run_id"])
            elif link.topic == ev.SchoolAdded.TYPE:
                schools[data["urn"]] = (link.position, data["name"])
        except (KeyError, TypeError, ValueError) as error:
            raise ReplayError(f"event {name} at position {link.position} cannot be read ({error!r}); "
                              "run `topup verify`") from None
        read += 1
        if progress and read % 10_000 == 0:
            progress(read)
    for position, message in later_failures:
        if position <= known.position:
            raise ReplayError(message)
    known.runs = [(p, run) for p, run in runs if p <= known.position]
    known.schools = {urn: v for urn, v in schools.items() if v[0] <= known.position}
    return known


def _try_recorded(text: str) -> datetime | None:
    try:
        return _recorded(text)
    except ValueError:
        return None


@dataclass
class ReplayResult:
    as_of: datetime
    position: int
    recorded_at: str
    seal: str
    runs: list[str]
    files: list[Path]
    projections: list[Path]
    projections_note: str
    manifest: Path

    def as_json(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "position": self.position,
                "recorded_at": self.recorded_at, "seal": self.seal, "runs": self.runs,
                "files": [str(f) for f in self.files],
                "projections": [str(f) for f in self.projections],
                "projections_note": self.projections_note, "manifest": str(self.manifest)}


def write_projections(store: EventStore, when: datetime, position: int, out: Path
                      ) -> tuple[list[Path], str]:
    """The projections as known at ``when``, written into ``out`` (nothing next to the ledger).

    Uses the projections package: its ``view`` folds the events up to the last one
    recorded at or before ``when`` into a throwaway projection file, and ``write_output`` writes
    each table to its spec. Returns the files and a note ('' if all is well).
    """
    try:
        from topup_ledger.projections import file_stem, funding, hours_vs_band, paid_vs_due, write_output
        from topup_ledger.projections.runner import view
    except ImportError as error:
        return [], f"projections not written: the projections package is not usable ({error})"
    with tempfile.TemporaryDirectory(prefix="topup-replay-") as folder, \
            view(store, ["funding", "paid-vs-due", "hours-vs-band"], when,
                 path=Path(folder) / "replay.projections.sqlite") as known:
        outputs = {"funding": funding.rows(known), "paid-vs-due": paid_vs_due.rows(known),
                   "hours-vs-band": hours_vs_band.rows(known),
                   "band-calibration": hours_vs_band.calibration(known)}
        seen = known.position
    files: list[Path] = []
    for name, rows in outputs.items():
        files.extend(write_output(name, rows, out, file_stem(name, as_of=when)))
    note = "" if seen == position else (
        f"note: the projections stand on position {seen}, the payment files on {position} "
        "(recorded times out of order in the ledger)")
    return files, note


def replay(store: EventStore, when: datetime, out: Path, *, progress: Progress | None = None
           ) -> ReplayResult:
    """Write every payment file (and projection) as known at ``when`` into ``out``."""
    known = as_of(store, when, progress=progress)
    private_dir(out)
    names = {urn: name for urn, (_, name) in known.schools.items()}
    files: list[Path] = []
    for _, run in known.runs:
        # A run's events are recorded in one atomic batch with the run: all or none are known.
        # They are read as the files are built, and the files written only once all are read.
        try:
            # as the run recorded them: not the reversals of a later withdrawal
            files.extend(write_run_files(run, run_payments(store, run.run_id, run.schools),  # type: ignore[arg-type]
                                         names, out,
                                         safe=run.run_id in known.safe_runs))
            # its finance files: recorded in the run's own append, known with it
            files.extend(write_finance_files(store, run, nets_of(run_payments(store, run.run_id)),  # type: ignore[arg-type]
                                             out))
        except (KeyError, TypeError, ValueError) as error:
            raise ReplayError(f"the payments of run {run.run_id} cannot be read ({error!r}); "
                              "run `topup verify`") from None
    projected, note = write_projections(store, when, known.position, out)
    manifest = out / "replay.json"
    result = ReplayResult(when, known.position, known.recorded_at, known.digest,
                          [run.run_id for _, run in known.runs], files, projected, note, manifest)
    body = result.as_json()
    body["files"] = [{"name": f.name, "sha256": file_digest(f)[0]} for f in [*files, *projected]]
    write_private(manifest, json.dumps(body, indent=2) + "\n")
    return result
