"""The event store: an eventsourcing application over SQLite (default) or PostgreSQL.

One setting chooses the backend: a file path means SQLite, a ``postgresql://`` URL means
PostgreSQL. Facts are stored under stable type names (never Python paths) as JSON with
their schema version and recorded time; the library's recorder keeps them append-only and
gives them their ledger order (the notification id, called *position* here).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    Mapper,
    Notification,
    OperationalError,
    PersistenceError,
    StoredEvent,
    Transcoder,
)

from topup_ledger.domain import events as events_module
from topup_ledger.domain.events import Fact
from topup_ledger.domain.plan import RecordedFact
from topup_ledger.storage.codec import fact_from_data, to_data
from topup_ledger.storage.upcasting import upcast

PAGE = 2_000


class StoreError(RuntimeError):
    """The ledger's storage is missing, damaged or unreachable."""


class ConflictError(RuntimeError):
    """Another writer changed the same stream first; nothing of this command was recorded."""


@dataclass(frozen=True)
class Recorded:
    """A fact with the ledger's envelope: which stream, which version there, when recorded.

    It satisfies the library's domain-event protocol so the application can save it.
    """

    originator_id: str
    originator_version: int
    recorded_at: datetime
    fact: Fact | Written  # Written: only ``EventStore.append_many`` takes it

    @property
    def id(self) -> str:
        return event_id(self.originator_id, self.originator_version)


@dataclass(frozen=True)
class Written:
    """A fact of class ``kind`` already written as the JSON the ledger stores for its data,
    byte for byte what ``BulkEncoder`` would write for the fact itself. A payment run writes
    each line once, as it is worked out, and records each school's payment from those bytes
    rather than reading a million lines back into objects to write them again."""

    kind: type[Fact]
    data: bytes


class FactStore(Protocol):
    """What recording facts asks of a ledger's storage: a stream's facts and version, the
    reference facts in ledger order, and an atomic append that refuses a stream moved on
    by another writer. ``EventStore`` keeps them in SQLite or PostgreSQL; an import's
    ``Staging`` keeps them in memory until it commits."""

    location: str

    def stream(self, name: str) -> list[RecordedFact]: ...

    def stream_recorded(self, name: str) -> list[Recorded]: ...

    def version(self, name: str) -> int: ...

    def recorded(self, after: int = 0, upto: int | None = None,
                 types: Sequence[str] = ()) -> Iterator[tuple[int, Recorded]]: ...

    def append(self, batch: Sequence[Recorded]) -> list[int]: ...

    def max_position(self) -> int: ...


def event_id(stream: str, version: int) -> str:
    """``plan:P1``/3 → ``P1/3``; other streams keep their prefix (``tariff:2025-26/2``)."""
    label = stream[5:] if stream.startswith("plan:") else stream
    return f"{label}/{version}"


class OrjsonTranscoder(Transcoder):
    """Our states are plain JSON data already; orjson encodes them several times faster."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


class FactMapper(Mapper[str]):
    """Stores a fact under its stable type name with its schema version and recorded time."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        recorded: Recorded = domain_event
        state = self.transcoder.encode({
            "v": recorded.fact.VERSION,
            "at": recorded.recorded_at.isoformat(),
            "data": to_data(recorded.fact),
        })
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return StoredEvent(recorded.originator_id, recorded.originator_version,
                           recorded.fact.TYPE, state)

    def plain_bytes(self, state: bytes) -> bytes:
        """The stored state as JSON bytes: decrypted (and decompressed) if the ledger does that."""
        if self.cipher:
            try:
                state = self.cipher.decrypt(state)
            except ValueError:
                raise StoreError("cannot decrypt the ledger's events: TOPUP_CIPHER_KEY is not "
                                 "the key they were written with (or they were altered)") from None
        if self.compressor:
            state = self.compressor.decompress(state)
        return state

    def decode_state(self, state: bytes) -> dict[str, Any]:
        try:
            envelope = self.transcoder.decode(self.plain_bytes(state))
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):  # schema_check judges what is inside
            hint = "" if self.cipher else " (encrypted? set TOPUP_CIPHER_KEY)"
            raise StoreError(f"an event in the ledger cannot be read{hint}: the ledger is "
                             "damaged or was written with a cipher key; run `topup verify`")
        return envelope

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        state = self.decode_state(stored_event.state)
        data = upcast(stored_event.topic, state["v"], state["data"])
        return Recorded(str(stored_event.originator_id), stored_event.originator_version,
                        datetime.fromisoformat(state["at"]),
                        fact_from_data(stored_event.topic, data))


