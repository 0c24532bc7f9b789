"""What every projection of plans shares: the plans it has seen, the reference facts, and a
set of *dirty* plans whose derived rows are recomputed after a fold.

Why not fold money straight from the events? A plan's due depends on its whole history
(a correction or a backdated band change rewrites what earlier periods were worth), and on
reference data that can be revised later (a tariff revision applies to its whole financial
year). So a projection marks a plan dirty whenever something that bears on it is folded, and
after the fold recomputes only dirty plans with the same domain rules the payment run uses,
reading each one's facts from the ledger's own stream up to the position folded (the store
indexes events by stream, so this is a few reads, where a copy of every fact in the projection
file would cost more to write and read back than the whole fold). State is proportional to
plans and schools, never to events: payment events are folded into running totals, not kept.

A change to reference data (a school, a rate, a tariff, a calendar) makes every plan dirty;
that happens a few times a year. A move of the horizon into a later period (every termly run
makes one) need not: a fold may instead *extend* every plan's rows to the periods reached
(``extend_to_new_horizon``, ``extension``), leaving the rows of earlier periods as they stand.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from topup_ledger.domain import events as ev
from topup_ledger.domain.events import REFERENCE_TYPES as REFERENCE_FACTS
from topup_ledger.domain.plan import RecordedFact
from topup_ledger.domain.reference import Reference
from topup_ledger.engine import cores as machine
from topup_ledger.projections.db import ProjectionDB
from topup_ledger.projections.tables import FoldTables
from topup_ledger.storage.codec import fact_from_data
from topup_ledger.storage.pages import StoredPages, StoredRow
from topup_ledger.storage.store import EventStore, event_id
from topup_ledger.storage.upcasting import upcast

REFERENCE_TYPES = frozenset(REFERENCE_FACTS)  # the set a page's topics are tested against
CHUNK = 1_000  # plans recomputed per transaction on one core

ContextT = TypeVar("ContextT")  # what recomputing a plan needs besides its facts
RowsT = TypeVar("RowsT")  # a chunk of plans' derived rows, as worked out before being written


class Decoder:
    """Stored state → data or facts, through the store's own mapper (cipher, compression)."""

    def __init__(self, store: EventStore) -> None:
        self.mapper = store.mapper

    def envelope(self, state: bytes) -> dict[str, Any]:
        return self.mapper.decode_state(state)

    def data(self, topic: str, state: bytes) -> dict[str, Any]:
        envelope = self.mapper.decode_state(state)
        return upcast(topic, envelope["v"], envelope["data"])

    def fact(self, topic: str, state: bytes) -> ev.Fact:
        return fact_from_data(topic, self.data(topic, state))

    def at(self, state: bytes) -> str:
        return str(self.mapper.decode_state(state)["at"])


def state_digest(state: bytes) -> str:
    """The sha256 of a stored event's state: tells whether the event at a position is the one
    a projection was folded from."""
    return hashlib.sha256(state).hexdigest()


def plan_of(stream: str) -> str:
    return stream[5:] if stream.startswith("plan:") else stream


def recorded_date(at: str) -> date:
    """The UTC date of a recorded time: the day the ledger stood at."""
    when = datetime.fromisoformat(at)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).date()


