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
import re
import types
import typing
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlparse

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
from topup_ledger.storage import keys as ledger_keys
from topup_ledger.storage.codec import fact_from_data, to_data
from topup_ledger.storage.key_stretches import (
    ROTATED,
    KeyStretches,
    RotationRow,
    Stretch,
    rotation_key_ids,
    stretches_of,
)
from topup_ledger.storage.streams import KEYS_STREAM
from topup_ledger.storage.upcasting import upcast

PAGE = 2_000
INFO_TABLE = "topup_ledger_info"  # the ledger's id and the ids of its keys (never a key)
_KEY_NAMED = re.compile(rb'"key":"([0-9a-f]{1,64})"')
_AT = re.compile(rb'"at":"([^"\\]{1,64})"')


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
    recorded_by: str = "unknown"  # who recorded it, as stored ("unknown" for older events)

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
    """Stores a fact under its stable type name with its schema version, recorded time, who
    recorded it and, on a ledger with a key, its authentication (``storage.keys``)."""

    actor: str | None = None  # who records: the PostgreSQL role or the OS login
    ledger_key: ledger_keys.LedgerKey | None = None

    def envelope(self, version: int, at: str, data: Any) -> dict[str, Any]:
        if self.actor is None:
            return {"v": version, "at": at, "data": data}
        if self.ledger_key is None:
            return {"v": version, "at": at, "by": self.actor, "data": data}
        return {"v": version, "at": at, "by": self.actor, "key": self.ledger_key.id, "data": data}

    def authenticated(self, stream: str, version: int, topic: str, state: bytes) -> bytes:
        if self.ledger_key is None:
            return state
        return ledger_keys.seal_state(self.ledger_key.key, stream, version, topic, state)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        recorded: Recorded = domain_event
        state = self.transcoder.encode(self.envelope(
            recorded.fact.VERSION, recorded.recorded_at.isoformat(), to_data(recorded.fact)))
        state = self.authenticated(recorded.originator_id, recorded.originator_version,
                                   recorded.fact.TYPE, state)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return StoredEvent(recorded.originator_id, recorded.originator_version,
                           recorded.fact.TYPE, state)

    def plain_bytes(self, state: bytes) -> bytes:
        """The stored state as JSON bytes: decrypted (and decompressed) if the ledger does that."""
        if isinstance(state, str):  # a row written as text by hand (sqlite3): its UTF-8 bytes
            state = state.encode("utf-8", "surrogatepass")
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
        by = state.get("by")
        return Recorded(str(stored_event.originator_id), stored_event.originator_version,
                        datetime.fromisoformat(state["at"]),
                        fact_from_data(stored_event.topic, data),
                        by if isinstance(by, str) and by else "unknown")


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
        check_postgres_url(location, need_schema=False)  # the server's own settings too
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


URL_PARAMETERS = ("schema",)
# A schema name as PostgreSQL takes it unquoted: lower-case letters, digits and _, at most 63
# bytes, not starting with a digit; pg_ names are the server's own.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}", re.ASCII)
URL_FORM = "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE?schema=NAME"


