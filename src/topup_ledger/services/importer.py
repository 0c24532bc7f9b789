"""Bulk import: every row of a CSV export is recorded, already recorded, or rejected.

How a file is imported:

1. What the ledger knows (reference data and every plan's facts) is read once, in one pass,
   into memory (:class:`Staging`). Nothing is read from the store per row.
2. Each row is turned into the same call a ``topup`` command makes (``Ledger.add_school``,
   ``issue_plan``, ``transfer``, ...) on a :class:`StagedLedger`: the ledger's own commands,
   unchanged, reading from and appending to the in-memory state. So a row is checked by
   exactly the rules of the single command, against what the ledger knows *plus the
   earlier rows of the same file* (a plan issued on line 3 can move on line 9).
3. A row whose fact is already in the ledger (or earlier in the file) is reported as
   *already recorded*, not recorded twice: importing the same file again records nothing.
4. If any row is rejected, nothing is recorded unless ``partial`` is asked for. Otherwise
   every staged fact is recorded in one atomic ``EventStore.append_many`` (one transaction,
   the same stored rows as ``append``, encoded and inserted in bulk): all or nothing.

The recorded time of every fact of one import is one reading of the ledger's clock: they
were learned together, in one transaction.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.events import REFERENCE_TYPES
from topup_ledger.domain.plan import RecordedFact
from topup_ledger.domain.reference import Reference
from topup_ledger.engine import collector
from topup_ledger.io.import_csv import (
    FileRefused,
    Row,
    Table,
    date_cell,
    decimal_cell,
    optional,
    personal_columns,
    pounds_cell,
    read_table,
    required,
)
from topup_ledger.io.text_safety import refused_character
from topup_ledger.services import protection
from topup_ledger.services.import_spill import StagedFacts
from topup_ledger.services.payees import PAYEE_COLUMNS, check_payee_row, payee_from_row
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.pages import StoredPages
from topup_ledger.storage.store import ConflictError, EventStore, Recorded, conflict
from topup_ledger.storage.streams import plan_stream, school_stream

KINDS = ("schools", "rates", "tariffs", "plans", "changes")
CHANGES = ("hours", "transfer", "band", "move", "cease", "correct", "protect", "protection-extend",
           "protection-end")

RECORDED, ALREADY, REJECTED = "recorded", "already recorded", "rejected"
PROGRESS_EVERY = 1000
# Bounded memory, whatever the size of the file (issue 21): rows are read and checked a chunk
# at a time (the streams a chunk names read from the ledger together), at most CACHED_STREAMS
# streams' facts stay in memory, and every row's outcome is kept only for files of up to
# KEPT_OUTCOMES rows (beyond, the rejected rows only; the counts are always exact).
CHUNK_ROWS = 2_000
CACHED_STREAMS = 20_000
KEPT_OUTCOMES = 10_000

# Each kind's columns: required, then optional. Tariffs also take one column per band.
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "schools": (("urn", "name", "setting"), ("la_code", *PAYEE_COLUMNS)),
    "rates": (("year", "hourly_rate", "weeks"), ("threshold", "reason", "from")),
    "tariffs": (("year",), ("setting", "reason", "from")),
    "plans": (("plan", "pupil", "school", "from"), ("hours", "band", "kind")),
    "changes": (("plan", "change"),
                ("from", "hours", "band", "school", "protect_until", "event", "reason")),
}

# Other names that exports commonly use for a column, by kind.
ALIASES: dict[str, dict[str, str]] = {
    "schools": {"school": "urn", "school_name": "name", "setting_type": "setting", "la": "la_code"},
    "rates": {"hourly": "hourly_rate", "rate": "hourly_rate", "weeks_per_year": "weeks"},
    "tariffs": {},
    "plans": {"plan_ref": "plan", "pupil_ref": "pupil", "urn": "school", "school_urn": "school",
              "effective": "from", "effective_from": "from", "start": "from",
              "hours_per_week": "hours", "plan_kind": "kind"},
    "changes": {"plan_ref": "plan", "urn": "school", "school_urn": "school",
                "effective": "from", "effective_from": "from", "note": "reason",
                "corrects": "event"},
}

# The columns (other than plan, change and reason) each kind of change reads: required first.
CHANGE_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hours": (("from", "hours"), ()),
    "transfer": (("from", "band"), ("protect_until",)),
    "band": (("from", "band"), ()),
    "move": (("from", "school"), ()),
    "cease": (("from",), ()),
    "correct": (("event",), ("from", "hours", "band", "school")),
    # protection as facts of its own (docs/rules.md §10): protect_until is the last day protected
    "protect": (("from", "protect_until"), ()),
    "protection-extend": (("protect_until",), ()),
    "protection-end": (("from",), ()),
}
# Changes whose fact keeps no reason: a reason given there would be lost, so it is refused.
NO_REASON = frozenset({"transfer", "move"})
NEEDS_REASON = frozenset({"band", "cease", "correct", "protect", "protection-extend",
                          "protection-end"})

_BAND_NAME = re.compile(r"^[A-Z][A-Z0-9+]{0,3}$")
_BAND_PREFIX = re.compile(r"^band[\s_-]*(\S+)$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s_]+")
_OPTION = re.compile(r"--([a-z]+(?:-[a-z]+)*)")


class AlreadyRecorded(Exception):
    """The row's fact is already in the ledger (or earlier in the file): nothing to add."""

    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id