class LedgerApplication(Application[str]):
    name = "topup"

    def construct_mapper(self) -> Mapper[str]:
        return self.factory.mapper(transcoder=OrjsonTranscoder(), mapper_class=FactMapper)


def is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def environment(location: str, *, create: bool = False) -> dict[str, str]:
    """The library's settings for a ledger location (file path or postgresql:// URL).

    Tables are created only by ``topup init``: any other command on a ledger whose tables
    are missing must fail loudly rather than start an empty ledger in their place.
    """
    env = {"ORIGINATOR_ID_TYPE": "text", "CREATE_TABLE": "y" if create else "n"}
    if is_postgres(location):
        url = urlparse(location)
        env.update({
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "topup",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_LOCK_TIMEOUT": "10",
        })
        schema = postgres_schema(location)
        if schema:
            env["POSTGRES_SCHEMA"] = schema
    else:
        env.update({
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(location)),
            "SQLITE_LOCK_TIMEOUT": "30",
        })
    key = os.environ.get("TOPUP_CIPHER_KEY")
    if key:
        env.update({"CIPHER_TOPIC": "eventsourcing.cipher:AESCipher", "CIPHER_KEY": key})
    return env


def postgres_schema(location: str) -> str | None:
    """``postgresql://…/db?schema=la_123`` keeps one LA's ledger in its own schema."""
    query = urlparse(location).query
    return dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("schema")


def create_postgres_schema(location: str) -> None:
    import psycopg
    from psycopg import sql

    schema = postgres_schema(location)
    if not schema:
        return
    env = environment(location)
    try:
        with psycopg.connect(
            dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"], connect_timeout=5,
            autocommit=True,
        ) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    except psycopg.Error as error:
        detail = without_password(location, str(error).strip())
        raise StoreError(f"cannot reach PostgreSQL at {describe(location)}: {detail}") from None


def compress_states_with_lz4(recorder: Any) -> None:
    """Have PostgreSQL compress stored states with lz4 rather than its default pglz.

    A payment run's school payments carry every line (hundreds of megabytes nationally),
    and pglz compressing them was most of the time a run took to record; lz4 is faster
    and compresses them a little smaller (docs/benchmarks.md). It needs PostgreSQL 14 or
    later built with lz4; on any other server the default stays and nothing else changes.
    Only new values are affected, so a ledger made before keeps its rows as they are."""
    from psycopg import Error, sql

    statement = sql.SQL("ALTER TABLE {}.{} ALTER COLUMN state SET COMPRESSION lz4").format(
        sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name))
    try:
        with recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute(statement)
    except (Error, PersistenceError):
        pass


def storage_problem(location: str, error: BaseException) -> str:
    """What went wrong with the ledger's storage, in words, with any password hidden.

    The database's own transaction keeps an unfinished append out of the ledger, so the
    advice is always safe: fix the storage, then run the command again.
    """
    where = describe(location) if location else "the ledger"
    detail = without_password(location, " ".join(str(error).split()) or type(error).__name__)
    lowered = detail.lower()
    if any(w in lowered for w in ("malformed", "not a database", "disk i/o", "corrupt")):
        return (f"the ledger file {where} is damaged ({detail}); nothing more was recorded: "
                "restore it from a backup (`topup verify` checks the copy)")
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return (f"the ledger at {where} has lost its event table ({detail}): it is damaged "
                "or was not made by `topup init`")
    if any(w in lowered for w in ("connection", "terminat", "server closed", "could not connect",
                                  "timeout", "timed out")):
        return (f"lost the connection to the ledger at {where} ({detail}); what this command "
                "had not committed was not recorded: run it again when the server is back")
    return f"the ledger at {where} failed ({detail}); run the command again, or `topup verify`"


