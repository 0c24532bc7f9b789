"""``topup verify``: recompute the chain and check it against every witness of it.

Witnesses (*checkpoints*) say what the chain head was at a position:

- each seal in the ledger (``ledger.sealed``: head and position);
- each payment run's record (``payment.run_recorded.seal``, also printed on its files);
- each digest given on the command line (from a payment file, a statement, an auditor's note).

The chain is recomputed in one pass in ledger order (bounded memory: only the links at the
positions some checkpoint names are kept). A checkpoint that matches confirms every event up to
its position; the first event after the last confirmed position, before a checkpoint that does
not match, is the first event that does not match. Seals inside the ledger can be recomputed by
someone who rewrites the ledger, and the tail after the last seal is covered by none: digests
kept outside the ledger catch both, so when one of them fails only digests are trusted to
confirm positions.

Besides the chain, the pass checks what the ledger guarantees by construction: each stream's
versions run 1, 2, 3… in ledger order (a gap is a deleted event, a step back an event moved or
inserted); every stored state is a readable envelope; every seal covers positions before itself.
Position gaps and recorded times that go backwards are *hints* only (PostgreSQL may leave gaps,
two writers may commit out of clock order), used to help find what changed.

Finally every payment run's recorded file digests (``payment.files_written``) are checked: the
files rebuilt from the run's events must have the recorded bytes, and the files themselves, in the
folder they were written to and any folder given with ``--files``, must still have them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from topup_ledger.audit import witness
from topup_ledger.audit.files import file_digest
from topup_ledger.domain import events as ev
from topup_ledger.io.payment_files import write_files_for_run
from topup_ledger.storage.chain import (
    GENESIS,
    DigestError,
    digest,
    envelope_of,
    parse_digest,
    plain_state,
    walk,
)
from topup_ledger.storage.codec import fact_from_data
from topup_ledger.storage.keys import kept_key_path
from topup_ledger.storage.releases import RunStatus, run_statuses
from topup_ledger.storage.store import EventStore, event_id
from topup_ledger.storage.upcasting import upcast

Progress = Callable[[int], None]


@dataclass
class Problem:
    kind: str  # chain | seal | run | digest | witness | auth | stream | payload | file
    message: str
    position: int | None = None
    event: str | None = None
    upto: int | None = None  # for the first mismatch: the change is at or before this position

    def as_json(self) -> dict[str, Any]:
        found = {"kind": self.kind, "position": self.position, "event": self.event,
                 "message": self.message}
        return found if self.upto is None else {**found, "upto": self.upto}

    def text(self) -> str:
        where = f"position {self.position}" if self.position is not None else ""
        if self.event:
            where = f"{where} ({self.event})" if where else self.event
        return f"{where}: {self.message}" if where else self.message


@dataclass
class Checkpoint:
    """A witness of the chain head at ``position``."""

    position: int
    head: bytes
    source: str  # seal | run | digest | witness
    label: str
    at: int | None = None  # the position of the event that holds it (None: given by the user)
    event: str | None = None
    actual: bytes | None = None
    status: str = "unchecked"  # ok | mismatch | missing

    @property
    def external(self) -> bool:
        """Kept outside the ledger (a digest given, a witness log): it outranks the ledger."""
        return self.source in ("digest", "witness")

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "label": self.label, "digest": digest(self.head, self.position),
                "event": self.event, "event_position": self.at, "status": self.status,
                "chain": self.actual.hex() if self.actual is not None else None}


@dataclass
class KeyStretch:
    """A stretch of the ledger and the key that authenticates it (key rotation)."""

    key_id: str
    first: int  # its first position
    last: int | None  # its last (None: to the end)
    started_by: str | None  # the rotation that handed over to it
    at_hand: bool  # whether the key was found to check its events with
    events: int = 0
    failed: int = 0  # events in it the key does not authenticate

    def positions(self) -> str:
        return f"{self.first:,} to " + ("the end" if self.last is None else f"{self.last:,}")

    def as_json(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "from_position": self.first, "to_position": self.last,
                "started_by": self.started_by, "at_hand": self.at_hand, "events": self.events,
                "not_authenticated": self.failed}


@dataclass
class Report:
    events: int = 0
    position: int = 0
    head: bytes = GENESIS
    checkpoints: list[Checkpoint] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    hints: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    confirmed_upto: int = 0  # every event up to here matches a checkpoint (0: none confirmed)
    confirmed_by: str = ""
    first: Problem | None = None  # the first event that does not match
    files_checked: int = 0
    files_rebuilt: int = 0
    runs: int = 0
    releases: list[RunStatus] = field(default_factory=list)  # who prepared and released each run
    keys: list[KeyStretch] = field(default_factory=list)  # which key authenticates which events

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def digest(self) -> str:
        return digest(self.head, self.position)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "events": self.events, "position": self.position, "head": self.digest,
            "confirmed_upto": self.confirmed_upto, "confirmed_by": self.confirmed_by,
            "first_mismatch": self.first.as_json() if self.first else None,
            "problems": [p.as_json() for p in self.problems],
            "hints": [h.as_json() for h in self.hints],
            "checkpoints": [c.as_json() for c in self.checkpoints],
            "runs": self.runs, "files_checked": self.files_checked,
            "files_rebuilt": self.files_rebuilt, "notes": self.notes,
            "releases": [s.as_json() for s in self.releases],
            "keys": [k.as_json() for k in self.keys],
        }


def _claims(store: EventStore, report: Report, runs: list[str]) -> list[Checkpoint]:
    """The checkpoints the ledger holds: every seal and every payment run's seal."""
    found: list[Checkpoint] = []
    kinds = (ev.Sealed.TYPE, ev.PaymentRunRecorded.TYPE)
    for n in store.notifications(types=kinds):
        name = event_id(str(n.originator_id), n.originator_version)
        try:
            envelope = envelope_of(plain_state(store, n.state))
        except Exception:
            envelope = None
        data = envelope.get("data") if envelope else None
        try:
            if not isinstance(data, dict):
                raise ValueError("its stored state is not readable")
            if n.topic == ev.Sealed.TYPE:
                head, position = parse_digest(f"{data['head']}@{data['position']}")
                label, source = f"seal {name} (position {n.id})", "seal"
            else:
                head, position = parse_digest(str(data["seal"]))
                runs.append(str(data.get("run_id", "?")))
                label = f"payment run {data.get('run_id', '?')} record {name} (position {n.id})"
                source = "run"
        except (DigestError, KeyError, ValueError) as error:
            report.problems.append(Problem("seal", f"{n.topic} is damaged: {error}", n.id, name))
            continue
        if position >= n.id:
            report.problems.append(Problem(
                "seal", f"it claims to cover position {position}, at or after its own position",
                n.id, name))
            continue
        found.append(Checkpoint(position, head, source, label, n.id, name))
    return found


