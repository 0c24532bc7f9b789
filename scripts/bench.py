"""The benchmark: import, rebuild and a termly payment run, each against its limit.

    python scripts/bench.py [all] --scale county|national [--backend sqlite|postgres|both] [--url URL]
                                  [--plans N] [--schools N] [--years N] [--seed N]
                                  [--out FILE.json] [--markdown docs/benchmarks.md] [--work DIR]
    python scripts/bench.py import|payrun|projections|statements [options]   (each: --help)

Builds a ledger from the synthetic LA of ``scripts/generate.py`` (county: 8,000 plans and 450
schools; national: 640,000 plans and 22,000 schools; three academic years) by replaying it as
an LA would, the way ``run.sh`` and ``topup demo`` do: each batch of import files through the
product's importer (one ``Import`` per batch, one atomic append), then that batch's termly
payment run (``pay`` and its files). Then, in the same invocation and on the same ledger:

- import: events/s of those imports (reading the CSVs, checking every row, appending),
  against the very same stored rows inserted by plain ``executemany`` into an identical,
  freshly created events table, batch by batch in the same transactions (the store's limit);
- rebuild: events/s of rebuilding every projection from nothing (``runner.rebuild``, as
  ``topup rebuild`` does), against a plain SELECT over the same events table plus an
  ``orjson`` decode of each state (the read limit), and the rows it wrote inserted by plain
  ``executemany`` into fresh tables (the write limit);
- payment run: seconds of the last termly run (``pay``, as ``topup pay`` does, its file
  writing timed apart), with every run's seconds in the JSON;
- peak resident memory (ru_maxrss) of each of them (with that of any process it forked).

Every step runs in a fresh child process, as the real commands do: nothing one step caches
or allocates reaches another, and ru_maxrss is that step's own. Times are wall-clock (the
PostgreSQL side of the work happens in the server, not in this process); the machine is
shared, so compare each figure with its baseline from the same run, never across runs.
It prints every figure with its events and plans and PASS/MISS against the performance targets:
figures, not assertions. ``--markdown`` writes the figures, with the machine they were
measured on, into the doc (a section per scale and size; the doc is generated, never edited).

The sub-commands look closer at one part, with the same LA, the same sizes (``--scale``,
``--plans`` ...), backends, steps and ``--out`` JSON (no ``--markdown``):

- ``import``: the whole LA as ONE import into a fresh ledger, best of ``--repeat``: reading the
  CSVs, checking each kind of row, encoding alone, recording (``append_many``, one
  transaction), against the ordinary command path (``EventStore.append``, whose stored bytes
  must be the import's), the library's ``recorder.insert_events`` alone and one plain
  ``executemany`` of the same rows; on both backends, PostgreSQL against SQLite.
- ``payrun``: every termly run of the replay split into reading the ledger, working the
  lines out and recording them, each beside a raw read of the ledger it paid from; then the
  worst case, the current financial year's tariff revised for every band and its
  supplementary run, a repeat run with nothing new and a second revision (``--profile``
  writes cProfile statistics of that last run).
- ``projections``: the raw read against the library's read (``notifications`` + decode) and
  the stored pages the projections read through, the rebuild and its split (wall and CPU
  seconds), then the update after a day's reviews of ten plans and after a tariff revision.
- ``statements``: every school's statement for the last period paid (one-pass read, HTML,
  HTML + CSV with the index), one school's statement on its own, and PDF for a sample.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

SCALES = {"county": (8_000, 450), "national": (640_000, 22_000)}
PAY_TARGET = {"county": 2.0, "national": 60.0}
IMPORT_RATE_TARGET = 50_000
IMPORT_RATIO_TARGET = 4.0
REBUILD_RATIO_TARGET = 2.0
PEAK_TARGET_MIB = 2048
BACKEND_RATIO_TARGET = 2.0
FETCH = 10_000  # rows per fetch of the raw read and of the plain insert's source
# The library's PostgreSQL insert (Application.save's too) sends a batch as one array
# parameter in psycopg's pipeline mode; with about 60,000 events of this size (10 MB) it
# never returned (45,000 took 3 s). `import` times those two paths only up to this many events.
LIBRARY_PG_LIMIT = 40_000
ROOT = Path(__file__).resolve().parents[1]

Params = dict[str, Any]


# The steps, each run in a child process of its own.


def _at(day: str, hour: int) -> datetime:
    return datetime.combine(date.fromisoformat(day), clock_time(hour), tzinfo=UTC)


def step_generate(p: Params) -> Params:
    from topup_ledger.services.generator import write_generated

    started = time.perf_counter()
    la, written = write_generated(Path(p["out"]), plans=p["plans"], schools=p["schools"],
                                  years=p["years"], seed=p["seed"])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "files": len(written), "stats": la.stats, "described": la.describe(),
            "batches": [{"folder": b.folder, "period": b.run.period, "run_on": b.run.on.isoformat(),
                         "kinds": b.kinds(), "rows": sum(b.counts.values()) + sum(
                             len(b.rows[k]) for k in ("schools", "rates", "tariffs"))}
                        for b in la.batches]}


def step_import(p: Params) -> Params:
    """One batch through the product's importer, as the demo and ``topup import`` do."""
    from topup_ledger.io.import_csv import read_table
    from topup_ledger.services.importer import Import
    from topup_ledger.services.recording import Ledger
    from topup_ledger.storage.store import EventStore

    store = EventStore(p["location"])
    when = _at(p["run_on"], 16) - timedelta(days=1)  # learned the day before the run
    ledger = Ledger(store, clock=lambda: when)
    try:
        started = time.perf_counter()
        job = Import(ledger)
        rows = 0
        for kind in p["kinds"]:
            result = job.stage_table(read_table(Path(p["folder"]) / f"{kind}.csv"), kind)
            if result.rejected:
                first = result.rejects()[0]
                raise SystemExit(f"{p['folder']}/{kind}.csv line {first.line}, {first.field}: "
                                 f"{first.reason}")
            rows += result.rows
        checked = time.perf_counter()
        positions = job.commit()
        seconds = time.perf_counter() - started
    finally:
        store.close()
    # Checking: reading the files and the plans they name, and every row's rules; recording:
    # the one append (encoding and inserting), what the plain INSERT is compared with.
    return {"seconds": seconds, "checking_seconds": checked - started,
            "recording_seconds": seconds - (checked - started), "rows": rows,
            "events": len(positions),
            "first": positions[0] if positions else 0, "last": positions[-1] if positions else 0}


def step_pay(p: Params) -> Params:
    """One termly run, as ``topup pay`` makes it: the run, then its files and their digests.
    With ``phases``, the run's reading, working out and recording are timed apart; ``hour``
    is the hour of the run's day it is made at (9 unless given); ``profile`` names a file for
    cProfile statistics of the run (not its files)."""
    from topup_ledger.services.payment_run import pay, write_and_record
    from topup_ledger.services.recording import Ledger
    from topup_ledger.storage.store import EventStore

    store = EventStore(p["location"])
    when = _at(p["run_on"], p.get("hour", 9))
    ledger = Ledger(store, clock=lambda: when)
    profile = cProfile.Profile() if p.get("profile") else None
    try:
        events = store.max_position()
        phases: Params = {}
        if profile:
            profile.enable()
        started, cpu = time.perf_counter(), _cpu()
        result = (_pay_in_phases(ledger, p["period"], phases) if p.get("phases")
                  else pay(ledger, p["period"]))
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu
        if profile:
            profile.disable()
            profile.dump_stats(p["profile"])
        figures = {"seconds": seconds, "events": events, "run_id": result.run_id,
                   "schools": len(result.schools), "total_pence": result.total,
                   "lines": sum(s.lines for s in result.schools), "run_cpu_seconds": cpu,
                   "recorded": result.recorded, **phases}
        write_and_record(ledger, result.run_id, Path(p["out"]))
        figures["files_seconds"] = time.perf_counter() - started - seconds
    finally:
        store.close()
    return figures


def _pay_in_phases(ledger: Any, period: str, phases: Params) -> Any:
    """``payment_run.pay``, step for step, with its three phases timed into ``phases``:
    reading (the reference facts and every plan's first event), working out every plan's
    lines, and recording the run."""
    from topup_ledger.engine import collector
    from topup_ledger.engine.run import reference_and_plans, work_out
    from topup_ledger.services.payment_run import record_run

    store = ledger.store
    started = time.perf_counter()
    with collector.paused():
        known, plans = reference_and_plans(store, store.max_position())
        read = time.perf_counter()
        try:
            phases["plans"] = plans.count()
            sequence, lines = work_out(known, period, plans, store)
        finally:
            plans.close()
    worked_out = time.perf_counter()
    with lines:
        result = record_run(ledger, known, period, sequence, lines)
    phases.update(read_seconds=read - started, compute_seconds=worked_out - read,
                  record_seconds=time.perf_counter() - worked_out)
    return result


def step_rebuild(p: Params) -> Params:
    """Every projection from nothing, as ``topup rebuild`` does."""
    from topup_ledger.projections.db import projections_path
    from topup_ledger.projections.runner import rebuild

    path = projections_path(p["location"])
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)  # from nothing: not even an empty file left over
    return timed_projections(p["location"], rebuild)


def step_update(p: Params) -> Params:
    """Every projection brought up to date from where it stands, as the first ``topup
    funding`` (or any projection command) after new events does."""
    from topup_ledger.projections.runner import catch_up

    return timed_projections(p["location"], catch_up)