# What the ledger knows, in memory, with what this import adds on top.


_REFERENCE = frozenset(REFERENCE_TYPES)
_PLAN_OR_REFERENCE = frozenset((*REFERENCE_TYPES, *ev.PLAN_FACTS, *ev.PAYEE_TYPES))
# The column of each kind of file that names a stream its rows read, and that stream.
STREAM_KEYS: dict[str, tuple[str, Callable[[str], str]]] = {
    "plans": ("plan", plan_stream), "changes": ("plan", plan_stream),
    "schools": ("urn", school_stream)}


class Staging:
    """The ledger's reference facts and the streams an import touches, plus the facts
    staged since.

    It answers the reads a :class:`Ledger` makes (``stream``, ``version``, ``recorded``)
    and takes its appends, so the ledger's commands run unchanged against it. The staged
    facts reach the real store only through :meth:`commit`.

    Reference facts (schools, rates, tariffs, calendars) are read in full when the import
    starts; a plan's facts are read from the ledger's own stream, as of that same position,
    only when a row names the plan (``fetch`` reads many at once). An import therefore
    costs what its rows touch, not the size of the ledger: reading every plan fact of a
    national ledger before each batch took longer than checking the batch.

    Memory stays bounded whatever the size of the files (issue 21): the staged facts are
    kept on disk (:class:`StagedFacts`), and ``streams`` holds the facts of at most
    ``CACHED_STREAMS`` streams, those used last; a stream let go is read again, from the
    ledger and the staged facts, when a row names it again.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.location = store.location
        # the streams as known, the one used last at the end
        self.streams: OrderedDict[str, list[Recorded]] = OrderedDict()
        self.reference = Reference()  # as known, staged facts included
        self.reference_facts: list[tuple[int, Recorded]] = []
        self.staged = StagedFacts()
        self.let_go = False  # whether a stream has been let go of (its staged facts are on disk only)
        self.pages: StoredPages | None = None
        # Everything after this position (another writer's) is unseen: appending to a
        # stream it changed conflicts at commit, and nothing is recorded.
        self.position = store.max_position()
        for n in store.notifications(upto=self.position, types=REFERENCE_TYPES):
            recorded = store.mapper.to_domain_event(n)
            self.streams.setdefault(recorded.originator_id, []).append(recorded)
            self._reference(recorded, n.id)

    def fetch(self, names: Iterable[str]) -> None:
        """Read the named streams (those not in memory), many per SELECT: the ledger's facts
        as of the import's position, then those staged to them since."""
        wanted = []
        for name in dict.fromkeys(names):
            if name in self.streams:
                self.streams.move_to_end(name)  # in use: let go of others first
            else:
                wanted.append(name)
        if not wanted:
            return
        if self.pages is None:  # one reader for the whole import, not one per fetch
            self.pages = StoredPages(self.store)
        found: dict[str, list[Recorded]] = {name: [] for name in wanted}
        for row in self.pages.each_stream(wanted, self.position):
            if row.topic in _PLAN_OR_REFERENCE:
                found[row.originator_id].append(self.store.mapper.to_domain_event(row))
        if self.let_go:  # until a stream is let go of, every staged fact is in memory too
            for name, staged in self.staged.of_streams(wanted).items():
                found[name].extend(staged)
        self.streams.update(found)
        while len(self.streams) > CACHED_STREAMS:  # the streams used longest ago
            self.streams.popitem(last=False)
            self.let_go = True

    def close(self) -> None:
        """Let go of the ledger reader (the import has been committed or abandoned)."""
        if self.pages is not None:
            self.pages.close()
            self.pages = None

    def records(self, name: str) -> list[Recorded]:
        """The stream's facts as known, read on first use (or again, once let go)."""
        facts = self.streams.get(name)
        if facts is None:
            self.fetch([name])
            return self.streams[name]
        self.streams.move_to_end(name)
        return facts

    def _reference(self, recorded: Recorded, position: int) -> None:
        self.reference_facts.append((position, recorded))
        self.reference.apply(recorded.fact, recorded.id, position)

    # The reads Ledger makes.

    def stream(self, name: str) -> list[RecordedFact]:
        return [RecordedFact(r.id, r.fact) for r in self.records(name)]

    def stream_recorded(self, name: str) -> list[Recorded]:
        return list(self.records(name))

    def version(self, name: str) -> int:
        records = self.records(name)
        return records[-1].originator_version if records else 0

    def recorded(self, after: int = 0, upto: int | None = None,
                 types: Sequence[str] = ()) -> Iterator[tuple[int, Recorded]]:
        """Reference facts only (all that Ledger reads this way), staged ones last."""
        if any(t not in REFERENCE_TYPES for t in types) or not types:
            raise NotImplementedError("a staged import serves reference facts only")
        for position, recorded in self.reference_facts:
            if after < position and (upto is None or position <= upto) and recorded.fact.TYPE in types:
                yield position, recorded

    def max_position(self) -> int:
        return self.position + len(self.staged)

    # The append Ledger makes: staged, checked like the store checks versions.

    def append(self, batch: Sequence[Recorded]) -> list[int]:
        versions: dict[str, int] = {}
        for r in batch:
            expected = versions.get(r.originator_id, self.version(r.originator_id)) + 1
            if r.originator_version != expected:
                raise ConflictError(f"{r.originator_id} is at version {expected - 1}, "
                                    f"not {r.originator_version - 1}")
            versions[r.originator_id] = expected
        positions = []
        for r in batch:
            known = self.records(r.originator_id)  # in memory before it is staged: once
            self.staged.add(r)
            known.append(r)
            position = self.max_position()
            if r.fact.TYPE in _REFERENCE:
                self._reference(r, position)
            positions.append(position)
        return positions

    def commit(self) -> Sequence[int]:
        """Record every staged fact in one atomic append; their ledger positions.

        If another writer recorded facts of the same streams since the ledger was read, the
        conflict names those streams (not every stream of the import) and nothing is recorded.
        """
        try:
            return self.store.append_many(self.staged.written())
        except ConflictError as error:
            since = {str(n.originator_id) for n in self.store.notifications(after=self.position)}
            clashing = [r for r in self.staged if r.originator_id in since]
            raise (conflict(r.originator_id for r in clashing) if clashing else error) from None