class PlanFold(FoldTables, Generic[ContextT, RowsT]):
    """A projection over plans: subclasses add their own tables, fold and recompute, working
    plans' rows out as ``RowsT`` in a ``ContextT`` (reference data, and whatever else every
    plan's rows depend on)."""

    name: str = ""
    SCHEMA = 1  # raised when the tables or what they hold change: the fold starts again from nothing
    everything = False  # in the page being folded: every plan will be recomputed
    # While refreshing: where plans' facts are read from, and up to which position.
    reader: StoredPages
    upto = 0

    def base_tables(self) -> list[str]:
        return [
            f"CREATE TABLE {self.table('plan')} (plan TEXT PRIMARY KEY, stream TEXT NOT NULL) WITHOUT ROWID",
            f"CREATE TABLE {self.table('ref')} (position INTEGER PRIMARY KEY, stream TEXT NOT NULL, "
            "version INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB NOT NULL)",
            f"CREATE TABLE {self.table('dirty')} (plan TEXT PRIMARY KEY) WITHOUT ROWID",
            *super().base_tables(),
        ]

    # The fold of one page (inside the runner's transaction).

    def fold(self, conn: sqlite3.Connection, page: Sequence[StoredRow], decoder: Decoder) -> None:
        streams: dict[str, str] = {}
        refs: list[tuple[int, str, int, str, bytes]] = []
        plans: dict[str, bool] = {}  # plan → transferred to a band in this page
        transferred = ev.TransferredToBand.TYPE
        for n in page:
            position, stream, version, topic, state = n
            if topic.startswith("plan."):
                plan = plan_of(stream)
                streams[plan] = stream
                plans[plan] = plans.get(plan, False) or topic == transferred
            elif topic in REFERENCE_TYPES:
                refs.append((position, stream, version, topic, state))
            else:
                self.fold_other(n, decoder)
        # Every plan is recomputed anyway after reference data changed: no need to mark them.
        self.everything = bool(refs) or self.meta(conn, "all_dirty") == "1"
        if streams:
            conn.executemany(f"INSERT OR IGNORE INTO {self.table('plan')} VALUES (?, ?)", streams.items())
            self.touch(conn, plans)
        if refs:
            conn.executemany(f"INSERT INTO {self.table('ref')} VALUES (?, ?, ?, ?, ?)", refs)
            self.set_meta(conn, "all_dirty", "1")
        self.flush(conn)
        self.set_meta(conn, "last_at", decoder.at(page[-1].state))

    def touch(self, conn: sqlite3.Connection, plans: dict[str, bool]) -> None:
        """Mark plans dirty after new facts of theirs were folded."""
        if self.everything:
            return
        conn.executemany(f"INSERT OR IGNORE INTO {self.table('dirty')} VALUES (?)",
                         ((p,) for p in plans))

    def fold_other(self, n: StoredRow, decoder: Decoder) -> None:
        """Any event that is neither a plan's nor reference data (payments, seals)."""

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write what ``fold_other`` gathered in this page."""

    # Reading back.

    def reference(self, conn: sqlite3.Connection, decoder: Decoder) -> Reference:
        ref = Reference()
        for position, stream, version, topic, state in conn.execute(
                f"SELECT position, stream, version, topic, state FROM {self.table('ref')} ORDER BY position"):
            ref.apply(decoder.fact(topic, state), event_id(stream, version), position)
        return ref

    def plan_facts(self, conn: sqlite3.Connection, plans: Iterable[str],
                   decoder: Decoder) -> dict[str, list[RecordedFact]]:
        """Each plan's facts as the ledger holds them up to the position folded (read from
        the ledger's own streams, in version order: ledger order within a stream)."""
        plans = list(plans)
        found: dict[str, list[RecordedFact]] = {p: [] for p in plans}
        marks = ",".join("?" * len(plans))
        streams = dict(conn.execute(
            f"SELECT stream, plan FROM {self.table('plan')} WHERE plan IN ({marks})", plans).fetchall())
        for position, stream, version, topic, state in self.reader.streams(sorted(streams),
                                                                            self.upto):
            if topic.startswith("plan."):
                found[streams[stream]].append(
                    RecordedFact(event_id(stream, version), decoder.fact(topic, state), position))
        return found

    # Recomputing dirty plans (after the fold; resumable, chunk by chunk).

    def refresh(self, db: ProjectionDB, decoder: Decoder, reader: StoredPages) -> int:
        """Recompute every dirty plan (reading their facts through ``reader``); returns how
        many were recomputed."""
        done = 0
        self.reader = reader
        while True:
            with db.transaction() as conn:
                position = self.upto = self.position(db, conn)
                self.update_totals(conn)
                signature = self.signature(conn, decoder)
                previous = self.meta(conn, "signature")
                moved = previous != signature
                if self.meta(conn, "all_dirty") == "1" or (
                        moved and not self.extend_to_new_horizon(conn, previous, signature, decoder)):
                    self.all_dirty(conn)
                    self.set_meta(conn, "all_dirty", "0")
                if moved:
                    self.set_meta(conn, "signature", signature)
            context = self.context(db.conn, decoder)
            restart = False
            while not restart:
                with db.transaction() as conn:
                    if self.position(db, conn) != position:
                        restart = True  # another process folded more meanwhile: start again
                        continue
                    plans = [row[0] for row in conn.execute(
                        f"SELECT plan FROM {self.table('dirty')} ORDER BY plan LIMIT ?",
                        (self.batch(),))]
                    if plans:
                        self.recompute_shared(db, conn, plans, context, decoder)
                        conn.executemany(f"DELETE FROM {self.table('dirty')} WHERE plan = ?",
                                         ((p,) for p in plans))
                        done += len(plans)
                    elif (extension := self.extension(conn, context)) is not None:
                        plans, extending = extension
                        self.recompute_shared(db, conn, plans, extending, decoder)
                        done += len(plans)
                    elif not self.recheck_paid(conn, context, decoder):
                        self.finish(conn, context)
                        return done

    @staticmethod
    def batch() -> int:
        """Dirty plans taken per transaction: a chunk, or enough to give every core a share."""
        shared = machine.cores()
        return CHUNK if shared == 1 else max(CHUNK, machine.PLANS_PER_CORE * shared)

    def recompute_shared(self, db: ProjectionDB, conn: sqlite3.Connection, plans: list[str],
                         context: ContextT, decoder: Decoder) -> None:
        """Recompute ``plans``, shared over the cores when there are enough of them: each
        forked child reads through connections of its own (the projection file read-only:
        what was committed before this transaction, which the children's reads do not see
        change) and sends back its rows; only this process writes, its own share's rows
        while the children are still working."""
        shares = machine.shares_of(plans)

        def work(share: Sequence[str], forked: bool) -> RowsT | None:
            if not forked:
                self.recompute(conn, list(share), context, decoder)
                return None
            self.reader = self.reader.reopened()
            reading = db.reader()
            try:
                return self.worked_out(reading, list(share), context, decoder)
            finally:
                reading.close()
                self.reader.close()

        found = machine.shared_out(shares, work)
        for share, rows in zip(shares, found, strict=True):
            if rows is not None:  # a child's share: this process wrote its own already
                self.write(conn, list(share), rows, context)

    def recompute(self, conn: sqlite3.Connection, plans: list[str], context: ContextT,
                  decoder: Decoder) -> None:
        self.write(conn, plans, self.worked_out(conn, plans, context, decoder), context)

    def position(self, db: ProjectionDB, conn: sqlite3.Connection) -> int:
        tracked = db.tracked(self.name, conn)
        return tracked.position if tracked else 0

    def all_dirty(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"INSERT OR IGNORE INTO {self.table('dirty')} SELECT plan FROM {self.table('plan')}")

    # What subclasses work out, and the optional steps of a refresh.

    def context(self, conn: sqlite3.Connection, decoder: Decoder) -> ContextT:
        """What recomputing plans needs besides their facts, as folded."""
        raise NotImplementedError

    def worked_out(self, conn: sqlite3.Connection, plans: list[str], context: ContextT,
                   decoder: Decoder) -> RowsT:
        """The derived rows of ``plans``, from reads alone (it may run in a forked child)."""
        raise NotImplementedError

    def write(self, conn: sqlite3.Connection, plans: list[str], rows: RowsT, context: ContextT) -> None:
        """Replace the derived rows of ``plans`` with ``rows`` (from ``worked_out``)."""
        raise NotImplementedError

    def update_totals(self, conn: sqlite3.Connection) -> None:
        """Bring folded running totals up to date before plans are recomputed."""

    def signature(self, conn: sqlite3.Connection, decoder: Decoder) -> str:
        """What, besides reference data, every plan's rows depend on (e.g. the horizon)."""
        return ""

    def extend_to_new_horizon(self, conn: sqlite3.Connection, previous: str, signature: str,
                              decoder: Decoder) -> bool:
        """The signature moved from ``previous``: True if plans' rows are to be extended
        (``extension``) instead of every plan being worked out again."""
        return False

    def extension(self, conn: sqlite3.Connection, context: ContextT
                  ) -> tuple[list[str], ContextT] | None:
        """After the dirty plans, the next chunk of plans whose rows are to be extended and
        the context to work them out in (its ``write`` removes their marks); None if none."""
        return None

    def recheck_paid(self, conn: sqlite3.Connection, context: ContextT, decoder: Decoder) -> bool:
        """After the dirty and extended plans, look again at one chunk of plans paid since
        they were worked out; False when there is none left."""
        return False

    def finish(self, conn: sqlite3.Connection, context: ContextT) -> None:
        """After the last plan: anything derived from all plans together."""