def timed_projections(location: str, bring: Any) -> Params:
    """``bring(store, db, every fold)`` on the ledger's projection file, timed from opening
    the file to closing it (closing checkpoints the file's WAL); the events it read, and how
    long folding them took (up to the last page's progress report) before every plan's rows
    were worked out."""
    from topup_ledger.projections.db import ProjectionDB, projections_path
    from topup_ledger.projections.runner import folds_for
    from topup_ledger.storage.store import EventStore

    store = EventStore(location)
    folded = [0.0]

    def progress(_read: int) -> None:
        folded[0] = time.perf_counter()

    try:
        started, cpu = time.perf_counter(), _cpu()
        db = ProjectionDB(projections_path(location))
        try:
            events = bring(store, db, folds_for([]), progress=progress)
        finally:
            db.close()
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    finally:
        store.close()
    fold_seconds = folded[0] - started if folded[0] else 0.0
    return {"seconds": seconds, "events": events, "fold_seconds": fold_seconds,
            "plans_seconds": seconds - fold_seconds, "timed_cpu_seconds": cpu}


def step_write_floor(p: Params) -> Params:
    """Every row the rebuild wrote, inserted by plain ``executemany`` into a fresh file of
    the same tables with the projection file's own settings, in one transaction: what
    writing the rebuild's output costs with nothing worked out. Rows are read a chunk at a
    time (bounded memory) and only the inserts, the commit and the close are timed."""
    from topup_ledger.projections.db import ProjectionDB, projections_path

    built = sqlite3.connect(projections_path(p["location"]))
    tables = built.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                           "AND name != 'tracking' ORDER BY name").fetchall()
    seconds, count = 0.0, 0
    with tempfile.TemporaryDirectory(prefix="write-floor-") as folder:
        db = ProjectionDB(Path(folder) / "floor.projections.sqlite")
        db.conn.execute("BEGIN IMMEDIATE")
        for name, create in tables:
            db.conn.execute(create)
            rows = built.execute(f"SELECT * FROM {name}")
            while chunk := rows.fetchmany(FETCH * 10):
                marks = ", ".join("?" * len(chunk[0]))
                started = time.perf_counter()
                db.conn.executemany(f"INSERT INTO {name} VALUES ({marks})", chunk)
                seconds += time.perf_counter() - started
                count += len(chunk)
        started = time.perf_counter()
        db.conn.execute("COMMIT")
        db.close()  # timed, as the rebuild's closing checkpoint is
        seconds += time.perf_counter() - started
    built.close()
    return {"seconds": seconds, "rows": count}


def step_raw_read(p: Params) -> Params:
    """A plain SELECT of every stored event in ledger order and an orjson decode of each state:
    the least any rebuild must do, on the same table the rebuild reads."""
    import orjson

    loads = orjson.loads
    count = 0
    with _events_table(p["location"]) as (conn, table, kind):
        started, cpu = time.perf_counter(), _cpu()
        if kind == "sqlite":
            rows = conn.execute(f"SELECT rowid, originator_id, originator_version, topic, state "
                                f"FROM {table} ORDER BY rowid")
            while batch := rows.fetchmany(FETCH):
                for row in batch:
                    loads(row[4])
                count += len(batch)
        else:
            with conn.cursor(name="raw_read") as rows:  # server-side: bounded memory
                rows.itersize = FETCH
                rows.execute(f"SELECT notification_id, originator_id, originator_version, topic, "
                             f"state FROM {table} ORDER BY notification_id")
                while batch := rows.fetchmany(FETCH):
                    for row in batch:
                        loads(row[4])
                    count += len(batch)
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    return {"seconds": seconds, "events": count, "timed_cpu_seconds": cpu}


def step_plain_insert(p: Params) -> Params:
    """The ledger's rows, in ledger order, into an identical fresh table by plain SQL.

    The rows each import appended are inserted in one transaction of their own, as the import
    did, and timed; the rows between imports (payment runs) are inserted untimed, so every
    timed insert goes into a table holding what the ledger held at that point. Each range is
    read into memory first, so reading is not timed as inserting."""
    timed: list[tuple[int, int]] = [tuple(r) for r in p["imports"]]  # type: ignore[misc]
    ranges: list[tuple[int, int, bool]] = []
    reached = 0
    for first, last in timed:
        if first > reached + 1:
            ranges.append((reached + 1, first - 1, False))
        ranges.append((first, last, True))
        reached = last
    seconds, events = 0.0, 0
    with _events_table(p["source"]) as (source, table, kind), \
            _events_table(p["target"]) as (target, target_table, _):
        if kind == "sqlite":
            select = (f"SELECT originator_id, originator_version, topic, state FROM {table} "
                      "WHERE rowid BETWEEN ? AND ? ORDER BY rowid")
        else:
            select = (f"SELECT originator_id, originator_version, topic, state FROM {table} "
                      "WHERE notification_id BETWEEN %s AND %s ORDER BY notification_id")
        for first, last, timing in ranges:
            rows = source.execute(select, (first, last)).fetchall()
            if kind == "postgres":
                source.commit()
            took = _insert_plain(target, target_table, kind, rows)
            if timing:
                seconds += took
                events += len(rows)
            del rows
    return {"seconds": seconds, "events": events}


def _insert_plain(conn: Any, table: str, kind: str, rows: list[Any]) -> float:
    """``rows`` (originator_id, originator_version, topic, state) into ``table`` by one plain
    ``executemany`` in a transaction of their own, no library involved: the seconds it took."""
    marks = "?, ?, ?, ?" if kind == "sqlite" else "%s, %s, %s, %s"
    insert = f"INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES ({marks})"
    started = time.perf_counter()
    if kind == "sqlite":
        conn.execute("BEGIN")
        conn.executemany(insert, rows)
        conn.execute("COMMIT")
    else:
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(insert, rows)
    return time.perf_counter() - started


class _events_table:
    """A plain connection (not the library's) to a ledger's events table: (conn, table, kind)."""

    def __init__(self, location: str) -> None:
        self.location = location

    def __enter__(self) -> tuple[Any, str, str]:
        from topup_ledger.storage.store import EventStore, environment, is_postgres, postgres_schema

        store = EventStore(self.location)  # only to learn the table's name, as the library has it
        name = store.recorder.events_table_name
        store.close()
        if not is_postgres(self.location):
            self.conn = sqlite3.connect(self.location, isolation_level=None)
            return self.conn, name, "sqlite"
        import psycopg

        env = environment(self.location)
        self.conn = psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                                    port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                                    password=env["POSTGRES_PASSWORD"])
        schema = postgres_schema(self.location) or "public"
        return self.conn, f'"{schema}"."{name}"', "postgres"

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def _cpu() -> float:
    """CPU seconds so far of this process and of the processes it forked and waited for."""
    done = os.times()
    return time.process_time() + done.children_user + done.children_system


def _stored_rows(location: str) -> list[tuple[str, int, str, bytes]]:
    from topup_ledger.storage.store import EventStore

    store = EventStore(location)
    try:
        return [(str(n.originator_id), n.originator_version, n.topic, bytes(n.state))
                for n in store.notifications()]
    finally:
        store.close()


def _rows_digest(rows: list[tuple[str, int, str, bytes]]) -> str:
    digest = hashlib.sha256()
    for stream, version, topic, state in rows:
        digest.update(f"{stream}\0{version}\0{topic}\0{len(state)}\0".encode())
        digest.update(state)
    return digest.hexdigest()