def _given(digests: Iterable[str]) -> list[Checkpoint]:
    found = []
    for text in digests:
        head, position = parse_digest(text)
        found.append(Checkpoint(position, head, "digest", f"digest {text.strip()} given to verify"))
    return found


def _at(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


@dataclass
class _Pass:
    """What the one pass over the ledger keeps: links and successors at checkpoint positions."""

    needed: set[int]
    links: dict[int, bytes] = field(default_factory=dict)
    after: dict[int, tuple[int, str, str]] = field(default_factory=dict)  # q → next event
    files: list[tuple[int, str, ev.FilesWritten]] = field(default_factory=list)
    forged: set[int] = field(default_factory=set)  # positions of events the key does not authenticate


def _walk(store: EventStore, report: Report, scan: _Pass, progress: Progress | None) -> None:
    versions: dict[str, tuple[int, int]] = {}  # stream → (highest version, its position)
    previous, previous_at = 0, None
    keyed_after, keys, stretches = store.keyed_after, store.keys(), store.key_stretches
    if keyed_after is not None:
        report.keys = [KeyStretch(s.key_id, s.after + 1, s.upto, s.started_by, s.key_id in keys)
                       for s in stretches.stretches]
    ignored = {position: (name, why) for position, name, why in stretches.ignored}
    for link in walk(store):
        p, stream, version, topic = link.position, link.stream, link.version, link.topic
        name = event_id(stream, version)
        if previous in scan.needed and previous not in scan.after:
            scan.after[previous] = (p, name, topic)
        if p in scan.needed:
            scan.links[p] = link.link
        if previous and p != previous + 1:
            gap = f"{previous + 1}" if p == previous + 2 else f"{previous + 1} to {p - 1}"
            report.hints.append(Problem("chain", f"position {gap} is missing before it (deleted, "
                                        "or a rolled-back write on PostgreSQL)", p, name))
        # each stream's versions run 1, 2, 3, … in ledger order
        last = versions.get(stream)
        expected = last[0] + 1 if last else 1
        if version > expected:
            missing = event_id(stream, expected) + ("" if version == expected + 1
                                                    else f" to {event_id(stream, version - 1)}")
            after = f" after {event_id(stream, last[0])} at position {last[1]}" if last else ""
            report.problems.append(Problem(
                "stream", f"{missing} is missing: the stream goes on at version {version}{after} "
                "(an event was deleted or moved)", p, name))
        elif version < expected:
            assert last is not None
            report.problems.append(Problem(
                "stream", f"version {version} comes after version {last[0]} of {stream} (position "
                f"{last[1]}): events out of order (moved, swapped or inserted)", p, name))
        if not last or version > last[0]:
            versions[stream] = (version, p)
        # the stored state
        envelope = link.envelope
        schema_version, at_text, _, _ = link.fields
        if keyed_after is not None and p > keyed_after:
            named = envelope.get("key") if envelope else None
            why = stretches.check(keys, p, named if isinstance(named, str) else None, stream,
                                  version, topic, link.payload)
            if why is None and p in ignored:
                why = f"a key rotation not honoured: {ignored[p][1]}"
            stretch = next(k for k in reversed(report.keys) if p >= k.first)
            stretch.events += 1
            if why is not None:
                stretch.failed += 1
                scan.forged.add(p)
                report.problems.append(Problem(
                    "auth", f"not authenticated by the ledger's key: {why} ({topic})", p, name))
        if envelope is None or not isinstance(envelope.get("data"), dict):
            report.problems.append(Problem("payload", "the stored state is not a readable event "
                                           "(altered or damaged bytes)", p, name))
        elif not schema_version or not at_text or (moment := _at(at_text)) is None:
            report.problems.append(Problem("payload", "the stored state has no valid schema version "
                                           "or recorded time", p, name))
        else:
            if previous_at is not None and moment < previous_at:
                report.hints.append(Problem("chain", f"recorded at {at_text}, before the event "
                                            "before it", p, name))
            previous_at = moment
            if topic == ev.FilesWritten.TYPE:
                try:
                    data = upcast(topic, int(schema_version), envelope["data"])
                    fact = fact_from_data(topic, data)
                    assert isinstance(fact, ev.FilesWritten)
                    scan.files.append((p, name, fact))
                except Exception as error:
                    report.problems.append(Problem("file", f"the file digests cannot be read: {error}",
                                                   p, name))
        report.events += 1
        report.position, report.head = p, link.link
        previous = p
        if progress and report.events % 10_000 == 0:
            progress(report.events)
    if progress:
        progress(report.events)
    for k in report.keys:
        if not k.at_hand and k.events:
            report.problems.append(Problem(
                "key", f"key {k.key_id}, which authenticates positions {k.positions()} "
                f"({k.events:,} events), is not at hand, so they cannot be checked: keep it in "
                f"{kept_key_path(store.ledger_id, k.key_id)} or list its file in "
                "TOPUP_LEDGER_OLD_KEY_FILES", k.first))


def _judge(report: Report, checkpoints: Sequence[Checkpoint], scan: _Pass) -> None:
    """Match each checkpoint against the chain; find the first event that does not match."""
    for cp in checkpoints:
        cp.actual = GENESIS if cp.position == 0 else scan.links.get(cp.position)
        if cp.at is not None and cp.at in scan.forged:
            cp.status = "unauthenticated"  # a seal forged without the key witnesses nothing
        elif cp.actual is None:
            cp.status = "missing"
        else:
            cp.status = "ok" if cp.actual == cp.head else "mismatch"
    matched = {cp.position for cp in checkpoints if cp.status == "ok"}
    outside_failing = {cp.position for cp in checkpoints if cp.external and cp.status != "ok"}
    failing: list[Checkpoint] = []
    for cp in checkpoints:
        if cp.status in ("ok", "unauthenticated"):
            continue
        if (cp.status == "mismatch" and cp.position in matched and not cp.external
                and cp.position not in outside_failing):
            # another witness of the same position matches: this one was altered
            others = ", ".join(o.label for o in checkpoints
                               if o.position == cp.position and o.status == "ok")
            report.problems.append(Problem(
                "seal" if cp.source == "seal" else cp.source,
                f"{cp.label} was altered: it says the chain head at position {cp.position} is "
                f"{cp.head.hex()[:16]}…, but the chain and {others} say {cp.actual.hex()[:16]}…",  # type: ignore[union-attr]
                cp.at, cp.event))
            continue
        failing.append(cp)
        if cp.status == "missing":
            if cp.position > report.position:
                why = (f"the ledger ends at position {report.position}: events after it were "
                       "removed (the tail was cut off), or this is another ledger")
                if cp.external:
                    why = (f"the ledger is shorter than this witness: the ledger ends at position "
                           f"{report.position}, and events after it were removed (the ledger was "
                           "cut back or replaced)")
            else:
                why = f"there is no event at position {cp.position}: it was removed"
        elif cp.external:
            inside = [o.label for o in checkpoints if o.position == cp.position and o.status == "ok"]
            why = (f"the ledger's chain there is {cp.actual.hex()[:16]}…, not {cp.head.hex()[:16]}…: "  # type: ignore[union-attr]
                   f"the ledger is not what it was when this digest was taken: events up to "
                   f"position {cp.position} were altered, removed, inserted or moved"
                   + (f" (and {', '.join(inside)} recomputed to match)" if inside else ""))
        else:
            why = (f"the chain there is {cp.actual.hex()[:16]}…, not {cp.head.hex()[:16]}…: "  # type: ignore[union-attr]
                   f"events up to position {cp.position} were altered, removed, inserted or moved"
                   f", or the {cp.source} record itself was")
        report.problems.append(Problem(cp.source, f"{cp.label} does not match: {why}", cp.at,
                                       cp.event))
    first_failing = min((cp.position for cp in failing), default=None)
    trusted = [cp for cp in checkpoints if cp.status == "ok"]
    if any(cp.external for cp in failing):
        # a rewritten ledger can carry recomputed seals: only outside digests confirm now
        trusted = [cp for cp in trusted if cp.external]
    if first_failing is not None:
        trusted = [cp for cp in trusted if cp.position < first_failing]
    best = max(trusted, key=lambda cp: cp.position, default=None)
    if best is not None:
        report.confirmed_upto, report.confirmed_by = best.position, best.label
    if first_failing is None:
        # a key not at hand is no mismatch: it is what could not be checked
        definite = [p for p in report.problems if p.position is not None and p.kind != "key"]
        report.first = min(definite, key=lambda p: p.position or 0, default=None)
        return
    upto = report.confirmed_upto
    confirmed = f"confirmed up to position {upto} by {report.confirmed_by}" if upto else \
        "confirmed by no checkpoint"
    nxt = scan.after.get(upto)
    if nxt is None:
        report.first = Problem("chain", f"the ledger ends at position {upto}; events after it are "
                               f"missing ({confirmed})", upto + 1, None, first_failing)
    else:
        position, name, topic = nxt
        report.first = Problem(
            "chain", f"first event that does not match ({topic}): the chain is {confirmed}; the "
            f"change is at or after this event and at or before position {first_failing}",
            position, name, first_failing)


def _check_files(store: EventStore, report: Report, scan: _Pass, runs: Sequence[str],
                 folders: Sequence[Path], rebuild: bool) -> None:
    given = set(folders)
    by_digest: dict[str, list[Path]] = {}
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                by_digest.setdefault(file_digest(path)[0], []).append(path)
    by_run: dict[str, list[tuple[int, str, ev.FilesWritten]]] = {}
    for item in scan.files:
        by_run.setdefault(item[2].run_id, []).append(item)
    report.runs = len(runs)
    unrecorded = [r for r in runs if r not in by_run]
    if unrecorded:
        report.notes.append("no file digests recorded for run(s) " + ", ".join(unrecorded)
                            + " (files not written by `topup pay`, or written before it recorded them)")
    for run_id, records in by_run.items():
        if rebuild:
            position, name, fact = records[-1]
            with tempfile.TemporaryDirectory(prefix="topup-verify-") as tmp:
                try:
                    rebuilt = {p.name: file_digest(p)[0]
                               for p in write_files_for_run(store, run_id, Path(tmp))}
                except Exception as error:
                    report.problems.append(Problem(
                        "file", f"run {run_id}: its files cannot be rebuilt from the ledger: {error}",
                        position, name))
                    rebuilt = None
            if rebuilt is not None:
                for written in fact.files:
                    report.files_rebuilt += 1
                    if rebuilt.get(written.name) != written.sha256:
                        report.problems.append(Problem(
                            "file", f"run {run_id}: {written.name} rebuilt from the ledger is not the "
                            f"file written (recorded sha256 {written.sha256[:16]}…): the run's "
                            "events or this record were altered", position, name))
        for position, name, fact in records:
            places = [Path(fact.directory), *folders]
            for written in fact.files:
                seen = False
                # in a folder given, the run's files are found by their digests, whatever their
                # names (a copy marked COPY-, a file renamed by the finance system)
                found = by_digest.get(written.sha256, [])
                seen = bool(found)
                report.files_checked += len(found)
                for folder in dict.fromkeys(places):
                    if folder in given and by_digest.get(written.sha256):
                        continue
                    path = folder / written.name
                    if not path.is_file():
                        continue
                    seen = True
                    report.files_checked += 1
                    sha, size = file_digest(path)
                    if sha != written.sha256:
                        report.problems.append(Problem(
                            "file", f"payment file {path} was changed after it was written: its "
                            f"sha256 is {sha[:16]}… ({size} bytes), recorded {written.sha256[:16]}… "
                            f"({written.size} bytes)", position, name))
                if not seen:
                    report.notes.append(f"run {run_id}: {written.name} not found in "
                                        + ", ".join(str(f) for f in dict.fromkeys(places)))


def _witnessed(store: EventStore, report: Report, paths: Sequence[Path]) -> list[Checkpoint]:
    found = []
    ledger_id = (store.info or {}).get("ledger_id", "")
    for path in paths:
        seals, notes = witness.read(path)
        report.notes.extend(notes)
        other = [w for w in seals if w.ledger_id and ledger_id and w.ledger_id != ledger_id]
        if other:
            report.notes.append(f"witness {path}: {len(other)} seal(s) of another ledger skipped")
        for w in seals:
            if w not in other:
                found.append(Checkpoint(*parse_digest(w.digest)[::-1], "witness",
                                        f"witness {path} line {w.line} ({w.digest})"))
    return found


def verify(store: EventStore, digests: Sequence[str] = (), folders: Sequence[Path] = (), *,
           rebuild: bool = True, progress: Progress | None = None,
           witnesses: Sequence[Path] = ()) -> Report:
    """Check the chain, every seal and run record, every digest given, every seal in the
    witness logs given and every run's files."""
    given = _given(digests)  # refuse a malformed digest before reading anything
    report = Report()
    given += _witnessed(store, report, witnesses)
    runs: list[str] = []
    checkpoints = [*_claims(store, report, runs), *given]
    scan = _Pass({cp.position for cp in checkpoints} | {0})
    _walk(store, report, scan, progress)
    _judge(report, checkpoints, scan)
    report.checkpoints = checkpoints
    _check_files(store, report, scan, runs, folders, rebuild)
    try:
        report.releases = run_statuses(store)
    except Exception as error:  # a damaged ledger: the problems above say what; this is a note
        report.notes.append(f"who prepared and released each run could not be read: {error}")
    report.problems.sort(key=lambda p: (p.position is None, p.position or 0))
    if report.first is None:
        report.first = next((p for p in report.problems if p.kind != "key"), None)
    return report


def tally(items: Sequence[Checkpoint]) -> str:
    good = sum(c.status == "ok" for c in items)
    return f"{good:,} of {len(items):,} match"


def checks(report: Report) -> list[tuple[str, str]]:
    """What was checked and what came of it: (check, result) pairs."""
    def of(source: str) -> list[Checkpoint]:
        return [c for c in report.checkpoints if c.source == source]

    runs = f"{report.runs:,} run" + ("" if report.runs == 1 else "s")
    found = [("seals", tally(of("seal"))), ("payment run records", tally(of("run")))]
    found += [(name, tally(items)) for name, items in (("digests given", of("digest")),
                                                       ("witnessed seals", of("witness"))) if items]
    found.append(("payment files", f"{report.files_rebuilt:,} rebuilt from the ledger, "
                  f"{report.files_checked:,} on disk checked against their recorded digests "
                  f"({runs})"))
    if report.confirmed_upto:
        found.append(("confirmed", f"up to position {report.confirmed_upto:,} by "
                      f"{report.confirmed_by}"))
    return found


def key_rows(report: Report) -> list[list[str]]:
    """Per stretch: its key, positions, events, the rotation that began it, and what came of
    checking it."""
    return [[k.key_id, k.positions(), f"{k.events:,}", k.started_by or "init",
             ("not at hand" if not k.at_hand else
              f"{k.failed:,} not authenticated" if k.failed else "authenticated")]
            for k in report.keys]


def summary_lines(report: Report) -> list[str]:
    """What was checked, in a few lines (the text file's first lines)."""
    return [f"ledger: {report.events:,} events, chain head {report.digest}",
            *(f"{check}: {result}" for check, result in checks(report)),
            *(f"key {key}: positions {positions} ({events} events, since {since}): {result}"
              for key, positions, events, since, result in key_rows(report)),
            *(f"run {s.run_id}: {s.text()}" for s in report.releases),
            *(f"note: {note}" for note in report.notes)]


OK_TEXT = "OK: every event matches every seal and digest; every payment file checked is as written"


def uncovered(report: Report) -> str | None:
    """The note on events after the last confirmed position, on a clean ledger."""
    if report.ok and report.position and report.confirmed_upto < report.position:
        return (f"note: events after position {report.confirmed_upto} are covered by no seal "
                "yet; `topup seal` records one, and its digest kept outside the ledger covers them")
    return None


def report_text(report: Report) -> str:
    """The report as plain text (the demo's verify.txt; the terminal prints it as tables)."""
    lines = summary_lines(report)
    if report.ok:
        lines.append(OK_TEXT)
        note = uncovered(report)
        return "\n".join(lines + ([note] if note else []))
    if report.first is not None:
        lines.append(f"FIRST MISMATCH: {report.first.text()}")
    lines.append(f"FAILED: {len(report.problems)} problem(s)")
    lines.extend(f"  {p.kind}: {p.text()}" for p in report.problems)
    if report.hints:
        lines.append("hints:")
        lines.extend(f"  {h.text()}" for h in report.hints[:20])
        if len(report.hints) > 20:
            lines.append(f"  … and {len(report.hints) - 20} more")
    return "\n".join(lines)