def without_password(location: str, text: str) -> str:
    """``text`` (a driver's message) with the ledger URL's password, if any, as ***."""
    try:
        password = urlparse(location).password or "" if is_postgres(location) else ""
    except ValueError:
        password = ""
    return text.replace(password, "***") if password else text


def describe(location: str) -> str:
    """The location with any password hidden, for messages."""
    if is_postgres(location):
        url = urlparse(location)
        if url.password:
            return location.replace(f":{url.password}@", ":***@")
    return location


class EventStore:
    """Append facts to named streams atomically and read them back in ledger order."""

    def __init__(self, location: str, *, create: bool = False) -> None:
        self.location = location
        if is_postgres(location):
            if create:
                create_postgres_schema(location)
        else:
            path = Path(location)
            if not create and not path.exists():
                raise StoreError(f"no ledger at {location}: run `topup init` first")
            if path.exists() and path.stat().st_size and not _looks_like_sqlite(path):
                raise StoreError(f"{location} is not a SQLite ledger (the file is damaged)")
            if path.exists() and (short := _truncated_by(path)):
                raise StoreError(f"the ledger file {location} is damaged (it is {short:,} bytes "
                                 "shorter than its header says: truncated); nothing was "
                                 "recorded: restore it from a backup")
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(mode=0o600, exist_ok=True)
        try:
            self.app = LedgerApplication(env=environment(location, create=create))
        except PersistenceError as error:
            detail = without_password(location, str(error))
            raise StoreError(f"cannot open the ledger at {describe(location)}: {detail}") from None
        except ValueError:  # the cipher's key: never repeat it in a message
            raise StoreError("TOPUP_CIPHER_KEY is not a valid key: it must be 16, 24 or 32 "
                             "random bytes, base64-encoded") from None
        self.mapper: FactMapper = self.app.mapper  # type: ignore[assignment]
        self.recorder = self.app.recorder
        if create and is_postgres(location):
            compress_states_with_lz4(self.recorder)

    def close(self) -> None:
        self.app.close()

    def stream(self, name: str) -> list[RecordedFact]:
        """Every fact of one stream, in its order."""
        return [RecordedFact(r.id, r.fact) for r in self.stream_recorded(name)]

    def stream_recorded(self, name: str) -> list[Recorded]:
        try:
            stored = self.recorder.select_events(name)
        except PersistenceError as error:
            raise StoreError(storage_problem(self.location, error)) from None
        return [self.mapper.to_domain_event(s) for s in stored]

    def version(self, name: str) -> int:
        last = self.recorder.select_events(name, desc=True, limit=1)
        return last[0].originator_version if last else 0

    def append(self, batch: Sequence[Recorded]) -> list[int]:
        """Record every fact of ``batch`` or none; returns their positions."""
        if not batch:
            return []
        try:
            recordings = self.app.save(*batch)
        except IntegrityError:
            raise conflict(r.originator_id for r in batch) from None
        except OperationalError as error:
            raise StoreError(storage_problem(self.location, error)) from None
        return [r.notification.id for r in recordings]

    def append_many(self, batch: Iterable[Recorded]) -> list[int]:
        """Record every fact of a large ``batch`` (an import, a payment run) or none; their
        positions.

        The same stored rows as :meth:`append` (streams, versions, type names, state bytes)
        in one transaction of the library's recorder, without ``Application.save``'s
        per-event protocol checks: the facts are encoded in one pass (:class:`BulkEncoder`)
        and inserted with one statement. ``batch`` is read once, as the rows go in, so it
        may be made as it is read (a payment run's, a school at a time). A stream version
        another writer recorded first is a :class:`ConflictError`, and then nothing of the
        batch is recorded.
        """
        facts = iter(batch)
        first = next(facts, None)
        if first is None:
            return []
        encoder = BulkEncoder(self.mapper)
        rows = encoder.encoded(itertools.chain([first], facts))
        try:
            if is_postgres(self.location):
                positions = self._insert_postgres(rows)
            else:
                positions = self._insert_sqlite(rows, encoder)
        except IntegrityError:
            raise conflict(encoder.streams) from None
        except OperationalError as error:
            raise StoreError(storage_problem(self.location, error)) from None
        if len(positions) != encoder.count:
            raise StoreError(f"the ledger recorded {len(positions)} of {encoder.count} events")
        return positions

    def _insert_sqlite(self, rows: Iterable[tuple[str, int, str, bytes]],
                       encoder: BulkEncoder) -> list[int]:
        """One ``executemany`` in the recorder's own transaction, with its own statement.

        The library's SQLite recorder inserts row by row to learn each rowid; here the
        positions follow from the last one: the transaction holds SQLite's one write lock
        from its first insert to its commit, and SQLite gives each new row the largest
        rowid plus one, so the batch's rows are the last ``encoder.count`` of the table.
        """
        recorder: Any = self.recorder
        with recorder.datastore.transaction(commit=True) as cursor:
            cursor.executemany(recorder.insert_events_statement, rows)
            cursor.execute(recorder.select_max_notification_id_statement)
            last = cursor.fetchone()[0]
        return list(range(last - encoder.count + 1, last + 1))

    def _insert_postgres(self, rows: Iterable[tuple[str, int, str, bytes]]) -> list[int]:
        """One binary COPY in the recorder's own transaction, after the recorder's table lock.

        The library's recorder sends a batch as one array of a composite type, which
        PostgreSQL took about twice as long to take in as plain INSERTs of the same rows;
        COPY takes them several times faster. As the recorder does, the transaction first
        locks the table against other writers (so positions are given in commit order) and
        notifies its channel; under that lock the rows after the previous largest position
        are exactly this batch's, in the order copied.
        """
        from psycopg import sql

        recorder: Any = self.recorder
        table = sql.SQL("{}.{}").format(sql.Identifier(recorder.datastore.schema),
                                         sql.Identifier(recorder.events_table_name))
        with recorder.datastore.transaction(commit=True) as cursor:
            for statement in recorder.lock_table_statements:
                cursor.execute(statement, prepare=True)
            cursor.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(recorder.channel_name)))
            cursor.execute(sql.SQL("SELECT COALESCE(MAX(notification_id), 0) AS last FROM {}")
                           .format(table))
            before = cursor.fetchone()["last"]
            with cursor.copy(sql.SQL("COPY {} (originator_id, originator_version, topic, state) "
                                     "FROM STDIN (FORMAT BINARY)").format(table)) as copy:
                copy.set_types([recorder.datastore.originator_id_type, "int8", "text", "bytea"])
                for row in rows:
                    copy.write_row(row)
            cursor.execute(sql.SQL("SELECT MIN(notification_id) AS first, MAX(notification_id) AS "
                                   "last, COUNT(*) AS n FROM {} WHERE notification_id > %s")
                           .format(table), (before,))
            found = cursor.fetchone()
            if found["n"] == found["last"] - found["first"] + 1:  # no gaps: the usual case
                return list(range(found["first"], found["last"] + 1))
            cursor.execute(sql.SQL("SELECT notification_id FROM {} WHERE notification_id > %s "
                                   "ORDER BY notification_id").format(table), (before,))
            return [row["notification_id"] for row in cursor.fetchall()]

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def notifications(self, after: int = 0, upto: int | None = None,
                      types: Sequence[str] = (), page: int = PAGE) -> Iterator[Notification]:
        """Stored events in ledger order, read a page at a time (bounded memory)."""
        position = after
        while True:
            try:
                rows = self.recorder.select_notifications(
                    position, page, stop=upto, topics=types, inclusive_of_start=False)
            except PersistenceError as error:
                raise StoreError(storage_problem(self.location, error)) from None
            yield from rows
            if len(rows) < page:
                return
            position = rows[-1].id

    def recorded(self, after: int = 0, upto: int | None = None,
                 types: Sequence[str] = ()) -> Iterator[tuple[int, Recorded]]:
        for n in self.notifications(after, upto, types):
            yield n.id, self.mapper.to_domain_event(n)


