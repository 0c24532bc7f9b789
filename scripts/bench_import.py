"""Benchmark: importing a synthetic county into a fresh ledger, against a plain-SQL insert of
the same stored rows into an identical table (issue 8).

    python scripts/bench_import.py [--plans 8000] [--schools 450] [--seed 1] [--repeat 3]
    python scripts/bench_import.py --backend postgres --url postgresql://postgres@127.0.0.1:25432/topup_test
    python scripts/bench_import.py --backend both --url postgresql://...

Generates an LA (scripts/generate.py's data) and imports all of it — schools, rates,
tariffs, every plan, then every change, in the order the LA learned them — as ONE import
into a fresh ledger: every row read, checked by the ledger's own rules in memory, and the
whole county recorded by one ``EventStore.append_many`` (one transaction). Then, on the very
same facts and stored rows:

- the ordinary command path, ``EventStore.append`` (``Application.save``), into a fresh
  ledger, whose stored rows must equal the import's byte for byte;
- the library's ``recorder.insert_events`` alone (no encoding);
- one plain ``executemany`` INSERT in one transaction into an identical table (made by the
  library's own DDL in a fresh ledger): the most any import into this store could do.

Each figure is the best of ``--repeat`` runs, each on fresh tables; targets (issue 8): the
ledger's recording at least 50,000 events/s and within 4x of the plain insert; PostgreSQL
within 2x of SQLite. Figures, not assertions (other than the stored bytes being equal).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from topup_ledger.io.import_csv import read_table
from topup_ledger.services.generator import KIND_ORDER, generate
from topup_ledger.services.importer import Import
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.store import BulkEncoder, EventStore, Recorded, environment, is_postgres

WHEN = datetime(2028, 3, 31, 16, tzinfo=UTC)
# The library's PostgreSQL insert (used by Application.save too) sends a batch as one array
# parameter in psycopg's pipeline mode; with about 60,000 events of this size (10 MB) it
# never returned (45,000 took 3 s). Beyond this many events those two paths are not timed.
LIBRARY_PG_LIMIT = 40_000
Row = tuple[str, int, str, bytes]


@dataclass
class Figures:
    """Best-of-N seconds per measured step, for one backend."""

    backend: str
    events: int = 0
    rows: int = 0
    read: float = float("inf")
    check: dict[str, float] = field(default_factory=dict)
    encode: float = float("inf")
    record: float = float("inf")  # append_many: encode + insert, one transaction
    save: float = float("inf")  # append: Application.save, same facts
    recorder: float = float("inf")
    plain: float = float("inf")

    def best(self, name: str, seconds: float) -> None:
        setattr(self, name, min(getattr(self, name), seconds))

    @property
    def checking(self) -> float:
        return sum(self.check.values())

    @property
    def whole(self) -> float:
        return self.read + self.checking + self.record


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>9,.0f}/s" if seconds else f"{'-':>11}"


class Backend:
    """Fresh ledgers (and their clean-up) on one backend."""

    def __init__(self, name: str, work: Path, url: str | None) -> None:
        self.name, self.work, self.url = name, work, url
        self.made: list[str] = []
        self.table = ""

    def fresh(self) -> str:
        if self.name == "sqlite":
            location = str(self.work / f"{uuid.uuid4().hex[:8]}.sqlite")
        else:
            assert self.url
            sep = "&" if "?" in self.url else "?"
            location = f"{self.url}{sep}schema=bench_import_{uuid.uuid4().hex[:10]}"
        store = EventStore(location, create=True)
        self.table = store.recorder.events_table_name  # type: ignore[attr-defined]
        store.close()
        self.made.append(location)
        return location

    def plain_insert(self, location: str, rows: list[Row]) -> float:
        """One executemany INSERT of ``rows`` in one transaction, no library involved."""
        if not is_postgres(location):
            db = sqlite3.connect(location, isolation_level=None)
            try:
                t = time.perf_counter()
                db.execute("BEGIN")
                db.executemany(f"INSERT INTO {self.table} (originator_id, originator_version, "
                               "topic, state) VALUES (?, ?, ?, ?)", rows)
                db.execute("COMMIT")
                return time.perf_counter() - t
            finally:
                db.close()
        with connect(location) as conn, conn.cursor() as cursor:
            schema = location.rsplit("schema=", 1)[1]
            t = time.perf_counter()
            with conn.transaction():
                cursor.executemany(f"INSERT INTO {schema}.{self.table} (originator_id, "
                                   "originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                                   rows)
            return time.perf_counter() - t

    def drop(self) -> None:
        for location in self.made:
            if is_postgres(location):
                with connect(location) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {location.rsplit('schema=', 1)[1]} CASCADE")


@contextmanager
def connect(location: str) -> Iterator[Any]:
    import psycopg

    env = environment(location)
    with psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                         port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                         password=env["POSTGRES_PASSWORD"], autocommit=True) as conn:
        yield conn


def timed(action: Callable[[], object]) -> float:
    t = time.perf_counter()
    action()
    return time.perf_counter() - t


def stored_rows(location: str) -> list[Row]:
    store = EventStore(location)
    try:
        return [(str(n.originator_id), n.originator_version, n.topic, bytes(n.state))
                for n in store.notifications()]
    finally:
        store.close()


def run_once(backend: Backend, files: list[tuple[str, Path]], figures: Figures) -> list[Row]:
    """One import of the county into a fresh ledger, then the same rows by the other paths."""
    t = time.perf_counter()
    tables = [(kind, read_table(path)) for kind, path in files]
    figures.best("read", time.perf_counter() - t)

    location = backend.fresh()
    store = EventStore(location)
    try:
        job = Import(Ledger(store, clock=lambda: WHEN))  # reads the (empty) ledger once
        checked: dict[str, float] = dict.fromkeys(KIND_ORDER, 0.0)
        figures.rows = 0
        for kind, table in tables:
            t = time.perf_counter()
            result = job.stage_table(table, kind)
            checked[kind] += time.perf_counter() - t
            assert not result.rejected, result.rejects()[:3]
            figures.rows += result.rows
        for kind, seconds in checked.items():
            figures.check[kind] = min(figures.check.get(kind, float("inf")), seconds)
        staged: list[Recorded] = job.staging.staged
        figures.events = len(staged)
        figures.best("encode", timed(lambda: BulkEncoder(store.mapper).rows(staged)))
        figures.best("record", timed(job.commit))
    finally:
        store.close()
    rows = stored_rows(location)
    assert len(rows) == len(staged)

    if backend.name == "sqlite" or len(staged) <= LIBRARY_PG_LIMIT:
        other = EventStore(backend.fresh())
        try:  # the ordinary command path, same facts: the stored bytes must not differ
            figures.best("save", timed(lambda: other.append(staged)))
        finally:
            other.close()
        assert stored_rows(other.location) == rows, "append and append_many stored different rows"

        bare = EventStore(backend.fresh())
        try:
            events = [StoredEvent(*row) for row in rows]
            figures.best("recorder", timed(lambda: bare.recorder.insert_events(events)))
        finally:
            bare.close()

    figures.best("plain", backend.plain_insert(backend.fresh(), rows))
    return rows


def report(f: Figures, plans: int, schools: int, files: int) -> None:
    e = f.events
    name = "SQLite" if f.backend == "sqlite" else "PostgreSQL"
    print(f"{name}: one import of a synthetic county into a fresh ledger: {plans:,} plans, "
          f"{schools:,} schools, {f.rows:,} rows in {files} files -> {e:,} events")
    print(f"  reading the CSV files:                    {f.read:6.3f}s {rate(f.rows, f.read)} rows")
    for kind, seconds in f.check.items():
        print(f"  checking {kind:<8} rows in memory:          {seconds:6.3f}s")
    print(f"  checking every row, in memory:            {f.checking:6.3f}s {rate(e, f.checking)} events")
    print(f"  recording: EventStore.append_many         {f.record:6.3f}s {rate(e, f.record)} events"
          f"  (encoding alone {rate(e, f.encode).strip()})")
    print(f"  whole import (read + check + record):     {f.whole:6.3f}s {rate(e, f.whole)} events")
    if f.save == float("inf"):
        print(f"  EventStore.append, recorder.insert_events: not timed: beyond {LIBRARY_PG_LIMIT:,} "
              "events the library's PostgreSQL insert does not return")
    else:
        print(f"  EventStore.append (Application.save):     {f.save:6.3f}s {rate(e, f.save)} events"
              "  (the command path, same facts, same bytes)")
        print(f"  recorder.insert_events, same rows:        {f.recorder:6.3f}s "
              f"{rate(e, f.recorder)} events  (the library's insert, no encoding)")
    print(f"  plain executemany INSERT, same rows:      {f.plain:6.3f}s {rate(e, f.plain)} events"
          "  (identical table: the store's limit)")
    timed_append = f.save != float("inf")
    print(f"  ratios to the plain INSERT (target <= 4): recording {f.record / f.plain:.2f}x, "
          f"whole import {f.whole / f.plain:.2f}x"
          + (f", append {f.save / f.plain:.2f}x" if timed_append else ""))
    if timed_append:
        print(f"  speed-up over the command path (append): recording {f.save / f.record:.1f}x, "
              f"whole import {(f.read + f.checking + f.save) / f.whole:.1f}x")
    print(f"  summary {f.backend}: events {e} plans {plans} ledger-import {e / f.record:,.0f} ev/s "
          f"(whole {e / f.whole:,.0f} ev/s) plain-executemany {e / f.plain:,.0f} ev/s "
          f"ratio {f.record / f.plain:.2f} (whole {f.whole / f.plain:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=8000)
    parser.add_argument("--schools", type=int, default=450)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs [3]")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--url", help="postgresql://user@host:port/db (a schema is made per ledger)")
    args = parser.parse_args()
    names = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if "postgres" in names and not args.url:
        parser.error("--backend postgres needs --url")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        la = generate(plans=args.plans, schools=args.schools, seed=args.seed)
        la.write(work / "input")
        files = [(kind, work / "input" / batch.folder / f"{kind}.csv")
                 for kind in KIND_ORDER for batch in la.batches if batch.rows[kind]]
        results: dict[str, Figures] = {}
        stored: dict[str, list[Row]] = {}
        for name in names:
            backend = Backend(name, work, args.url)
            figures = results[name] = Figures(name)
            try:
                for _ in range(args.repeat):
                    stored[name] = run_once(backend, files, figures)
            finally:
                backend.drop()
            report(figures, args.plans, args.schools, len(files))
            print()
    if len(results) == 2:
        s, p = results["sqlite"], results["postgres"]
        same = "the same" if stored["sqlite"] == stored["postgres"] else "DIFFERENT"
        print(f"PostgreSQL / SQLite time (target <= 2): recording {p.record / s.record:.2f}x, "
              f"whole import {p.whole / s.whole:.2f}x; stored rows {same} on both")


if __name__ == "__main__":
    main()
