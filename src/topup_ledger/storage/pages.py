"""Stored events in ledger order as plain rows, a large page at a time, for folds.

The library's ``select_notifications`` builds a ``Notification`` per row through a
dictionary row factory, which costs about as much again as reading and decoding the rows.
A fold needs only the five stored columns, and decodes the state
only of the events it reads the contents of, so this reads them with one plain SELECT per
page from the store's own table (the recorder's connection on PostgreSQL, a read-only
connection of its own on SQLite). Nothing here writes; positions are the notification ids,
which may have gaps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from topup_ledger.storage.store import EventStore, StoreError, is_postgres, storage_problem

PAGE = 5_000
STREAMS_PER_SELECT = 1_000


class StoredRow(NamedTuple):
    """One stored event, named as the library's ``Notification`` names its fields."""

    id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes


class StoredPages:
    """Pages of ``StoredRow`` after a position, up to an optional last position."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.table: str = store.recorder.events_table_name  # type: ignore[attr-defined]
        self._sqlite: sqlite3.Connection | None = None

    def pages(self, after: int = 0, upto: int | None = None, size: int = PAGE
              ) -> Iterator[list[StoredRow]]:
        stop, bound = ("AND {position} <= {p} ", (upto,)) if upto is not None else ("", ())
        position = after
        while True:
            rows = self._query(f"{{position}} > {{p}} {stop}ORDER BY {{position}} LIMIT {{p}}",
                               (position, *bound, size))
            if rows:
                yield rows
            if len(rows) < size:
                return
            position = rows[-1].id

    def streams(self, names: list[str], upto: int) -> list[StoredRow]:
        """The stored events of the named streams up to a position, each stream's in
        version order (streams in name order): what a projection reads a plan's facts
        through instead of keeping copies of them."""
        if not names:
            return []
        named, params = self._named(names)
        return self._query(f"{named} AND {{position}} <= {{p}} "
                           "ORDER BY originator_id, originator_version", (*params, upto))

    def each_stream(self, names: Iterable[str], upto: int) -> Iterator[StoredRow]:
        """``streams`` for any number of names, STREAMS_PER_SELECT at a time, in name order."""
        wanted = sorted(names)
        for start in range(0, len(wanted), STREAMS_PER_SELECT):
            yield from self.streams(wanted[start:start + STREAMS_PER_SELECT], upto)

    def stream_pages(self, name: str, upto: int, size: int = PAGE) -> Iterator[list[StoredRow]]:
        """One stream's stored events up to a position, in version order, a page at a time
        (a payment run's stream holds a school payment per school: too many for one list)."""
        version = 0
        while True:
            rows = self._query(
                "originator_id = {p} AND originator_version > {p} AND {position} <= {p} "
                "ORDER BY originator_version LIMIT {p}", (name, version, upto, size))
            if rows:
                yield rows
            if len(rows) < size:
                return
            version = rows[-1].originator_version

    def first_events(self, prefix: str, upto: int) -> list[StoredRow]:
        """The first event (version 1) of every stream whose name starts with ``prefix``,
        up to a position, in name order: e.g. every plan's issue, without its later facts."""
        named, params = self._starts_with(prefix)
        return self._query(f"{named} AND originator_version = 1 AND {{position}} <= {{p}} "
                           "ORDER BY originator_id", (*params, upto))

    def streams_written(self, prefix: str, after: int, upto: int) -> set[str]:
        """The names, starting with ``prefix``, of the streams written to in (after, upto]."""
        named, params = self._starts_with(prefix)
        rows = self._query(f"{{position}} > {{p}} AND {{position}} <= {{p}} AND {named}",
                           (after, upto, *params))
        return {row.originator_id for row in rows}

    def reopened(self) -> StoredPages:
        """A reader for a forked process: a PostgreSQL connection must not be shared with
        one, nor a SQLite one (this reader's own opens when first used)."""
        return StoredPages(for_forked(self.store))

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None

    def _starts_with(self, prefix: str) -> tuple[str, tuple[str, ...]]:
        """A condition that the stream's name starts with ``prefix``, and its parameters.
        SQLite compares names byte by byte, so a range walks its index; PostgreSQL's
        collation may not, so it gets its own exact prefix test."""
        if is_postgres(self.store.location):
            return "starts_with(originator_id, {p})", (prefix,)
        after_prefix = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return "originator_id >= {p} AND originator_id < {p}", (prefix, after_prefix)

    def _named(self, names: list[str]) -> tuple[str, tuple[Any, ...]]:
        """A condition that the stream is one of ``names``, and its parameters."""
        if is_postgres(self.store.location):
            return "originator_id = ANY({p})", (names,)
        return f"originator_id IN ({','.join(['{p}'] * len(names))})", tuple(names)

    def _query(self, where: str, params: tuple[Any, ...]) -> list[StoredRow]:
        """SELECT the stored columns WHERE ``where`` (``{p}`` a parameter, ``{position}``
        the position column), on either backend."""
        if is_postgres(self.store.location):
            from psycopg import sql

            datastore = self.store.recorder.datastore  # type: ignore[attr-defined]
            statement = sql.SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {schema}.{table} WHERE ").format(
                    schema=sql.Identifier(datastore.schema),
                    table=sql.Identifier(self.table)) + sql.SQL(
                        where.format(p="%s", position="notification_id"))
            return self._fetch_postgres(statement, params)
        try:
            return self._connection().execute(
                "SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {self.table} WHERE " + where.format(p="?", position="rowid"),
                params).fetchall()
        except (sqlite3.Error, OSError) as error:
            raise StoreError(storage_problem(self.store.location, error)) from None

    def _connection(self) -> sqlite3.Connection:
        if self._sqlite is None:
            conn = sqlite3.connect(self.store.location, check_same_thread=False)
            conn.row_factory = _row
            self._sqlite = conn
        return self._sqlite

    def _fetch_postgres(self, statement: Any, params: tuple[Any, ...]) -> list[StoredRow]:
        import psycopg
        from psycopg.rows import tuple_row

        datastore = self.store.recorder.datastore  # type: ignore[attr-defined]
        try:
            with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row,
                                                                 binary=True) as cursor:
                cursor.execute(statement, params)
                return [StoredRow(i, o, v, t, bytes(s)) for i, o, v, t, s in cursor.fetchall()]
        except psycopg.Error as error:
            raise StoreError(storage_problem(self.store.location, error)) from None


def _row(_cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> StoredRow:
    return StoredRow(*row)


def for_forked(store: EventStore) -> EventStore:
    """``store`` as a forked process may read it through a ``StoredPages`` of its own: a
    PostgreSQL store's connections must not be shared with one, so it gets a store of its
    own; a SQLite reader opens its own connection anyway."""
    location = store.location
    if not is_postgres(location):
        return store
    return EventStore(location, key_file=store.key_file, key=store.mapper.ledger_key)