def check_postgres_url(location: str, *, need_schema: bool = True) -> None:
    """Refuse a postgresql:// ledger URL that could not mean what its writer meant, before
    anything connects: a port that is not a number, a query parameter other than
    ``schema``, and a missing, empty or invalid schema. A typo must never land a ledger in
    another LA's schema or the shared ``public`` one, so ``public`` is used only when the
    URL says ``schema=public``. Raises StoreError naming the problem (password hidden).
    ``need_schema=False``: a URL naming only the server and database (no ``schema``) is
    taken, for what reads the server itself rather than a ledger."""
    where = describe_plainly(location)
    try:
        url = urlparse(location)
        url.port  # noqa: B018 - parsing the port is the check
    except ValueError as error:
        raise StoreError(f"the ledger URL {where} is not valid ({error}): write it as "
                         f"{URL_FORM}, with any : @ / ? # in the password %-encoded") from None
    if not url.hostname:
        raise StoreError(f"the ledger URL {where} names no host: write it as {URL_FORM}")
    if url.fragment:
        raise StoreError(f"the ledger URL {where} has a #fragment; a # in the password is "
                         "written %23")
    pairs = parse_qsl(url.query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    unknown = sorted({name for name in names if name not in URL_PARAMETERS})
    if unknown or (url.query and not pairs):
        shown = ", ".join(repr(n) for n in unknown) or repr(url.query)
        raise StoreError(f"the ledger URL {where} has unknown parameter(s) {shown}: the only "
                         "one it takes is schema=NAME")
    if names.count("schema") > 1:
        raise StoreError(f"the ledger URL {where} gives schema more than once")
    schema = dict(pairs).get("schema")
    if schema is None and not need_schema:
        return
    if schema is None or not schema.strip():
        said = "an empty schema" if schema is not None else "no schema"
        raise StoreError(f"the ledger URL {where} names {said}: add ?schema=NAME (one schema "
                         "per LA, e.g. ?schema=la_926), or ?schema=public to keep the ledger "
                         "in the database's public schema")
    if not _SCHEMA_NAME.fullmatch(schema) or schema.startswith("pg_"):
        raise StoreError(f"the ledger URL's schema {schema!r} is not a valid name: use lower-case "
                         "letters, digits and _ (at most 63, not starting with a digit or pg_), "
                         "e.g. la_926")


def describe_plainly(location: str) -> str:
    """``describe``, for a URL that may not parse: the text between ``://`` and the last
    ``@`` (user and password) hidden as ``***``."""
    try:
        return describe(location)
    except ValueError:
        scheme, sep, rest = location.partition("://")
        _, at, host = rest.rpartition("@")
        return f"{scheme}{sep}***@{host}" if at else location


def check_sqlite_path(location: str, *, create: bool = False) -> None:
    """Refuse a SQLite ledger path that cannot be a ledger, with what to do, before the
    store opens it: a folder, a file that cannot be read, a missing folder that cannot be
    made (for ``topup init``), or no ledger there yet (any other command)."""
    path = Path(location)
    if path.is_dir():
        raise StoreError(f"{location} is a folder, not a ledger file: give the ledger's file, "
                         f"e.g. --ledger {path / 'topup-ledger.sqlite'}")
    if not path.exists():
        if not create:
            raise StoreError(f"no ledger at {location}: run `topup init` first")
        parent = path.parent
        if parent.exists() and not parent.is_dir():
            raise StoreError(f"cannot make a ledger at {location}: {parent} is a file, not a folder")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot make a ledger at {location}: the folder {parent} cannot be "
                             f"made ({(error.strerror or str(error)).lower()})") from None
        return
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError as error:
        raise StoreError(f"cannot read the ledger file {location} "
                         f"({(error.strerror or str(error)).lower()})") from None
    if header and header != b"SQLite format 3\x00":
        raise StoreError(f"{location} is not a SQLite ledger (the file is damaged): if it was "
                         "never one, check --ledger; restore a damaged ledger from a backup")


def create_postgres_schema(location: str) -> bool:
    """Create the ledger's schema if it is missing; whether this call created it."""
    import psycopg
    from psycopg import sql

    schema = postgres_schema(location)
    if not schema:
        return False
    try:
        with _connect_postgres(location) as conn:
            existed = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                   (schema,)).fetchone()
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    except psycopg.Error as error:
        detail = without_password(location, str(error).strip())
        raise StoreError(f"cannot reach PostgreSQL at {describe(location)}: {detail}") from None
    return existed is None


def _connect_postgres(location: str) -> Any:
    import psycopg

    env = environment(location)
    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"], connect_timeout=5,
        autocommit=True)


def drop_postgres_schema(location: str) -> None:
    """Remove a schema this ``topup init`` created, when the init failed: nothing is left."""
    import psycopg
    from psycopg import sql

    schema = postgres_schema(location)
    if not schema:
        return
    try:
        with _connect_postgres(location) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    except psycopg.Error:
        pass


APPEND_ONLY = """
CREATE OR REPLACE FUNCTION {schema}.topup_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the topup ledger is append-only: % of %.% refused', TG_OP, TG_TABLE_SCHEMA,
        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER IF EXISTS topup_append_only ON {table};
CREATE TRIGGER topup_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {schema}.topup_append_only();
DROP TRIGGER IF EXISTS topup_no_truncate ON {table};
CREATE TRIGGER topup_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.topup_append_only();
"""