def step_import_whole(p: Params) -> Params:
    """The whole LA as ONE import into a fresh ledger, then the very same stored rows by the
    command path (``EventStore.append``: the stored bytes must not differ), the library's
    ``recorder.insert_events`` alone and a plain ``executemany``, each into a fresh ledger."""
    from eventsourcing.persistence import StoredEvent

    from topup_ledger.io.import_csv import read_table
    from topup_ledger.services.importer import Import
    from topup_ledger.services.recording import Ledger
    from topup_ledger.storage.store import BulkEncoder, EventStore

    when = datetime.fromisoformat(p["when"])
    started = time.perf_counter()
    tables = [(kind, read_table(Path(path))) for kind, path in p["files"]]
    figures: Params = {"read_seconds": time.perf_counter() - started, "checking": {}, "rows": 0}
    store = EventStore(p["ledger"])
    try:
        job = Import(Ledger(store, clock=lambda: when))  # reads the (empty) ledger once
        for (kind, table), (_, path) in zip(tables, p["files"], strict=True):
            started = time.perf_counter()
            result = job.stage_table(table, kind)
            figures["checking"][kind] = figures["checking"].get(kind, 0.0) + time.perf_counter() - started
            if result.rejected:
                first = result.rejects()[0]
                raise SystemExit(f"{path} line {first.line}, {first.field}: {first.reason}")
            figures["rows"] += result.rows
        staged = list(job.staging.staged)  # the staged facts, read back (the job keeps them on disk)
        started = time.perf_counter()
        BulkEncoder(store.mapper).rows(staged)
        figures["encode_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        job.commit()
        figures["record_seconds"] = time.perf_counter() - started
    finally:
        store.close()
    stored = _stored_rows(p["ledger"])
    if len(stored) != len(staged):
        raise SystemExit(f"{len(staged):,} events staged, {len(stored):,} stored")
    figures.update(events=len(staged), digest=_rows_digest(stored),
                   checking_seconds=sum(figures["checking"].values()))
    if p["library_limit"] is None or len(staged) <= p["library_limit"]:
        other = EventStore(p["append"])
        other.given_times = True  # the times the staged facts carry, as the import records them
        try:
            started = time.perf_counter()
            other.append(staged)
            figures["append_seconds"] = time.perf_counter() - started
        finally:
            other.close()
        if _stored_rows(p["append"]) != stored:
            raise SystemExit("append and append_many stored different rows")
        bare = EventStore(p["bare"])
        try:
            events = [StoredEvent(*row) for row in stored]
            started = time.perf_counter()
            bare.recorder.insert_events(events)
            figures["recorder_seconds"] = time.perf_counter() - started
        finally:
            bare.close()
    with _events_table(p["plain"]) as (conn, table, kind):
        figures["plain_seconds"] = _insert_plain(conn, table, kind, stored)
    return figures


def step_library_read(p: Params) -> Params:
    """Every stored event through the library's recorder (a ``Notification`` each, as
    ``EventStore.notifications`` reads them) and the mapper's decode of each state."""
    from topup_ledger.storage.store import EventStore

    store = EventStore(p["location"])
    try:
        store.max_position()  # the connection opened outside the timing
        decode = store.mapper.decode_state
        count = 0
        started, cpu = time.perf_counter(), _cpu()
        for n in store.notifications(page=5_000):
            decode(n.state)
            count += 1
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    finally:
        store.close()
    return {"seconds": seconds, "timed_cpu_seconds": cpu, "events": count}


def step_pages_read(p: Params) -> Params:
    """Every stored event as the projections read them (``StoredPages``: plain rows a page at
    a time) and the mapper's decode of each state."""
    from topup_ledger.storage.pages import PAGE, StoredPages
    from topup_ledger.storage.store import EventStore

    store = EventStore(p["location"])
    try:
        store.max_position()
        decode = store.mapper.decode_state
        count = 0
        reader = StoredPages(store)
        started, cpu = time.perf_counter(), _cpu()
        for rows in reader.pages(size=PAGE):
            for row in rows:
                decode(row.state)
            count += len(rows)
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu
        reader.close()
    finally:
        store.close()
    return {"seconds": seconds, "timed_cpu_seconds": cpu, "events": count}


def step_describe(p: Params) -> Params:
    """How many events and plans a ledger holds (untimed: for a ledger built elsewhere)."""
    with _events_table(p["location"]) as (conn, table, _kind):
        events, plans = conn.execute(f"SELECT COUNT(*), COUNT(DISTINCT CASE WHEN originator_id "
                                     f"LIKE 'plan:%' THEN originator_id END) FROM {table}").fetchone()
    return {"events": events, "plans": plans}


def _ledger_after_last(location: str) -> tuple[Any, Any]:
    """(store, ledger) whose clock reads a millisecond later each time, from the recorded
    time of the ledger's last event: what comes next in the ledger's own time."""
    from topup_ledger.projections.base import Decoder
    from topup_ledger.services.recording import Ledger
    from topup_ledger.storage.store import EventStore

    store = EventStore(location)
    last = store.recorder.select_notifications(store.max_position(), 1)[0]
    moment = datetime.fromisoformat(Decoder(store).at(last.state))
    now = [moment if moment.tzinfo else moment.replace(tzinfo=UTC)]

    def clock() -> datetime:
        now[0] += timedelta(milliseconds=1)
        return now[0]

    return store, Ledger(store, clock=clock)


def step_review(p: Params) -> Params:
    """A handful of new events, as a day's reviews: ``count`` plans moved to band C (or, on
    a band already, to 12.5 hours) from ``effective``, recorded after the last event."""
    from topup_ledger.domain.errors import RuleError

    store, ledger = _ledger_after_last(p["location"])
    effective = date.fromisoformat(p["effective"])
    try:
        before = store.max_position()
        refs = sorted({r.fact.plan for _, r in store.recorded(types=("plan.issued",))})
        changed = 0
        for ref in refs:
            if changed == p["count"]:
                break
            for change in (lambda r: ledger.change_band(r, "C", effective, "annual-review"),
                           lambda r: ledger.change_hours(r, Decimal("12.5"), effective, "review")):
                reached = store.max_position()
                try:
                    change(ref)
                except RuleError:
                    continue
                if store.max_position() > reached:  # not a change the ledger already holds
                    changed += 1
                    break
        events = store.max_position() - before
    finally:
        store.close()
    return {"plans": changed, "events": events}


def step_revise_tariff(p: Params) -> Params:
    """A revision of a financial year's tariff (every setting; with no ``year``, the latest
    year with a tariff), recorded after the last event."""
    store, ledger = _ledger_after_last(p["location"])
    try:
        before = store.max_position()
        year = p["year"] or max(r.fact.year for _, r in store.recorded(types=("tariff.set",)))
        ledger.set_tariff(year, p["bands"], reason=p["reason"])
        events = store.max_position() - before
    finally:
        store.close()
    return {"year": year, "events": events}


def step_statements(p: Params) -> Params:
    """Every school's statement for the last period paid, as ``topup statements`` writes
    them, one school's on its own, and PDF for a sample (one process: the first PDF of a
    process loads the fonts, timed on its own)."""
    from topup_ledger.domain import events as ev
    from topup_ledger.statements import statement_for, write_period
    from topup_ledger.statements.build import build_statement
    from topup_ledger.statements.render import render_html, render_pdf
    from topup_ledger.statements.source import read_view
    from topup_ledger.storage.store import EventStore

    store = EventStore(p["location"])
    try:
        runs = [r.fact for _, r in store.recorded(types=(ev.PaymentRunRecorded.TYPE,))]
        if not runs:
            raise SystemExit(f"{p['location']} has no payment run: no statements to make")
        period = runs[-1].period
        figures: Params = {"events": store.max_position(), "runs": len(runs), "period": period,
                           "write": {}}
        started = time.perf_counter()
        view = read_view(store)
        figures["read_seconds"] = time.perf_counter() - started
        for formats in (("html",), ("html", "csv")):
            started = time.perf_counter()
            result = write_period(store, period, Path(p["out"]) / "-".join(formats), formats)
            figures["write"]["+".join(formats)] = {
                "seconds": time.perf_counter() - started, "statements": len(result.statements),
                "lines": sum(len(s.lines) for s in result.statements)}
        schools = [s.school for s in result.statements]
        started = time.perf_counter()
        one = statement_for(store, schools[len(schools) // 2], period)
        figures["one"] = {"seconds": time.perf_counter() - started, "children": len(one.children),
                          "changes": len(one.changes)}
        started = time.perf_counter()
        render_pdf(one)  # the first PDF of a process loads fonts
        figures["pdf_first_seconds"] = time.perf_counter() - started
        sample = schools[:p["pdf_sample"]]
        started = time.perf_counter()
        for urn in sample:
            statement = build_statement(view, urn, period)
            render_pdf(statement, render_html(statement))
        figures["pdf"] = {"sample": len(sample), "schools": len(schools),
                          "seconds_each": (time.perf_counter() - started) / max(1, len(sample))}
    finally:
        store.close()
    return figures


STEPS = {"generate": step_generate, "import": step_import, "pay": step_pay,
         "rebuild": step_rebuild, "raw-read": step_raw_read, "plain-insert": step_plain_insert,
         "write-floor": step_write_floor, "update": step_update,
         "import-whole": step_import_whole, "library-read": step_library_read,
         "pages-read": step_pages_read, "describe": step_describe, "review": step_review,
         "revise-tariff": step_revise_tariff, "statements": step_statements}


def child(name: str, params: str, result: str) -> None:
    started = time.process_time()
    figures = STEPS[name](json.loads(params))
    # A payment run shares its plans out over forked processes: count their work and their
    # peak too (the sum of the two peaks: an upper bound on what was resident at once).
    done = os.times()
    figures["cpu_seconds"] = (time.process_time() - started
                              + done.children_user + done.children_system)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    forked = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures["peak_mib"] = own + forked
    figures["peak_mib_largest_process"] = max(own, forked)
    Path(result).write_text(json.dumps(figures, default=str))


class StepFailed(RuntimeError):
    """A step crashed, was refused or ran past --step-timeout: the figures stop there."""


STEP_TIMEOUT: list[float | None] = [None]


def run_step(name: str, params: Params, work: Path) -> Params:
    """Run one step in a fresh Python process and return what it measured."""
    result = work / f"step-{uuid.uuid4().hex[:8]}.json"
    env = {k: v for k, v in os.environ.items() if k != "TOPUP_CIPHER_KEY"}  # both sides plain
    command = [sys.executable, __file__, "--step", name, "--params", json.dumps(params),
               "--result", str(result)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT[0])
    except subprocess.TimeoutExpired:
        raise StepFailed(f"step {name} ({json.dumps(params)[:200]}) still running after "
                         f"{STEP_TIMEOUT[0]:.0f} s: stopped") from None
    if done.returncode != 0:
        how = (f"was killed (signal {-done.returncode})" if done.returncode < 0
               else f"failed (exit {done.returncode})")
        where = params.get("location") or params.get("source") or params.get("out")
        raise StepFailed(f"step {name} on {where} {how}:\n"
                         f"{(done.stderr.strip() or done.stdout.strip())[-3000:]}")
    figures: Params = json.loads(result.read_text())
    result.unlink()
    return figures


# Building and measuring one backend.


def rate(events: int, seconds: float) -> float:
    return events / seconds if seconds else 0.0


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def drop_schema(location: str) -> None:
    import psycopg
    from psycopg import sql

    from topup_ledger.storage.store import environment, postgres_schema

    env = environment(location)
    with psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                         port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                         password=env["POSTGRES_PASSWORD"], autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(postgres_schema(location) or "")))


@contextmanager
def fresh_ledgers(backend: str, url: str | None, folder: Path, *names: str) -> Iterator[list[str]]:
    """Fresh, empty ledgers (``topup init``: the library's own tables) on ``backend``, one per
    name: files in ``folder`` on SQLite, schemas of their own on PostgreSQL (dropped after,
    with the first one's projections in ``folder``)."""
    from topup_ledger.storage.store import EventStore

    folder.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        locations = [str(folder / f"{name}.sqlite") for name in names]
    else:
        assert url
        tag = f"bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        locations = [with_schema(url, f"{tag}_{name}") for name in names]
        os.environ["TOPUP_PROJECTIONS"] = str(folder / f"{names[0]}.projections.sqlite")
    # One ledger key for every fresh ledger (and the steps, children, inherit it): the import
    # step compares the rows two ledgers stored, and each row carries its key's MAC.
    os.environ.setdefault("TOPUP_LEDGER_KEY", base64.b64encode(os.urandom(32)).decode())
    try:
        for location in locations:
            EventStore(location, create=True).close()
        yield locations
    finally:
        if backend == "postgres":
            os.environ.pop("TOPUP_PROJECTIONS", None)
            for location in locations:
                drop_schema(location)


def replay(backend: str, ledger: str, la: Params, work: Path, payments: Path, say: Any,
           floor: bool = False, **pay_options: Any) -> Iterator[tuple[str, Params, Params]]:
    """Replay the generated LA into ``ledger`` as ``run.sh`` does, each step a process of its
    own: every batch's import, then its termly run (``pay_options`` go to the pay step; with
    ``floor``, a raw read of the ledger the run pays from goes before it, as its
    ``raw_seconds``). Yields ("import", batch, figures) after each import and ("pay", batch,
    figures) after each run: what the caller does before asking for more happens between
    those steps."""
    for batch in la["batches"]:
        figures = run_step("import", {"location": ledger, "kinds": batch["kinds"],
                                      "folder": str(work / "la" / batch["folder"]),
                                      "run_on": batch["run_on"]}, work)
        say(f"  {backend}: imported {batch['folder']}: {figures['events']:,} events in "
            f"{figures['seconds']:.2f} s")
        yield "import", batch, figures
        raw = run_step("raw-read", {"location": ledger}, work) if floor else None
        figures = run_step("pay", {"location": ledger, "period": batch["period"],
                                   "run_on": batch["run_on"], "out": str(payments),
                                   **pay_options}, work)
        figures["period"] = batch["period"]
        if raw:
            figures["raw_seconds"] = raw["seconds"]
        say(f"  {backend}: paid {batch['period']} ({figures['events']:,} events in the "
            f"ledger): {figures['seconds']:.2f} s, files {figures['files_seconds']:.2f} s")
        yield "pay", batch, figures


def measure_backend(backend: str, url: str | None, la: Params, work: Path,
                    say: Any, partial: Params, save: Any) -> Params:
    """Replay the LA into a fresh ledger on ``backend`` and measure every step; each step's
    figures also go into ``partial`` as they come (``save`` writes them: a national run
    takes hours, and what it measured before an interruption is still worth having)."""
    folder = work / backend
    with fresh_ledgers(backend, url, folder, "ledger", "plain") as (ledger, plain):
        imports: list[Params] = []
        runs: list[Params] = []
        partial.update(imports=imports, runs=runs)
        for what, batch, figures in replay(backend, ledger, la, work, folder / "payments", say):
            (imports if what == "import" else runs).append(figures)
            save()
            if what == "import" and batch is la["batches"][-1]:
                # The projections as a finance officer last looked at them: before the run.
                figures = partial["before_run"] = run_step("update", {"location": ledger}, work)
                say(f"  {backend}: projections before the last run (from nothing): "
                    f"{figures['seconds']:.2f} s")
        updated = partial["update"] = run_step("update", {"location": ledger}, work)
        save()
        say(f"  {backend}: projections updated after the last run: {updated['events']:,} events "
            f"in {updated['seconds']:.2f} s")
        plain_figures = run_step("plain-insert", {
            "source": ledger, "target": plain,
            "imports": [(i["first"], i["last"]) for i in imports if i["events"]]}, work)
        partial["plain_insert"] = plain_figures
        save()
        say(f"  {backend}: plain insert of the same rows: {plain_figures['seconds']:.2f} s")
        raw = partial["raw_read"] = run_step("raw-read", {"location": ledger}, work)
        save()
        say(f"  {backend}: raw read: {raw['events']:,} events in {raw['seconds']:.2f} s")
        rebuilt = partial["rebuild"] = run_step("rebuild", {"location": ledger}, work)
        say(f"  {backend}: rebuild: {rebuilt['events']:,} events in {rebuilt['seconds']:.2f} s")
        floor = partial["write_floor"] = run_step("write-floor", {"location": ledger}, work)
        save()
        say(f"  {backend}: plain insert of the rebuild's {floor['rows']:,} rows: "
            f"{floor['seconds']:.2f} s")
    imported = sum(i["events"] for i in imports)
    import_seconds = sum(i["seconds"] for i in imports)
    last = runs[-1]
    figures: Params = {
        "ledger_events": raw["events"],
        "import": {"events": imported, "seconds": import_seconds, "rows": sum(i["rows"] for i in imports),
                   "checking_seconds": sum(i["checking_seconds"] for i in imports),
                   "recording_seconds": sum(i["recording_seconds"] for i in imports),
                   "events_per_second": rate(imported, import_seconds),
                   "peak_mib": max(i["peak_mib"] for i in imports),
                   "opening": {"events": imports[0]["events"], "seconds": imports[0]["seconds"],
                               "events_per_second": rate(imports[0]["events"], imports[0]["seconds"])},
                   "batches": imports},
        "plain_insert": {"events": plain_figures["events"], "seconds": plain_figures["seconds"],
                         "events_per_second": rate(plain_figures["events"], plain_figures["seconds"]),
                         "peak_mib": plain_figures["peak_mib"]},
        "raw_read": {"events": raw["events"], "seconds": raw["seconds"],
                     "events_per_second": rate(raw["events"], raw["seconds"]), "peak_mib": raw["peak_mib"]},
        "rebuild": {"events": rebuilt["events"], "seconds": rebuilt["seconds"],
                    "events_per_second": rate(rebuilt["events"], rebuilt["seconds"]),
                    "fold_seconds": rebuilt["fold_seconds"], "plans_seconds": rebuilt["plans_seconds"],
                    "peak_mib": rebuilt["peak_mib"]},
        "update": {"events": updated["events"], "seconds": updated["seconds"],
                   "peak_mib": updated["peak_mib"]},
        "payrun": {"period": last["period"], "events": last["events"], "seconds": last["seconds"],
                   "files_seconds": last["files_seconds"], "schools": last["schools"],
                   "lines": last["lines"], "peak_mib": max(r["peak_mib"] for r in runs),
                   "slowest_seconds": max(r["seconds"] for r in runs), "runs": runs},
    }
    imp, plain_rate = figures["import"]["events_per_second"], figures["plain_insert"]["events_per_second"]
    figures["import_ratio"] = plain_rate / imp if imp else None
    reb = figures["rebuild"]["events_per_second"]
    figures["rebuild_ratio"] = figures["raw_read"]["events_per_second"] / reb if reb else None
    # What the importer's row checks alone cost against the plain INSERT of their rows: with
    # nothing recorded at all, the least import ratio those checks allow.
    figures["import_checks_ratio"] = figures["import"]["checking_seconds"] / plain_figures["seconds"] \
        if plain_figures["seconds"] else None
    # The rebuild's fold of the events alone (one process, in ledger order) against the read.
    figures["rebuild_fold_ratio"] = rebuilt["fold_seconds"] / raw["seconds"] if raw["seconds"] else None
    figures["write_floor"] = {"rows": floor["rows"], "seconds": floor["seconds"],
                              "peak_mib": floor["peak_mib"]}
    # The least rebuild ratio a fold writing those rows could reach: read, decode, write.
    figures["rebuild_floor_ratio"] = (raw["seconds"] + floor["seconds"]) / raw["seconds"] \
        if raw["seconds"] else None
    return figures


# Targets, printing and the doc.


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def targets(report: Params) -> list[Params]:
    found: list[Params] = []
    scale = report["scale"]
    indicative = report["plans"] != SCALES[scale][0]
    note = f" (at {report['plans']:,} plans, not the scale's {SCALES[scale][0]:,}: indicative)" \
        if indicative else ""

    def add(what: str, figure: float | None, limit: float, ok: bool) -> None:
        found.append({"target": what + note, "figure": figure, "limit": limit,
                      "result": verdict(figure is not None and ok)})

    for backend, b in report["backends"].items():
        add(f"{backend}: rebuild ratio raw/rebuild <= {REBUILD_RATIO_TARGET}", b["rebuild_ratio"],
            REBUILD_RATIO_TARGET, (b["rebuild_ratio"] or 99) <= REBUILD_RATIO_TARGET)
        add(f"{backend}: import >= {IMPORT_RATE_TARGET:,} events/s",
            b["import"]["events_per_second"], IMPORT_RATE_TARGET,
            b["import"]["events_per_second"] >= IMPORT_RATE_TARGET)
        add(f"{backend}: import ratio plain/import <= {IMPORT_RATIO_TARGET}", b["import_ratio"],
            IMPORT_RATIO_TARGET, (b["import_ratio"] or 99) <= IMPORT_RATIO_TARGET)
        add(f"{backend}: slowest termly run < {PAY_TARGET[scale]} s ({scale})",
            b["payrun"]["slowest_seconds"], PAY_TARGET[scale],
            b["payrun"]["slowest_seconds"] < PAY_TARGET[scale])
        peak = max([b[s]["peak_mib"] for s in ("import", "plain_insert", "raw_read", "rebuild", "payrun")]
                   + [report["generate"]["peak_mib"]])
        add(f"{backend}: peak memory of every step (and generating) < {PEAK_TARGET_MIB} MiB", peak,
            PEAK_TARGET_MIB, peak < PEAK_TARGET_MIB)
    for what, ratio in report.get("postgres_vs_sqlite", {}).items():
        if what in ("import", "rebuild", "payrun"):
            add(f"postgres within {BACKEND_RATIO_TARGET}x of sqlite: {what}", ratio,
                BACKEND_RATIO_TARGET, ratio <= BACKEND_RATIO_TARGET)
    return found


def backend_ratios(sqlite: Params, postgres: Params) -> Params:
    """How many times slower PostgreSQL is than SQLite on each figure (time over time)."""
    ratios = {}
    for what in ("import", "plain_insert", "raw_read", "rebuild", "payrun", "update"):
        s, p = sqlite[what]["seconds"], postgres[what]["seconds"]
        ratios[what] = p / s if s else None
    return ratios


def figure_rows(report: Params) -> list[list[str]]:
    rows = []
    for backend, b in report["backends"].items():
        i, pl, raw, rb, pay = b["import"], b["plain_insert"], b["raw_read"], b["rebuild"], b["payrun"]
        rows += [
            [backend, "import (product's importer, every batch)", f"{i['events']:,}",
             f"{i['seconds']:.2f}", f"{i['events_per_second']:,.0f}", f"{i['peak_mib']:,.0f}"],
            [backend, "import: of which the opening load (batch 1)", f"{i['opening']['events']:,}",
             f"{i['opening']['seconds']:.2f}", f"{i['opening']['events_per_second']:,.0f}", ""],
            *([[backend, "import: of which checking (files read, plans read, every row's rules)",
                "", f"{i['checking_seconds']:.2f}", "", ""],
               [backend, "import: of which recording (one append a batch)", "",
                f"{i['recording_seconds']:.2f}", "", ""]] if "checking_seconds" in i else []),
            [backend, "plain executemany INSERT, same rows", f"{pl['events']:,}", f"{pl['seconds']:.2f}",
             f"{pl['events_per_second']:,.0f}", f"{pl['peak_mib']:,.0f}"],
            [backend, "rebuild every projection from nothing", f"{rb['events']:,}", f"{rb['seconds']:.2f}",
             f"{rb['events_per_second']:,.0f}", f"{rb['peak_mib']:,.0f}"],
            *([[backend, "rebuild: of which folding the events (one process, ledger order)", "",
                f"{rb['fold_seconds']:.2f}", "", ""],
               [backend, "rebuild: of which working out every plan's rows (over the cores)", "",
                f"{rb['plans_seconds']:.2f}", "", ""]] if "fold_seconds" in rb else []),
            [backend, "raw SELECT + orjson decode, same table", f"{raw['events']:,}",
             f"{raw['seconds']:.2f}", f"{raw['events_per_second']:,.0f}", f"{raw['peak_mib']:,.0f}"],
            *([[backend, f"plain INSERT of the rebuild's {b['write_floor']['rows']:,} rows", "",
                f"{b['write_floor']['seconds']:.2f}", "", f"{b['write_floor']['peak_mib']:,.0f}"]]
              if "write_floor" in b else []),
            *([[backend, "projections updated after the last run (the run's events)",
                f"{b['update']['events']:,}", f"{b['update']['seconds']:.2f}", "",
                f"{b['update']['peak_mib']:,.0f}"]] if "update" in b else []),
            [backend, f"payment run {pay['period']} (+ files {pay['files_seconds']:.2f} s)",
             f"{pay['events']:,}", f"{pay['seconds']:.2f}", "", f"{pay['peak_mib']:,.0f}"],
            [backend, f"slowest of the {len(pay['runs'])} termly runs", "",
             f"{pay['slowest_seconds']:.2f}", "", ""],
        ]
    return rows


def ratio_rows(report: Params) -> list[list[str]]:
    rows = []
    for backend, b in report["backends"].items():
        rows.append([backend, "import: plain INSERT rate / import rate",
                     _fmt(b["import_ratio"]), f"<= {IMPORT_RATIO_TARGET}"])
        rows.append([backend, "rebuild: raw read rate / rebuild rate",
                     _fmt(b["rebuild_ratio"]), f"<= {REBUILD_RATIO_TARGET}"])
        if b.get("import_checks_ratio") is not None:
            rows.append([backend, "import floor: checking alone / plain INSERT (nothing recorded)",
                         _fmt(b["import_checks_ratio"]), "(baseline)"])
        if b.get("rebuild_fold_ratio") is not None:
            rows.append([backend, "rebuild: folding the events alone / raw read",
                         _fmt(b["rebuild_fold_ratio"]), "(baseline)"])
        if b.get("rebuild_floor_ratio") is not None:
            rows.append([backend, "rebuild floor: (raw read + plain INSERT of its rows) / raw read",
                         _fmt(b["rebuild_floor_ratio"]), "(baseline)"])
    for what, ratio in report.get("postgres_vs_sqlite", {}).items():
        rows.append(["postgres/sqlite", f"{what}: PostgreSQL seconds / SQLite seconds", _fmt(ratio),
                     f"<= {BACKEND_RATIO_TARGET}" if what in ("import", "rebuild", "payrun") else
                     "(baseline)"])
    return rows


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"


def table(headers: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        return ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|",
                *("| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    return ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            for row in [headers, *rows]]


FIGURE_HEADERS = ["backend", "figure", "events", "seconds", "events/s", "peak MiB"]


def machine(backends: list[str], url: str | None) -> Params:
    """What the figures were measured on, read now."""
    info: Params = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "os": platform.platform(), "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version,
                    "eventsourcing": metadata.version("eventsourcing")}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["os"] = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.system()} " \
                             f"{platform.release()})"
    except OSError:
        pass
    if "postgres" in backends and url:
        import psycopg

        from topup_ledger.storage.store import environment

        env = environment(url)
        with psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                             port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                             password=env["POSTGRES_PASSWORD"]) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, check=True).stdout.strip()
        info["commit"] = commit
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