def conflict(streams: Iterable[str]) -> ConflictError:
    names = sorted(set(streams))
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5:,} more" if len(names) > 5 else "")
    return ConflictError(
        "another writer changed " + shown + " at the same time; "
        "nothing of this command was recorded: run it again")


def _as_json_text(value: Any) -> Any:
    """orjson's fallback for the one type it does not write: Decimal, as ``to_data`` does."""
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not a fact field type")


@cache
def _orjson_writes_as_to_data(cls: type) -> bool:
    """Whether orjson, given a fact of this class as it is, writes what ``to_data`` makes.

    It does when every field (of the fact and of any record in it) is a str, int, date,
    Decimal, None, a tuple of those or such a record, with no field named with a leading
    underscore: orjson writes a dataclass's fields in order as an object (skipping names
    with a leading underscore), dates as ISO dates and tuples as lists, and hands Decimals
    to ``_as_json_text``. ``test_import_bulk`` checks the bytes against ``FactMapper``.
    """
    hints = typing.get_type_hints(cls, vars(events_module))

    def plain(tp: Any) -> bool:
        if tp in (str, int, date, Decimal, type(None)):
            return True
        if typing.get_origin(tp) in (types.UnionType, typing.Union, tuple):
            return all(a is Ellipsis or plain(a) for a in typing.get_args(tp))
        return dataclasses.is_dataclass(tp) and _orjson_writes_as_to_data(tp)  # type: ignore[arg-type]

    fields = dataclasses.fields(cls)
    return all(not f.name.startswith("_") and plain(hints[f.name]) for f in fields)