def guard_append_only(recorder: Any, info_table: Any) -> None:
    """Make PostgreSQL refuse UPDATE, DELETE and TRUNCATE of the events (and of the ledger's
    key record) for every role but a superuser who disables the triggers (DESIGN §4)."""
    from psycopg import sql

    schema = sql.Identifier(recorder.datastore.schema)
    events = sql.SQL("{}.{}").format(schema, sql.Identifier(recorder.events_table_name))
    with recorder.datastore.transaction(commit=True) as cursor:
        for table in (events, info_table):
            cursor.execute(sql.SQL(APPEND_ONLY).format(schema=schema, table=table))


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
    if "relation" in lowered and "does not exist" in lowered:
        detail = detail.split(" LINE ")[0]  # the server's message, without the SQL it quotes
        return (f"there is no ledger at {where} ({detail}): run `topup init` to make one there "
                "(if there was one, its event table is gone: restore it from a backup)")
    if "no such table" in lowered:
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
    """Append facts to named streams atomically and read them back in ledger order.

    A ledger made by ``topup init`` has an id and a key held outside the database
    (``storage.keys``): opening it finds the key (``key_file``, ``TOPUP_LEDGER_KEY``, or the
    default file named by the ledger's id) and refuses a missing or different one, and a
    missing or different ``TOPUP_CIPHER_KEY`` on an encrypted ledger, before anything is
    recorded. Every event it appends names who recorded it (``actor``) and is authenticated
    with the key; its recorded time is read once per append, under the write lock, from the
    database server's clock on PostgreSQL, and is never earlier than the previous event's.
    """

    given_times = False  # True: record the times the facts carry (a test's clock), not the store's
    info: dict[str, str] | None = None  # the ledger's id and key ids (None: made before it had them)

    def __init__(self, location: str, *, create: bool = False, key_file: str | None = None,
                 key: ledger_keys.LedgerKey | None = None) -> None:
        self.location = location
        self.key_file = key_file
        self._made_schema = False
        self.held_keys: dict[str, bytes] = {}  # the keys at hand by id (ledger_keys.keys_at_hand)
        self.key_stretches = KeyStretches([Stretch("", 0, None)])  # one key (or none) until read
        try:
            self._open(location, create, key)
        except BaseException:
            if self._made_schema:
                drop_postgres_schema(location)  # a failed init leaves nothing behind
            raise

    def _open(self, location: str, create: bool, key: ledger_keys.LedgerKey | None) -> None:
        if is_postgres(location):
            if create:
                self._made_schema = create_postgres_schema(location)
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
        try:
            if create and is_postgres(location):
                compress_states_with_lz4(self.recorder)
            self._open_keys(create, key)
            if create and is_postgres(location):
                guard_append_only(self.recorder, self._info_name())
        except BaseException:
            self.app.close()
            raise

    # The ledger's id, its key and who records.

    def _info_name(self) -> Any:
        if not is_postgres(self.location):
            return INFO_TABLE
        from psycopg import sql

        return sql.SQL("{}.{}").format(sql.Identifier(self.recorder.datastore.schema),  # type: ignore[attr-defined]
                                       sql.Identifier(INFO_TABLE))

    def _sql(self, text: str) -> Any:
        if not is_postgres(self.location):
            return text.format(table=INFO_TABLE)
        from psycopg import sql

        return sql.SQL(text).format(table=self._info_name())

    def read_info(self) -> dict[str, str] | None:
        """The ledger's recorded id and key ids; None for a ledger made before it had them."""
        try:
            with self.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
                cursor.execute(self._sql("SELECT name, value FROM {table}"))
                rows = cursor.fetchall()
        except Exception as error:
            text = str(error).lower()
            if "no such table" in text or "does not exist" in text:
                return None
            raise StoreError(storage_problem(self.location, error)) from None
        return {(r["name"] if isinstance(r, dict) else r[0]): (r["value"] if isinstance(r, dict)
                                                                else r[1]) for r in rows}

    def write_info(self, items: dict[str, str]) -> None:
        param = "%s" if is_postgres(self.location) else "?"
        with self.recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
            cursor.execute(self._sql("CREATE TABLE IF NOT EXISTS {table} "
                                     "(name TEXT PRIMARY KEY, value TEXT NOT NULL)"))
            for name, value in items.items():
                cursor.execute(self._sql(f"INSERT INTO {{table}} (name, value) VALUES ({param}, "
                                         f"{param}) ON CONFLICT (name) DO NOTHING"), (name, value))

    def _open_keys(self, create: bool, given: ledger_keys.LedgerKey | None) -> None:
        info = self.read_info()
        if info is None and create:
            ledger_id = uuid.uuid4().hex
            try:
                made = given or ledger_keys.new_key(ledger_id, self.key_file)
            except (ledger_keys.LedgerKeyError, OSError) as error:
                raise StoreError(f"cannot make the ledger key: {error}") from None
            items = {"ledger_id": ledger_id, "key_id": made.id,
                     "keyed_after": str(self.max_position())}
            cipher = os.environ.get("TOPUP_CIPHER_KEY")
            if cipher:
                items["cipher_key_id"] = ledger_keys.cipher_id(cipher)
            self.write_info(items)
            info = self.read_info()
        self.info = info
        self.mapper.actor = self.actor()
        if info is None:
            self._refuse_if_key_record_removed()
            return
        self.ledger_id = info.get("ledger_id", "")
        cipher_id = info.get("cipher_key_id")
        cipher = os.environ.get("TOPUP_CIPHER_KEY")
        if cipher_id and not cipher:
            raise StoreError("the ledger is encrypted and TOPUP_CIPHER_KEY is not set (encrypted? set "
                             "TOPUP_CIPHER_KEY); nothing was recorded")
        if cipher_id and ledger_keys.cipher_id(cipher or "") != cipher_id:
            raise StoreError("the cipher key is wrong: TOPUP_CIPHER_KEY is not the key they were "
                             f"written with (its id is {ledger_keys.cipher_id(cipher or '')}, the "
                             f"ledger's is {cipher_id}); nothing was recorded")
        if not cipher_id and cipher:
            raise StoreError("TOPUP_CIPHER_KEY is set but this ledger is not encrypted: unset it; "
                             "nothing was recorded")
        try:
            found = given or ledger_keys.find_key(self.ledger_id, self.key_file)
        except ledger_keys.LedgerKeyError as error:
            raise StoreError(f"{error}; nothing was recorded") from None
        first = info.get("key_id", "")
        rotations = self._rotation_rows()
        held = ledger_keys.keys_at_hand(self.ledger_id, [first, *rotation_key_ids(rotations)])
        if found is not None:
            held[found.id] = found.key
        self.held_keys = held
        self.key_stretches = stretches_of(first, self.keyed_after or 0, rotations, held)
        current = self.key_stretches.current
        explicit = given is not None or bool(self.key_file or os.environ.get("TOPUP_LEDGER_KEY")
                                             or os.environ.get("TOPUP_LEDGER_KEY_FILE"))
        if not explicit and (found is None or found.id != current) and current in held:
            # rotated: the new key kept beside the old (a rotation cut short before it
            # replaced the default file, or an operator who keeps every key there)
            found = ledger_keys.LedgerKey(held[current], "the key file "
                                          f"{ledger_keys.kept_key_path(self.ledger_id, current)}")
        if found is None:
            raise StoreError(
                f"the ledger key is missing: this ledger ({self.ledger_id}) is authenticated with key "
                f"{current}, expected in {ledger_keys.default_key_path(self.ledger_id)} (or give it "
                "with TOPUP_LEDGER_KEY, TOPUP_LEDGER_KEY_FILE or --key-file); nothing was recorded")
        if found.id != current:
            replaced = next((s for s in self.key_stretches.stretches[:-1] if s.key_id == found.id), None)
            if replaced is not None:
                raise StoreError(
                    f"the ledger key is an old one: {found.source} holds key {found.id}, which "
                    f"authenticated {replaced.positions()} and was replaced by key "
                    f"{self.key_stretches.at(replaced.upto + 1).key_id} at position "  # type: ignore[operator]
                    f"{replaced.upto:,}; give the ledger's key now, {current}; nothing was recorded")
            raise StoreError(f"the ledger key is wrong: {found.source} holds key {found.id}, but this "
                             f"ledger ({self.ledger_id}) is authenticated with key {current}; "
                             "nothing was recorded")
        self.mapper.ledger_key = found

    def _rotation_rows(self) -> list[RotationRow]:
        """The ``keys`` stream's rotations with their positions (its index: no scan)."""
        if is_postgres(self.location):
            from psycopg import sql

            statement: Any = sql.SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state FROM "
                "{}.{} WHERE originator_id = %s ORDER BY originator_version").format(
                    sql.Identifier(self.recorder.datastore.schema),  # type: ignore[attr-defined]
                    sql.Identifier(self.recorder.events_table_name))  # type: ignore[attr-defined]
        else:
            statement = ("SELECT rowid, originator_id, originator_version, topic, state FROM "
                         f"{self.recorder.events_table_name} WHERE originator_id = ? "  # type: ignore[attr-defined]
                         "ORDER BY originator_version")
        with self.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            cursor.execute(statement, (KEYS_STREAM,))
            rows = [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cursor.fetchall()]
        found = []
        for position, stream, version, topic, state in rows:
            if topic != ROTATED:
                continue
            try:
                payload = self.mapper.plain_bytes(bytes(state) if not isinstance(state, str) else state)
            except StoreError:
                continue
            found.append(RotationRow(int(position), str(stream), int(version), str(topic), payload))
        return found

    def _refuse_if_key_record_removed(self) -> None:
        last = self.max_position()
        if not last:
            return
        rows = self.recorder.select_notifications(last, 1, stop=last)
        if rows and b'"key":"' in self.mapper.plain_bytes(rows[0].state)[:400]:
            raise StoreError("the ledger's key record (its id and key id) was removed from the "
                             "database, yet its events are authenticated: the ledger was altered; "
                             "nothing was recorded: run `topup verify`")

    @property
    def keyed_after(self) -> int | None:
        """Events after this position must be authenticated (None: the ledger has no key)."""
        if not self.info or "keyed_after" not in self.info:
            return None
        return int(self.info["keyed_after"])

    def unauthenticated(self, upto: int | None = None, limit: int = 5) -> list[tuple[int, str, str]]:
        """Events (up to ``upto``) that the ledger's key does not authenticate: (position, event
        id, why), the first ``limit`` of them. Nothing on a ledger made before it had a key."""
        after = self.keyed_after
        if after is None:
            return []
        keys, found = self.keys(), []
        for n in self.notifications(after=after, upto=upto):
            try:
                payload = self.mapper.plain_bytes(n.state)
            except StoreError:
                payload = n.state
            named = _KEY_NAMED.search(payload, 0, 600)
            why = self.key_stretches.check(keys, n.id, named.group(1).decode() if named else None,
                                           str(n.originator_id), n.originator_version, n.topic,
                                           payload)
            if why is not None:
                found.append((n.id, event_id(str(n.originator_id), n.originator_version), why))
                if len(found) >= limit:
                    break
        return found

    def keys(self) -> dict[str, bytes]:
        """The ledger's keys at hand by id: the one in use, and the old ones found kept."""
        return dict(self.held_keys)

    def actor(self) -> str:
        """Who records: the session's role on PostgreSQL, the operating system's login on SQLite."""
        if not is_postgres(self.location):
            return ledger_keys.os_login()
        with self.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            cursor.execute("SELECT current_user AS who")
            return str(cursor.fetchone()["who"])

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
        # the bulk path for every append: one transaction that takes the write lock, then the
        # time and the authentication of the facts (the library's save cannot give either)
        return list(self._append_rows(batch))

    def append_many(self, batch: Iterable[Recorded]) -> Sequence[int]:
        """Record every fact of a large ``batch`` (an import, a payment run) or none; their
        positions (``_append_rows``): a ``range`` when they follow one another, as they
        usually do, so that millions of positions cost nothing to hold."""
        return self._append_rows(batch)

    def _append_rows(self, batch: Iterable[Recorded]) -> Sequence[int]:
        """Record every fact of ``batch`` or none; their positions.

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
                positions = self._insert_postgres(rows, encoder)
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
                       encoder: BulkEncoder) -> Sequence[int]:
        """One ``executemany`` in the recorder's own transaction, with its own statement.

        The library's SQLite recorder inserts row by row to learn each rowid; here the
        positions follow from the last one: the transaction holds SQLite's one write lock
        from its first insert to its commit, and SQLite gives each new row the largest
        rowid plus one, so the batch's rows are the last ``encoder.count`` of the table.
        """
        recorder: Any = self.recorder
        table = recorder.events_table_name
        with recorder.datastore.transaction(commit=True) as cursor:
            # SQLite's write lock first (a write that changes nothing takes it), so that the
            # time of the event before is read under it: no other writer comes in between
            cursor.execute(f"DELETE FROM {table} WHERE rowid = -1")
            cursor.execute(f"SELECT state FROM {table} ORDER BY rowid DESC LIMIT 1")
            before = cursor.fetchone()
            self._stamp(encoder, before[0] if before else None, None)
            cursor.executemany(recorder.insert_events_statement, rows)
            cursor.execute(recorder.select_max_notification_id_statement)
            last = cursor.fetchone()[0]
        return range(last - encoder.count + 1, last + 1)

    def _stamp(self, encoder: BulkEncoder, previous: bytes | None, server: datetime | None) -> None:
        """The recorded time of the batch, read under the write lock: the database server's
        clock (PostgreSQL), this machine's (SQLite), or the facts' own when a test's clock
        gives them; never earlier than the time of the event before (``previous``, its
        stored state)."""
        floor = None
        if previous is not None:
            try:
                state = previous if isinstance(previous, str) else bytes(previous)
                match = _AT.search(self.mapper.plain_bytes(state)[:400])
                floor = datetime.fromisoformat(match.group(1).decode()) if match else None
            except (StoreError, ValueError):
                floor = None
        encoder.floor = floor
        if not self.given_times:
            encoder.moment = server or datetime.now(UTC)

    def _insert_postgres(self, rows: Iterable[tuple[str, int, str, bytes]],
                         encoder: BulkEncoder) -> Sequence[int]:
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
            cursor.execute(sql.SQL("SELECT state FROM {} WHERE notification_id = %s").format(table),
                           (before,))
            previous = cursor.fetchone()
            cursor.execute("SELECT clock_timestamp() AS now")
            server = cursor.fetchone()["now"].astimezone(UTC)
            self._stamp(encoder, previous["state"] if previous else None, server)
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
                return range(found["first"], found["last"] + 1)
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


def fact_bytes(fact: Fact) -> bytes:
    """The JSON the ledger stores for a fact's data, byte for byte what :class:`BulkEncoder`
    writes for it (so a :class:`Written` of these bytes is stored as the fact itself)."""
    data = fact if _orjson_writes_as_to_data(type(fact)) else to_data(fact)
    return orjson.dumps(data, default=_as_json_text)


# The streams a batch wrote are kept (for a conflict's message) up to this many: millions of
# names would be hundreds of megabytes; an import names the streams that clashed itself.
STREAMS_NAMED = 10_000


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
        self.moment: datetime | None = None  # the batch's recorded time (None: the facts' own)
        self.floor: datetime | None = None  # no recorded time earlier than this

    def rows(self, batch: Iterable[Recorded]) -> list[tuple[str, int, str, bytes]]:
        return list(self.encoded(batch))

    def encoded(self, batch: Iterable[Recorded]) -> Iterator[tuple[str, int, str, bytes]]:
        """The stored rows, one at a time; ``count`` and ``streams`` say what went by."""
        dumps, default, native = orjson.dumps, _as_json_text, _orjson_writes_as_to_data
        compressor, cipher = self.mapper.compressor, self.mapper.cipher
        when: datetime | None = None
        at = ""
        envelope, authenticated = self.mapper.envelope, self.mapper.authenticated
        for r in batch:
            fact = r.fact
            if isinstance(fact, Written):
                cls, data = fact.kind, orjson.Fragment(fact.data)
            else:
                cls = type(fact)
                data = fact if native(cls) else to_data(fact)
            given = self.moment or r.recorded_at
            if given is not when:
                when = given
                later = self.floor is None or given.tzinfo is None or given >= self.floor
                at = (given if later else self.floor).isoformat()  # type: ignore[union-attr]
            state = dumps(envelope(cls.VERSION, at, data), default=default)
            # orjson's bytes keep the buffer they were written into, kilobytes for an event of
            # a few hundred bytes: a copy of the exact size lets a national opening import
            # hold its encoded events in megabytes rather than gigabytes.
            state = authenticated(r.originator_id, r.originator_version, cls.TYPE,
                                  bytes(memoryview(state)))
            if compressor:
                state = compressor.compress(state)
            if cipher:
                state = cipher.encrypt(state)
            self.count += 1
            if len(self.streams) < STREAMS_NAMED:
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