class StagedLedger(Ledger[Staging]):
    """The ledger's commands over a :class:`Staging`: the reference data kept up to date in
    memory instead of being folded again from the store for every command."""

    def reference(self, upto: int | None = None) -> Reference:
        return self.store.reference


# Results.


@dataclass(slots=True)
class Outcome:
    line: int
    status: str
    field: str = ""
    reason: str = ""
    events: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "status": self.status, "field": self.field,
                "reason": self.reason, "events": list(self.events)}


@dataclass
class ImportResult:
    path: str
    kind: str
    # every row's outcome for a file of up to KEPT_OUTCOMES rows; beyond, rejected rows only
    outcomes: list[Outcome] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # rows by status: always exact
    partial: bool = False
    committed: bool = False  # whether anything was recorded
    events: int = 0  # facts recorded (or that would have been, had nothing been rejected)
    positions: Sequence[int] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    blank_lines: int = 0

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def recorded(self) -> int:
        return self.count(RECORDED) if self.committed else 0

    @property
    def already(self) -> int:
        return self.count(ALREADY)

    @property
    def rejected(self) -> int:
        return self.count(REJECTED)

    @property
    def not_recorded(self) -> int:
        """Valid rows left out because other rows were rejected (no --partial)."""
        return 0 if self.committed else self.count(RECORDED)

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        if outcome.status == REJECTED or self.rows <= KEPT_OUTCOMES:
            self.outcomes.append(outcome)

    def rejects(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == REJECTED]

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.path, "kind": self.kind, "rows": self.rows, "recorded": self.recorded,
            "already_recorded": self.already, "rejected": self.rejected,
            "not_recorded_because_of_rejects": self.not_recorded,
            "events_recorded": self.events if self.committed else 0,
            "partial": self.partial, "committed": self.committed,
            "blank_lines": self.blank_lines, "ignored_columns": self.ignored_columns,
            "rejects": [o.as_json() for o in self.rejects()],
        }