class BulkEncoder:
    """Stored rows for many facts, byte for byte what :class:`FactMapper` stores.

    ``FactMapper.to_stored_event`` first copies every fact into plain data (``to_data``);
    here orjson reads the fact itself where that gives the same bytes, and the recorded
    time of a batch, usually one reading of the clock, is formatted once.
    """

    def __init__(self, mapper: FactMapper) -> None:
        self.mapper = mapper
        self.count = 0
        self.streams: set[str] = set()

    def rows(self, batch: Iterable[Recorded]) -> list[tuple[str, int, str, bytes]]:
        return list(self.encoded(batch))

    def encoded(self, batch: Iterable[Recorded]) -> Iterator[tuple[str, int, str, bytes]]:
        """The stored rows, one at a time; ``count`` and ``streams`` say what went by."""
        dumps, default, native = orjson.dumps, _as_json_text, _orjson_writes_as_to_data
        compressor, cipher = self.mapper.compressor, self.mapper.cipher
        when: datetime | None = None
        at = ""
        for r in batch:
            fact = r.fact
            if isinstance(fact, Written):
                cls, data = fact.kind, orjson.Fragment(fact.data)
            else:
                cls = type(fact)
                data = fact if native(cls) else to_data(fact)
            if r.recorded_at is not when:
                when, at = r.recorded_at, r.recorded_at.isoformat()
            state = dumps({"v": cls.VERSION, "at": at, "data": data}, default=default)
            # orjson's bytes keep the buffer they were written into, kilobytes for an event of
            # a few hundred bytes: a copy of the exact size lets a national opening import
            # hold its encoded events in megabytes rather than gigabytes.
            state = bytes(memoryview(state))
            if compressor:
                state = compressor.compress(state)
            if cipher:
                state = cipher.encrypt(state)
            self.count += 1
            self.streams.add(r.originator_id)
            yield r.originator_id, r.originator_version, cls.TYPE, state


def _truncated_by(path: Path) -> int:
    """How many bytes a SQLite file lacks of the size its header gives (0 if none, or if the
    header cannot say: an old writer, or a write-ahead log that recovery will replay)."""
    with path.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or header[24:28] != header[92:96]:
        return 0  # the in-header size is valid only when these counters agree
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        return 0
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    expected = page * int.from_bytes(header[28:32], "big")
    return max(0, expected - path.stat().st_size)


def _looks_like_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"