def machine_line(m: Params) -> str:
    return (f"machine: {m['cpu']}, {m['cores']} cores, {m.get('ram_gib', '?')} GiB RAM; "
            f"{m['os']}; Python {m['python']}; SQLite {m['sqlite']}"
            + (f"; PostgreSQL {m['postgresql']}" if "postgresql" in m else "")
            + f"; eventsourcing {m['eventsourcing']}"
            + (f"; code at {m['commit']}" if "commit" in m else ""))


def label(report: Params) -> str:
    return f"{report['scale']}-{report['plans']}-{report['years']}y"


def lines(report: Params, markdown: bool = False) -> list[str]:
    m = report["machine"]
    g = report["generate"]
    years = f"{report['years']} academic year{'s' if report['years'] > 1 else ''}"
    head = [f"{report['scale']} scale: {report['plans']:,} plans, {report['schools']:,} schools, "
            f"{years}, seed {report['seed']}; measured {report['measured_at']} on "
            f"{', '.join(report['backends'])}",
            f"ledger: {g['described']}",
            f"generating it: {g['seconds']:.1f} s, peak {g['peak_mib']:,.0f} MiB"]
    for backend, b in report["backends"].items():
        head.append(f"{backend} ledger after the replay: {b['ledger_events']:,} events")
    head += [f"note: {note}" for note in report.get("notes", [])]
    if report.get("failed"):
        stopped = report["failed"].splitlines()[0].rstrip(":")
        head.append(f"STOPPED EARLY: {stopped}; the figures below are of "
                    f"{', '.join(report['backends'])} only")
    out = [f"- {line}" for line in [*head, machine_line(m)]] if markdown else [*head, machine_line(m)]
    out.append("")
    out += table(FIGURE_HEADERS, figure_rows(report), markdown)
    out.append("")
    out += table(["backend", "ratio", "figure", "target"], ratio_rows(report), markdown)
    out.append("")
    out += table(["target", "figure", "result"],
                 [[t["target"], _fmt(t["figure"]), t["result"]] for t in report["targets"]], markdown)
    return out