# Reading a file's columns.


def infer_kind(headers: Iterable[str], path: str = "") -> str:
    """The kind of export, from its columns (or, failing that, its file name)."""
    names = set(headers)
    if "change" in names:
        return "changes"
    if names & {"pupil", "pupil_ref"}:
        return "plans"
    if names & {"hourly_rate", "hourly"}:
        return "rates"
    if {"name", "setting"} <= names or {"school_name", "setting"} <= names:
        return "schools"
    stem = Path(path).stem.lower()
    for kind in KINDS:
        if stem.startswith(kind) or stem.startswith(kind.rstrip("s")):
            return kind
    if "year" in names:
        return "tariffs"
    raise FileRefused(f"{path}: cannot tell what this file holds from its columns; "
                      f"say --kind {'|'.join(KINDS)}")


@dataclass(frozen=True)
class Layout:
    """How a file's columns map onto a kind's columns; band columns for tariffs."""

    kind: str
    rename: dict[str, str]  # file column (normalised) → our column
    bands: dict[str, str]  # file column → band name (tariffs)
    ignored: list[str]  # columns as written in the file that this kind does not read


def layout(table: Table, kind: str) -> Layout:
    if kind not in KINDS:
        raise FileRefused(f"{kind!r} is not one of {', '.join(KINDS)}")
    refused = personal_columns([table.original[h] for h in table.headers],
                               school_names=kind == "schools")
    if refused:
        raise FileRefused(
            f"{table.path}: column(s) {', '.join(refused)} would carry a pupil's name, date of "
            "birth or other identity; the ledger keeps only pseudonymous pupil references "
            "(the pupil column). Remove those columns and import again; nothing was recorded")
    needed, extra = COLUMNS[kind]
    known = (*needed, *extra)
    aliases = ALIASES[kind]
    rename: dict[str, str] = {}
    bands: dict[str, str] = {}
    ignored: list[str] = []
    for header in table.headers:
        ours = header if header in known else aliases.get(header)
        if ours is not None and ours not in rename.values():
            rename[header] = ours
            continue
        band = band_of(table.original[header]) if kind == "tariffs" else None
        if band is not None:
            if band in bands.values():
                raise FileRefused(f"{table.path}, line 1: band {band} has two columns")
            bands[header] = band
            continue
        ignored.append(table.original[header])
    missing = [c for c in needed if c not in rename.values()]
    if missing:
        raise FileRefused(f"{table.path}, line 1: a {kind} file needs column(s) "
                          f"{', '.join(missing)}; it has {', '.join(table.original.values())}")
    if kind == "tariffs" and not bands:
        raise FileRefused(f"{table.path}, line 1: a tariffs file needs one column per band, "
                          "headed by the band's name (A, B, ... or 'band A')")
    return Layout(kind, rename, bands, ignored)


def band_of(header: str) -> str | None:
    """A tariff column's band: 'D', 'C+', 'Band D' or 'band_d' → the band's name."""
    text = header.strip()
    prefixed = _BAND_PREFIX.match(text)
    name = prefixed.group(1).upper() if prefixed else text
    return name if _BAND_NAME.match(name) else None


def _cells(row: Row, rename: dict[str, str]) -> Row:
    return Row(row.line, {ours: row.cells.get(theirs, "") for theirs, ours in rename.items()},
               row.extra)


# One row → one ledger command. Each returns the ids of the facts it staged, or raises
# AlreadyRecorded, RuleError or MissingTerms.


def _stream_facts(ledger: StagedLedger, stream: str) -> list[Recorded]:
    return ledger.store.records(stream)


def _already(ledger: StagedLedger, stream: str, same: Callable[[ev.Fact], bool]) -> None:
    for recorded in _stream_facts(ledger, stream):
        if same(recorded.fact):
            raise AlreadyRecorded(recorded.id)


def _already_in_plan(ledger: StagedLedger, ref: str, kind: type[ev.Fact], **fields: Any) -> None:
    """Raise AlreadyRecorded if the plan has a ``kind`` fact with these fields (every field
    of a plan fact but ``plan``, or those named): no candidate fact is built for the test."""
    for recorded in _stream_facts(ledger, plan_stream(ref)):
        fact = recorded.fact
        if type(fact) is kind and all(getattr(fact, k) == v for k, v in fields.items()):
            raise AlreadyRecorded(recorded.id)


def _school(ledger: StagedLedger, row: Row, bands: dict[str, str]) -> list[str]:
    staged = len(ledger.store.staged)
    payee = {c: optional(row, c) for c in PAYEE_COLUMNS}
    check_payee_row(ledger, required(row, "urn"), payee)  # before the school is staged
    payee_from = date_cell(row, "payee_from")
    event = ledger.add_school(required(row, "urn"), required(row, "name"),
                              required(row, "setting").lower(), optional(row, "la_code"))
    events = [] if len(ledger.store.staged) == staged else [event]
    # who the school is paid through, if the row says (issue 22): recorded like `school set`
    events += payee_from_row(ledger, required(row, "urn"), payee, payee_from)
    if not events:  # the same school, already known
        raise AlreadyRecorded(event)
    return events


def _rate(ledger: StagedLedger, row: Row, bands: dict[str, str]) -> list[str]:
    year = required(row, "year")
    hourly = pounds_cell(row, "hourly_rate")
    weeks = decimal_cell(row, "weeks")
    threshold = pounds_cell(row, "threshold")
    threshold = 600_000 if threshold is None else threshold  # as `topup rate set`
    reason = row.text("reason")
    effective = date_cell(row, "from")
    assert hourly is not None and weeks is not None  # required: checked before this is called
    fact = ev.HourlyRateSet(year, hourly, weeks, threshold, reason, effective)
    _already(ledger, f"rate:{year}", lambda f: f == fact)
    return [ledger.set_rate(year, hourly, weeks, threshold, reason, effective)]



def _tariff(ledger: StagedLedger, row: Row, bands: dict[str, str]) -> list[str]:
    year = required(row, "year")
    values: dict[str, int] = {}
    for column, band in bands.items():
        pence = pounds_cell(row, column)
        if pence is not None:
            values[band] = pence
    if not values:
        raise RuleError("band", "the row gives no band values")
    setting = (optional(row, "setting") or "").lower() or None
    reason = row.text("reason")
    effective = date_cell(row, "from")
    fact = ev.TariffSet(year, tuple(sorted(values.items())), setting, reason, effective)
    _already(ledger, f"tariff:{year}" + (f":{setting}" if setting else ""), lambda f: f == fact)
    return [ledger.set_tariff(year, values, setting, reason, effective)]


def _plan(ledger: StagedLedger, row: Row, bands: dict[str, str]) -> list[str]:
    ref, pupil, school = required(row, "plan"), required(row, "pupil"), required(row, "school")
    effective = date_cell(row, "from")
    assert effective is not None
    hours = decimal_cell(row, "hours")
    band = _band(row)
    kind = (optional(row, "kind") or "ehcp").lower()
    existing = _stream_facts(ledger, plan_stream(ref))
    if existing and existing[0].fact == ev.PlanIssued(ref, pupil, school, effective, kind, hours, band):
        raise AlreadyRecorded(existing[0].id)
    return [ledger.issue_plan(ref, pupil, school, effective, hours, band, kind)]


def _band(row: Row) -> str | None:
    band = optional(row, "band")
    return band.upper() if band else None