DOC_HEAD = """# Benchmarks

Generated by `scripts/bench.py --markdown docs/benchmarks.md`; do not edit by hand (a run
replaces its own section: one per scale and size). Each section says what it was measured
on and when. The machine is shared with other work, so compare a figure with its baseline
from the same run (the ratios), not with other runs. Each figure stands beside its target.

How it measures: the synthetic LA of `scripts/generate.py` is replayed batch by batch, as
`run.sh` does it: each batch's files through the product's importer (one `Import`, one atomic
append), then its termly payment run (`pay`, then its files). Every step runs in a fresh
process (peak MiB is that process's ru_maxrss). *import* times the importer over all
batches: *checking* (reading the CSVs and the plans they name, every row's rules) then
*recording* (one append a batch); *plain executemany INSERT* puts the very same stored rows
into an identical fresh table, one transaction per batch as the import did (the *import
floor* ratio: checking alone, with nothing recorded, against it). *rebuild* is `topup
rebuild` of every projection from nothing: *folding the events* in ledger order (one process),
then *working out every plan's rows* (shared over the cores); *raw SELECT + orjson decode*
reads and decodes every stored event of the same table and does nothing else.
*plain INSERT of the rebuild's rows* puts every row the rebuild wrote into a fresh file of the
same tables, working nothing out: with the raw read, the least a rebuild writing those rows
can take (the *rebuild floor* ratio).
*projections updated after the last run* is the first projection command after that run: the
projections stood as of the last import (brought up to date just before the run), and it
folds the run's events and brings every plan to the period the run reached.
*payment run* is the last termly run (the fullest ledger); every run is in the JSON.
"""