def _change(ledger: StagedLedger, row: Row, bands: dict[str, str]) -> list[str]:
    ref = required(row, "plan")
    change = required(row, "change").lower()
    if change not in CHANGE_COLUMNS:
        raise RuleError("change", f"{change!r} is not one of {', '.join(CHANGES)}")
    needed, extra = CHANGE_COLUMNS[change]
    for column in ("from", "hours", "band", "school", "protect_until", "event"):
        if row.text(column) and column not in needed and column not in extra:
            raise RuleError(column, f"does not apply to a {change} change; leave it empty")
    for column in needed:
        required(row, column)
    reason = row.text("reason")
    if change in NO_REASON and reason:
        raise RuleError("reason", f"a {change} keeps no reason in the ledger, so this one would "
                        "be lost; leave it empty")
    if change in NEEDS_REASON and not reason:
        raise RuleError("reason", f"a {change} needs a reason"
                        + (" (the note saying why the event was wrong)" if change == "correct" else ""))
    effective = date_cell(row, "from")
    hours = decimal_cell(row, "hours")
    band = _band(row)
    school = optional(row, "school")
    if change == "hours":
        assert effective is not None and hours is not None
        _already_in_plan(ledger, ref, ev.HoursChanged, effective=effective, hours=hours, reason=reason)
        return [ledger.change_hours(ref, hours, effective, reason)]
    if change == "transfer":
        assert effective is not None and band is not None
        until = date_cell(row, "protect_until")
        # the prior amount is the ledger's to work out: the row is identified without it
        _already_in_plan(ledger, ref, ev.TransferredToBand, effective=effective, band=band,
                         protect_until=until)
        return [ledger.transfer(ref, band, effective, until)]
    if change == "band":
        assert effective is not None and band is not None
        why = _SEPARATORS.sub("-", reason.lower())
        _already_in_plan(ledger, ref, ev.BandChanged, effective=effective, band=band, reason=why)
        return [ledger.change_band(ref, band, effective, why)]
    if change == "move":
        assert effective is not None and school is not None
        _already_in_plan(ledger, ref, ev.PlacementMoved, effective=effective, school=school)
        return [ledger.move(ref, school, effective)]
    if change == "cease":
        assert effective is not None
        _already_in_plan(ledger, ref, ev.PlanCeased, effective=effective, reason=reason)
        return [ledger.cease(ref, effective, reason)]
    if change.startswith("protect"):
        return _protection(ledger, row, ref, change, effective, reason)
    event = required(row, "event")
    target = event if "/" in event else f"{ref}/{event}"
    _already_in_plan(ledger, ref, ev.Corrected, corrects=target, note=reason, band=band, hours=hours,
                     effective=effective, school=school)
    return [ledger.correct(ref, event, reason, band=band, hours=hours, effective=effective,
                           school=school)]


def _protection(ledger: StagedLedger, row: Row, ref: str, change: str, effective: date | None,
                reason: str) -> list[str]:
    """A protect, protection-extend or protection-end row: as `topup plan protect`,
    `protection-extend` and `protection-end` (services/protection.py)."""
    until = date_cell(row, "protect_until")
    if change == "protect":
        assert effective is not None and until is not None
        _already_in_plan(ledger, ref, ev.ProtectionGranted, effective=effective, until=until,
                         reason=reason.strip())
        return [protection.grant(ledger, ref, effective, until, reason)]
    if change == "protection-extend":
        assert until is not None
        _already_in_plan(ledger, ref, ev.ProtectionExtended, until=until, reason=reason.strip())
        return [protection.extend(ledger, ref, until, reason)]
    assert effective is not None
    _already_in_plan(ledger, ref, ev.ProtectionEnded, effective=effective, reason=reason.strip())
    return [protection.end(ledger, ref, effective, reason)]


HANDLERS: dict[str, Callable[[StagedLedger, Row, dict[str, str]], list[str]]] = {
    "schools": _school, "rates": _rate, "tariffs": _tariff, "plans": _plan, "changes": _change,
}


def chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """``rows`` in lists of ``size`` (the last shorter), read as they are needed."""
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _plain(problem: str) -> str:
    """The commands' messages name their options (--hours); a file names its columns."""
    return _OPTION.sub(lambda m: m.group(1).replace("-", "_"), problem)


# The service.


class Import:
    """One import into one ledger: read what it knows once, stage rows, commit once.

    Several files can be staged in turn (schools, then plans, then changes) and committed
    together, each file judged against the ledger plus the files staged before it.
    """

    def __init__(self, ledger: Ledger, now: datetime | None = None) -> None:
        self.store = ledger.store
        self.staging = Staging(ledger.store)
        when = now or ledger.clock()
        self.ledger = StagedLedger(self.staging, clock=lambda: when)
        self.results: list[ImportResult] = []
        self.current = ""

    def stage_table(self, table: Table, kind: str | None = None,
                    progress: Callable[[int], None] | None = None) -> ImportResult:
        """Check and stage every row; ``progress`` hears of every ``PROGRESS_EVERY`` rows."""
        with collector.paused():  # every row's facts and outcome: many objects, no cycles
            return self._stage_table(table, kind, progress)

    def _stage_table(self, table: Table, kind: str | None,
                     progress: Callable[[int], None] | None) -> ImportResult:
        kind = kind or infer_kind(table.headers, table.path)
        shape = layout(table, kind)
        result = ImportResult(table.path, kind, ignored_columns=shape.ignored)
        handler = HANDLERS[kind]
        self.current = table.path
        needed = COLUMNS[kind][0]
        staged_before = len(self.staging.staged)
        rename = shape.rename | {h: h for h in shape.bands}
        key, stream_of = STREAM_KEYS.get(kind, ("", plan_stream))
        key_column = next((theirs for theirs, ours in rename.items() if ours == key), None)
        as_is = all(theirs == ours for theirs, ours in rename.items())  # no column to rename
        n = 0
        for chunk in chunks(table.rows, CHUNK_ROWS):
            # The streams the chunk's rows name (plans, or schools), read from the ledger at once.
            if key_column is not None:
                self.staging.fetch([stream_of(raw.cells.get(key_column, "").strip())
                                    for raw in chunk])
            for raw in chunk:
                n += 1
                if progress is not None and n % PROGRESS_EVERY == 0:
                    progress(PROGRESS_EVERY)
                result.add(self._stage_row(raw, rename if not as_is else None, needed, handler,
                                           shape.bands, table.path))
        result.blank_lines = table.blank_lines
        result.events = len(self.staging.staged) - staged_before
        self.results.append(result)
        return result

    def _stage_row(self, raw: Row, rename: dict[str, str] | None, needed: Sequence[str],
                   handler: Callable[[StagedLedger, Row, dict[str, str]], list[str]],
                   bands: dict[str, str], path: str) -> Outcome:
        row = raw if rename is None else _cells(raw, rename)
        if raw.extra:
            return Outcome(row.line, REJECTED, "(line)",
                           f"{len(raw.extra)} more cell(s) than the file has columns "
                           f"({', '.join(raw.extra)[:80]}): a stray comma?")
        try:
            for column, cell in row.cells.items():
                why = refused_character(cell, column)
                if why is not None:
                    raise RuleError(column, why)
            for column in needed:
                required(row, column)
            events = handler(self.ledger, row, bands)
        except AlreadyRecorded as known:
            return Outcome(row.line, ALREADY, reason=self._where(known.event_id),
                           events=(known.event_id,))
        except RuleError as error:
            column = error.field.replace("-", "_")
            return Outcome(row.line, REJECTED, column, _plain(error.problem))
        except MissingTerms as error:
            return Outcome(row.line, REJECTED, "", "; ".join(error.missing))
        for event in events:
            self.staging.staged.note_line(event, path, row.line)
        return Outcome(row.line, RECORDED, events=tuple(events))

    def _where(self, event_id: str) -> str:
        where = self.staging.staged.line_of(event_id)
        if where is None:
            return f"already in the ledger as {event_id}"
        path, line = where
        return f"the same as line {line}" + (f" of {path}" if path != self.current else "")

    def commit(self, partial: bool = False) -> Sequence[int]:
        """Record what was staged, atomically; nothing if any row was rejected and not
        ``partial``. The staged facts on disk are let go of either way."""
        rejected = any(r.rejected for r in self.results)
        for result in self.results:
            result.partial = partial
        self.staging.close()
        try:
            if (rejected and not partial) or not self.staging.staged:
                return []
            with collector.paused():
                positions = self.staging.commit()
        finally:
            self.staging.staged.close()
        for result in self.results:
            result.committed = True
        return positions


def import_table(ledger: Ledger, table: Table, kind: str | None = None, *,
                 partial: bool = False, progress: Callable[[int], None] | None = None) -> ImportResult:
    job = Import(ledger)
    result = job.stage_table(table, kind, progress)
    result.positions = job.commit(partial)
    return result


def import_file(ledger: Ledger, path: Path | str, kind: str | None = None, *,
                partial: bool = False) -> ImportResult:
    """Import one CSV file; raises FileRefused if the file as a whole cannot be read."""
    return import_table(ledger, read_table(path), kind, partial=partial)