def write_markdown(path: Path, report: Params) -> None:
    key = label(report)
    start, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    sections: dict[str, str] = {}
    if path.exists():
        text = path.read_text(encoding="utf-8")
        while "<!-- bench:" in text:
            text = text[text.index("<!-- bench:"):]
            name = text[len("<!-- bench:"):text.index(" -->")]
            close = f"<!-- /bench:{name} -->"
            if close not in text:
                break
            sections[name] = text[:text.index(close) + len(close)]
            text = text[text.index(close) + len(close):]
    command = "python scripts/bench.py " + " ".join(shlex.quote(a) for a in report["argv"])
    body = [start, f"## {report['scale'].capitalize()} scale: {report['plans']:,} plans", "",
            f"`{command}`", "", *lines(report, markdown=True), end]
    sections[key] = "\n".join(body)
    order = sorted(sections, key=lambda k: (k.split("-")[0] != "county", int(k.split("-")[1])
                                            if k.split("-")[1].isdigit() else 0, k))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DOC_HEAD + "\n" + "\n\n".join(sections[k] for k in order) + "\n", encoding="utf-8")


# The command line: the whole benchmark (`all`, the default) and the sub-commands.


def add_size_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=sorted(SCALES), default="county")
    parser.add_argument("--plans", type=int, help="override the scale's number of plans")
    parser.add_argument("--schools", type=int, help="override the scale's number of schools")
    parser.add_argument("--years", type=int, default=3, help="academic years from 2025-26")
    parser.add_argument("--seed", type=int, default=1)


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--url", help="PostgreSQL server (default: $TOPUP_TEST_POSTGRES_URL); the "
                                      "benchmark works in schemas of its own and drops them")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="write every figure as JSON here")
    parser.add_argument("--work", type=Path, help="build in this (new) folder and keep it")
    parser.add_argument("--step-timeout", type=float,
                        help="stop a step (and the benchmark) that runs longer than this many seconds")


def sizes(args: argparse.Namespace) -> tuple[int, int]:
    """Plans and schools: the scale's, or --plans with schools in the scale's proportion."""
    plans, schools = SCALES[args.scale]
    if args.plans:
        plans = args.plans
        schools = args.schools or max(5, round(args.plans * SCALES[args.scale][1] / SCALES[args.scale][0]))
    return plans, args.schools or schools


def backends_for(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list[str], str | None]:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    url = args.url or os.environ.get("TOPUP_TEST_POSTGRES_URL")
    if "postgres" in backends and not url:
        parser.error("PostgreSQL needs --url or $TOPUP_TEST_POSTGRES_URL")
    return backends, url


@contextmanager
def workspace(parser: argparse.ArgumentParser, keep: Path | None) -> Iterator[Path]:
    """The folder a run builds in: --work (new, kept) or a temporary one (removed after)."""
    if keep and keep.exists() and any(keep.iterdir()):
        parser.error(f"{keep} is not empty; choose a new folder")
    temp = None if keep else tempfile.mkdtemp(prefix="topup-bench-")
    work = keep or Path(temp)  # type: ignore[arg-type]
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def generate_la(work: Path, plans: int, schools: int, years: int, seed: int, say: Any) -> Params:
    say(f"generating {plans:,} plans, {schools:,} schools, {years} years ...")
    la = run_step("generate", {"out": str(work / "la"), "plans": plans, "schools": schools,
                               "years": years, "seed": seed}, work)
    say(f"  {la['described']} ({la['seconds']:.1f} s, peak {la['peak_mib']:,.0f} MiB)")
    return la


def say(text: str) -> None:
    print(text, flush=True)


def write_json(path: Path | None, report: Params) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def bench_all(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bench.py [all]", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="sub-commands, each measuring one part more closely (bench.py COMMAND --help):\n"
               + "\n".join(f"  {name:<12} {text}" for name, (_, text) in COMMANDS.items()))
    add_size_options(parser)
    add_backend_options(parser)
    add_run_options(parser)
    parser.add_argument("--markdown", type=Path, help="write the figures into this doc")
    parser.add_argument("--render", type=Path, metavar="FILE.json",
                        help="measure nothing: print (and with --markdown, write) a finished run's JSON")
    parser.add_argument("--note", action="append", default=[],
                        help="a note on the run for the doc (what else the machine was doing, why it "
                             "stopped); repeatable, also with --render")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        child(args.step, args.params, args.result)
        return 0
    STEP_TIMEOUT[0] = args.step_timeout
    if args.render:
        done: Params = json.loads(args.render.read_text())
        if not done.get("backends"):
            parser.error(f"{args.render} has no backend measured in full: {done.get('failed', '')}")
        done.setdefault("targets", targets(done))
        done["notes"] = [*done.get("notes", []), *args.note]
        print("\n".join(lines(done)))
        if args.markdown:
            write_markdown(args.markdown, done)
        return 0

    plans, schools = sizes(args)
    backends, url = backends_for(parser, args)
    with workspace(parser, args.work) as work:
        report: Params = {"complete": False, "notes": args.note, "scale": args.scale, "plans": plans,
                          "schools": schools, "years": args.years, "seed": args.seed, "argv": argv,
                          "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                          "machine": machine(backends, url)}
        la = generate_la(work, plans, schools, args.years, args.seed, say)
        report["generate"] = {k: la[k] for k in ("seconds", "peak_mib", "stats", "described", "files")}
        report["partial"] = {}

        def save() -> None:
            write_json(args.out, report)

        report["backends"] = {}
        try:
            for backend in backends:
                report["partial"][backend] = {}
                report["backends"][backend] = measure_backend(backend, url, la, work, say,
                                                              report["partial"][backend], save)
        except StepFailed as failure:
            report["failed"] = str(failure)
            report["targets"] = targets(report)  # of the backends measured in full
            save()
            say(f"bench.py: {failure}")
            say(f"the figures measured before it are in {args.out}" if args.out else
                "give --out FILE.json to keep the figures measured before a failure")
            return 1
        del report["partial"]  # every figure is in "backends" now
        report["complete"] = True
        if len(backends) == 2:
            report["postgres_vs_sqlite"] = backend_ratios(report["backends"]["sqlite"],
                                                          report["backends"]["postgres"])
        report["targets"] = targets(report)
    say("")
    for line in lines(report):
        say(line)
    write_json(args.out, report)
    if args.markdown:
        write_markdown(args.markdown, report)
        say(f"wrote {args.markdown}")
    return 0


# The sub-commands: each generates the LA as `all` does (or takes a built --ledger), measures
# it on each backend with the steps above, prints its figures and writes them with --out.


def command(name: str, argv: list[str], measure: Any, show: Any, options: Any = None,
            ledger_option: str | None = None) -> int:
    """The frame every sub-command shares: its options, a work folder, the LA generated (not
    with --ledger), ``measure(backend, url, la, work, args)`` on each backend, then
    ``show(report)`` printed and the report written with --out."""
    parser = argparse.ArgumentParser(prog=f"bench.py {name}", description=COMMANDS[name][1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_options(parser)
    add_backend_options(parser)
    add_run_options(parser)
    if ledger_option:
        parser.add_argument("--ledger", help=ledger_option)
    if options:
        options(parser)
    args = parser.parse_args(argv)
    STEP_TIMEOUT[0] = args.step_timeout
    plans, schools = sizes(args)
    given = getattr(args, "ledger", None)
    if given:
        from topup_ledger.storage.store import is_postgres

        backends, url = ["postgres" if is_postgres(given) else "sqlite"], given
    else:
        backends, url = backends_for(parser, args)
    report: Params = {"command": name, "scale": args.scale, "plans": plans, "schools": schools,
                      "years": args.years, "seed": args.seed, "argv": [name, *argv],
                      "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                      "machine": machine(backends, url),
                      "options": {k: v for k, v in vars(args).items() if v is not None}, "backends": {}}
    if given:
        report.update(ledger=given, plans=None, schools=None, years=None, seed=None)
    with workspace(parser, args.work) as work:
        try:
            la = None
            if not given:
                la = generate_la(work, plans, schools, args.years, args.seed, say)
                report["generate"] = {k: la[k] for k in ("seconds", "peak_mib", "stats", "described")}
            for backend in backends:
                report["backends"][backend] = measure(backend, url, la, work, args)
                write_json(args.out, report)
        except StepFailed as failure:
            report["failed"] = str(failure)
            write_json(args.out, report)
            say(f"bench.py {name}: {failure}")
            return 1
    say("")
    for line in [*command_head(report), *show(report)]:
        say(line)
    write_json(args.out, report)
    return 0


def command_head(report: Params) -> list[str]:
    if report.get("ledger"):
        what = f"the ledger at {report['ledger']}"
    else:
        years = f"{report['years']} academic year{'s' if report['years'] > 1 else ''}"
        what = (f"{report['scale']} scale: {report['plans']:,} plans, {report['schools']:,} schools, "
                f"{years}, seed {report['seed']}")
    head = [f"bench.py {report['command']}: {what}; measured {report['measured_at']} on "
            f"{', '.join(report['backends'])}"]
    if report.get("generate"):
        head.append(f"ledger: {report['generate']['described']}")
    return [*head, machine_line(report["machine"]), ""]


@contextmanager
def one_ledger(backend: str, url: str | None, la: Params | None, work: Path, args: argparse.Namespace,
               copy: bool, **replay_options: Any) -> Iterator[tuple[str, list[Params]]]:
    """The ledger a sub-command measures, and the replay's steps: a fresh one on ``backend``
    with the LA replayed into it as `all` does, or --ledger. With ``copy`` (the measurements
    append to it), a SQLite ledger is measured on a copy, so that one kept with --work, or
    given with --ledger, stays as built and measures the same again."""
    folder = work / backend
    folder.mkdir(parents=True, exist_ok=True)

    def measured(location: str) -> str:
        if not copy or backend != "sqlite":
            return location
        shutil.copyfile(location, folder / "measured.sqlite")
        return str(folder / "measured.sqlite")

    if la is None:
        if copy and backend != "sqlite":
            raise SystemExit("--ledger: a SQLite ledger only (the measurements append to a copy of it)")
        yield measured(args.ledger), []
        return
    with fresh_ledgers(backend, url, folder, "ledger") as (ledger,):
        steps = [{"step": what, **figures}
                 for what, _, figures in replay(backend, ledger, la, work, folder / "payments", say,
                                                **replay_options)]
        yield measured(ledger), steps


def imported(steps: list[Params]) -> Params:
    done = [s for s in steps if s["step"] == "import"]
    return {"events": sum(s["events"] for s in done), "seconds": sum(s["seconds"] for s in done)}


# bench.py import (was scripts/bench_import.py)


def measure_import(backend: str, url: str | None, la: Params, work: Path,
                   args: argparse.Namespace) -> Params:
    from topup_ledger.services.generator import KIND_ORDER

    files = [(kind, str(work / "la" / batch["folder"] / f"{kind}.csv"))
             for kind in KIND_ORDER for batch in la["batches"] if kind in batch["kinds"]]
    # Recorded as learned the day before the last run: after every fact in the files.
    when = _at(la["batches"][-1]["run_on"], 16) - timedelta(days=1)
    runs = []
    for n in range(1, args.repeat + 1):
        with fresh_ledgers(backend, url, work / backend / f"import-{n}",
                           "ledger", "append", "bare", "plain") as (ledger, append, bare, plain):
            figures = run_step("import-whole", {
                "files": files, "when": when.isoformat(), "ledger": ledger, "append": append,
                "bare": bare, "plain": plain,
                "library_limit": LIBRARY_PG_LIMIT if backend == "postgres" else None}, work)
        runs.append(figures)
        say(f"  {backend}: import {n} of {args.repeat}: {figures['events']:,} events, recorded in "
            f"{figures['record_seconds']:.2f} s, plain INSERT {figures['plain_seconds']:.2f} s")
    best: Params = {"events": runs[0]["events"], "rows": runs[0]["rows"], "files": len(files),
                    "digest": runs[0]["digest"], "peak_mib": max(r["peak_mib"] for r in runs),
                    "checking": {kind: min(r["checking"][kind] for r in runs)
                                 for kind in runs[0]["checking"]}, "runs": runs}
    for key in ("read_seconds", "checking_seconds", "encode_seconds", "record_seconds",
                "append_seconds", "recorder_seconds", "plain_seconds"):
        values = [r[key] for r in runs if key in r]
        best[key] = min(values) if values else None
    best["whole_seconds"] = best["read_seconds"] + best["checking_seconds"] + best["record_seconds"]
    return best


def show_import(report: Params) -> list[str]:
    rows, ratios = [], []
    for backend, f in report["backends"].items():
        e = f["events"]

        def row(what: str, seconds: float | None, count: int | str = e, peak: str = "",
                backend: str = backend) -> list[str]:
            return [backend, what, f"{count:,}" if isinstance(count, int) else count,
                    "-" if seconds is None else f"{seconds:.3f}",
                    f"{rate(count, seconds):,.0f}" if seconds and isinstance(count, int) else "", peak]

        rows += [row(f"reading the CSV files ({f['files']} files; rows)", f["read_seconds"], f["rows"]),
                 *(row(f"checking: {kind} rows, in memory", seconds, "")
                   for kind, seconds in f["checking"].items()),
                 row("checking every row, in memory", f["checking_seconds"]),
                 row("encoding alone (BulkEncoder)", f["encode_seconds"]),
                 row("recording: EventStore.append_many, one transaction", f["record_seconds"]),
                 row("whole import (read + check + record)", f["whole_seconds"],
                     peak=f"{f['peak_mib']:,.0f}")]
        if f["append_seconds"] is None:
            rows.append(row(f"EventStore.append, recorder.insert_events: not timed beyond "
                            f"{LIBRARY_PG_LIMIT:,} events on PostgreSQL", None))
        else:
            rows += [row("EventStore.append (Application.save): same facts, same bytes",
                         f["append_seconds"]),
                     row("recorder.insert_events, same rows (no encoding)", f["recorder_seconds"])]
        rows.append(row("plain executemany INSERT, same rows (the store's limit)", f["plain_seconds"]))
        plain = f["plain_seconds"]
        ratios += [[backend, "recording / plain INSERT (seconds)", _fmt(f["record_seconds"] / plain),
                    f"<= {IMPORT_RATIO_TARGET}"],
                   [backend, "whole import / plain INSERT (seconds)", _fmt(f["whole_seconds"] / plain),
                    f"<= {IMPORT_RATIO_TARGET}"],
                   [backend, "whole import rate (events/s)", _fmt(rate(e, f["whole_seconds"])),
                    f">= {IMPORT_RATE_TARGET:,}"]]
        if f["append_seconds"] is not None:
            ratios += [[backend, "EventStore.append / plain INSERT (seconds)",
                        _fmt(f["append_seconds"] / plain), "(baseline)"],
                       [backend, "speed-up over the command path: append / append_many",
                        _fmt(f["append_seconds"] / f["record_seconds"]), "(baseline)"],
                       [backend, "speed-up over the command path: (read + check + append) / whole",
                        _fmt((f["read_seconds"] + f["checking_seconds"] + f["append_seconds"])
                             / f["whole_seconds"]), "(baseline)"]]
    found = report["backends"]
    if len(found) == 2:
        s, p = found["sqlite"], found["postgres"]
        ratios += [["postgres/sqlite", "recording: PostgreSQL seconds / SQLite seconds",
                    _fmt(p["record_seconds"] / s["record_seconds"]), f"<= {BACKEND_RATIO_TARGET}"],
                   ["postgres/sqlite", "whole import: PostgreSQL seconds / SQLite seconds",
                    _fmt(p["whole_seconds"] / s["whole_seconds"]), f"<= {BACKEND_RATIO_TARGET}"]]
    out = [f"one import of the whole LA into a fresh ledger, best of {report['options']['repeat']} "
           f"(each in a process of its own); seconds are each figure's best"]
    if len(found) == 2:
        same = found["sqlite"]["digest"] == found["postgres"]["digest"]
        out.append(f"stored rows {'the same' if same else 'DIFFERENT'} on both backends")
    return [*out, "", *table(FIGURE_HEADERS, rows, False), "",
            *table(["backend", "ratio", "figure", "target"], ratios, False)]


def import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=3,
                        help="best of N imports, each into fresh ledgers [3]")


def bench_import(argv: list[str]) -> int:
    return command("import", argv, measure_import, show_import, import_options)


# bench.py payrun (was scripts/bench_payrun.py)


def measure_payrun(backend: str, url: str | None, la: Params, work: Path,
                   args: argparse.Namespace) -> Params:
    from topup_ledger.services.generator import BANDS, BASE_TARIFF

    runs: list[Params] = []
    profile = None
    if args.profile:
        profile = str(args.profile if args.backend != "both" else
                      args.profile.with_name(f"{args.profile.stem}.{backend}{args.profile.suffix}"))
    with one_ledger(backend, url, la, work, args, copy=False, floor=True, phases=True) as (ledger, steps):
        runs += [{"label": step["period"], **step} for step in steps if step["step"] == "pay"]
        last = la["batches"][-1]
        on = date.fromisoformat(last["run_on"])
        year = on.year if on.month >= 4 else on.year - 1
        financial_year = f"{year}-{(year + 1) % 100:02d}"
        # The worst case: the current financial year's tariff revised for every band (all
        # settings), unsettling every plan on a band in the year's terms; its supplementary
        # run, a run with nothing new, then a second revision (profiled with --profile).
        for label, delta, hour in (("tariff+", 12_345, 10), ("again", 0, 11), ("tariff++", 23_456, 12)):
            if delta:
                run_step("revise-tariff", {
                    "location": ledger, "year": financial_year,
                    "bands": {b: pence + delta for b, pence in zip(BANDS, BASE_TARIFF, strict=True)},
                    "reason": f"bench: revision of every band (+{delta})"}, work)
            raw = run_step("raw-read", {"location": ledger}, work)
            figures = run_step("pay", {
                "location": ledger, "period": last["period"], "run_on": last["run_on"],
                "hour": hour, "phases": True, "out": str(work / backend / "payments"),
                **({"profile": profile} if profile and label == "tariff++" else {})}, work)
            figures.update(label=f"{last['period']} {label}", period=last["period"],
                           raw_seconds=raw["seconds"])
            runs.append(figures)
            say(f"  {backend}: paid {figures['label']}: {figures['seconds']:.2f} s")
    return {"runs": runs, "imports": imported(steps), "profile": profile}


def show_payrun(report: Params) -> list[str]:
    from topup_ledger.domain.money import pounds_for_people

    headers = ["backend", "run", "events", "plans", "lines", "read s", "compute s", "record s",
               "run s", "cpu s", "files s", "raw s", "peak MiB", "paid"]
    rows, notes = [], []
    for backend, b in report["backends"].items():
        for r in b["runs"]:
            rows.append([backend, r["label"], f"{r['events']:,}", f"{r['plans']:,}", f"{r['lines']:,}",
                         f"{r['read_seconds']:.2f}", f"{r['compute_seconds']:.2f}",
                         f"{r['record_seconds']:.2f}", f"{r['seconds']:.2f}",
                         f"{r['run_cpu_seconds']:.2f}", f"{r['files_seconds']:.2f}",
                         f"{r['raw_seconds']:.2f}", f"{r['peak_mib']:,.0f}",
                         pounds_for_people(r["total_pence"])])
        notes.append(f"{backend}: the imports took {b['imports']['seconds']:.1f} s in all "
                     f"({b['imports']['events']:,} events)"
                     + (f"; cProfile statistics of the last run in {b['profile']}" if b["profile"] else ""))
    return [*table(headers, rows, False), "",
            "cpu s: the run's CPU seconds, with the processes it shares plans out to; raw s: a plain "
            "SELECT + orjson decode of the whole ledger the run paid from (the floor any run must "
            "read through)", *notes]


def payrun_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the last run here "
                                                     "(FILE.BACKEND.EXT with --backend both)")


def bench_payrun(argv: list[str]) -> int:
    return command("payrun", argv, measure_payrun, show_payrun, payrun_options)


# bench.py projections (was scripts/bench_projections.py)

REVIEWED_PLANS = 10
REVIEWS_FROM = "2026-03-02"  # a date inside the ledger's first two years, before its last run


def measure_projections(backend: str, url: str | None, la: Params | None, work: Path,
                        args: argparse.Namespace) -> Params:
    with one_ledger(backend, url, la, work, args, copy=True) as (ledger, steps):
        plans = la["stats"]["plans"] if la else run_step("describe", {"location": ledger}, work)["plans"]
        # Read once first, so that every read below finds the same caches warm.
        run_step("raw-read", {"location": ledger}, work)
        figures: Params = {"plans": plans}
        for name, step in (("raw_read", "raw-read"), ("library_read", "library-read"),
                           ("pages_read", "pages-read"), ("rebuild", "rebuild")):
            figures[name] = run_step(step, {"location": ledger}, work)
            say(f"  {backend}: {step}: {figures[name]['events']:,} events in "
                f"{figures[name]['seconds']:.2f} s")
        review = run_step("review", {"location": ledger, "count": REVIEWED_PLANS,
                                     "effective": REVIEWS_FROM}, work)
        figures["review"] = {**review, "update": run_step("update", {"location": ledger}, work)}
        # The latest year with a tariff revised (band C, every setting): every plan is looked
        # at again, and the periods overlapping that year are priced again.
        revised = run_step("revise-tariff", {"location": ledger, "year": None, "bands": {"C": 512_345},
                                             "reason": "revised (benchmark)"}, work)
        figures["tariff"] = {**revised, "update": run_step("update", {"location": ledger}, work)}
    if steps:
        figures["imports"] = imported(steps)
    return figures


def _projection_row(backend: str, what: str, events: int | None, seconds: float,
                    cpu: float | None, raw_rate: float | None) -> list[str]:
    """One figure; with no ``raw_rate`` (an update's latency), no rate either."""
    speed = rate(events, seconds) if events and raw_rate is not None else 0.0
    return [backend, what, f"{events:,}" if events else "", f"{seconds:.2f}",
            "" if cpu is None else f"{cpu:.2f}", f"{speed:,.0f}" if speed else "",
            f"{speed / raw_rate:.0%}" if speed and raw_rate else ""]


def show_projections(report: Params) -> list[str]:
    headers = ["backend", "figure", "events", "seconds", "cpu s", "events/s", "of raw"]
    rows, ratios = [], []
    for backend, f in report["backends"].items():
        raw, rb = f["raw_read"], f["rebuild"]
        raw_rate = rate(raw["events"], raw["seconds"])
        for what, step in (("raw read (plain SELECT + orjson decode)", raw),
                           ("library read (notifications + mapper decode)", f["library_read"]),
                           ("stored pages read (StoredPages + mapper decode)", f["pages_read"]),
                           ("rebuild every projection from nothing", rb)):
            rows.append(_projection_row(backend, what, step["events"], step["seconds"],
                                        step["timed_cpu_seconds"], raw_rate))
        review, tariff = f["review"], f["tariff"]
        plans_rate = rate(f["plans"], rb["plans_seconds"])
        rows += [_projection_row(backend, "rebuild: of which folding the events (one process, ledger "
                                          "order)", rb["events"], rb["fold_seconds"], None, raw_rate),
                 _projection_row(backend, f"rebuild: of which working out every plan's rows ("
                                          f"{f['plans']:,} plans, {plans_rate:,.0f} plans/s)", None,
                                 rb["plans_seconds"], None, raw_rate),
                 _projection_row(backend, f"update after {review['plans']} plans' reviews "
                                          f"({review['events']} new events)", review["update"]["events"],
                                 review["update"]["seconds"], review["update"]["timed_cpu_seconds"], None),
                 _projection_row(backend, f"update after a tariff revision of {tariff['year']}",
                                 tariff["update"]["events"], tariff["update"]["seconds"],
                                 tariff["update"]["timed_cpu_seconds"], None)]
        ratios += [[backend, "rebuild: raw read rate / rebuild rate (wall)",
                    _fmt(rb["seconds"] / raw["seconds"]), f"<= {REBUILD_RATIO_TARGET}"],
                   [backend, "rebuild: raw read rate / rebuild rate (CPU, with forked)",
                    _fmt(rb["timed_cpu_seconds"] / raw["timed_cpu_seconds"]), f"<= {REBUILD_RATIO_TARGET}"],
                   [backend, "rebuild: folding the events alone / raw read",
                    _fmt(rb["fold_seconds"] / raw["seconds"]), "(baseline)"]]
    return [*table(headers, rows, False), "",
            "cpu s: CPU seconds of the timed part, with any processes it forked; an update brings "
            "every projection up to date after the new events, as the first projection command "
            "after them does", "",
            *table(["backend", "ratio", "figure", "target"], ratios, False)]


def bench_projections(argv: list[str]) -> int:
    return command("projections", argv, measure_projections, show_projections,
                   ledger_option="measure a copy of this SQLite ledger (e.g. one kept with --work) "
                                 "instead of building one")


# bench.py statements (was scripts/bench_statements.py)


def measure_statements(backend: str, url: str | None, la: Params | None, work: Path,
                       args: argparse.Namespace) -> Params:
    with one_ledger(backend, url, la, work, args, copy=False) as (ledger, steps):
        figures = run_step("statements", {"location": ledger, "pdf_sample": args.pdf_sample,
                                          "out": str(work / backend / "statements")}, work)
    if steps:
        figures["imports"] = imported(steps)
    return figures


def show_statements(report: Params) -> list[str]:
    out = []
    for backend, f in report["backends"].items():
        one, pdf = f["one"], f["pdf"]
        timed = [("one-pass read of the ledger", f["read_seconds"], "")]
        timed += [(f"all {w['statements']} statements ({formats}, {w['lines']:,} lines, with index)",
                   w["seconds"], "") for formats, w in f["write"].items()]
        timed += [("one school's statement on its own", one["seconds"],
                   f" ({one['children']} children, {one['changes']} changes)"),
                  ("PDF: the first of the process (loading fonts)", f["pdf_first_seconds"], ""),
                  (f"PDF: a school, over a sample of {pdf['sample']}", pdf["seconds_each"],
                   f" (all {pdf['schools']} would take about "
                   f"{pdf['seconds_each'] * pdf['schools']:.0f} s)")]
        width = max(len(what) for what, _, _ in timed) + 1
        out += [f"{backend}: {f['events']:,} events, {f['runs']} runs; statements for {f['period']} "
                f"(peak {f['peak_mib']:,.0f} MiB)",
                *(f"  {what + ':':<{width}} {seconds:7.2f} s{more}" for what, seconds, more in timed)]
    return out


def statements_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pdf-sample", type=int, default=20, help="schools to make a PDF for [20]")


def bench_statements(argv: list[str]) -> int:
    return command("statements", argv, measure_statements, show_statements, statements_options,
                   ledger_option="measure this ledger (a file or postgresql:// URL) instead of "
                                 "building one; only read")


COMMANDS: dict[str, tuple[Any, str]] = {
    "all": (bench_all, "the whole benchmark (the default): import, rebuild and payment runs "
                       "against their limits"),
    "import": (bench_import, "the whole LA as one import, split, against the command path, "
                             "the library's insert and a plain INSERT"),
    "payrun": (bench_payrun, "every termly run by phase, against a raw read, then a tariff "
                             "revision's supplementary run"),
    "projections": (bench_projections, "rebuild and its split, the library's and the pages' reads "
                                       "against the raw read, and updates"),
    "statements": (bench_statements, "every school's statement for the last period, one on its "
                                     "own, and PDFs"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]][0](argv[1:])
    return bench_all(argv)


if __name__ == "__main__":
    sys.exit(main())
