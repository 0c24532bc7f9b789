"""Issue 8's benchmark: import, rebuild and a termly payment run, each against its limit.

    python scripts/bench.py --scale county|national [--backend sqlite|postgres|both] [--url URL]
                            [--plans N] [--schools N] [--years N] [--seed N]
                            [--out FILE.json] [--markdown docs/benchmarks.md] [--work DIR]

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
It prints every figure with its events and plans and PASS/MISS against issue 8's targets:
figures, not assertions. ``--markdown`` writes the figures, with the machine they were
measured on, into the doc (a section per scale and size; the doc is generated, never edited).
"""

from __future__ import annotations

import argparse
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
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
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
    """One termly run, as ``topup pay`` makes it: the run, then its files and their digests."""
    from topup_ledger.services.payment_run import pay, write_and_record
    from topup_ledger.services.recording import Ledger
    from topup_ledger.storage.store import EventStore

    store = EventStore(p["location"])
    when = _at(p["run_on"], 9)
    ledger = Ledger(store, clock=lambda: when)
    try:
        events = store.max_position()
        started = time.perf_counter()
        result = pay(ledger, p["period"])
        seconds = time.perf_counter() - started
        figures = {"seconds": seconds, "events": events, "run_id": result.run_id,
                   "schools": len(result.schools), "total_pence": result.total,
                   "lines": sum(s.lines for s in result.schools)}
        write_and_record(ledger, result.run_id, Path(p["out"]))
        figures["files_seconds"] = time.perf_counter() - started - seconds
    finally:
        store.close()
    return figures


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
        started = time.perf_counter()
        db = ProjectionDB(projections_path(location))
        try:
            events = bring(store, db, folds_for([]), progress=progress)
        finally:
            db.close()
        seconds = time.perf_counter() - started
    finally:
        store.close()
    fold_seconds = folded[0] - started if folded[0] else 0.0
    return {"seconds": seconds, "events": events, "fold_seconds": fold_seconds,
            "plans_seconds": seconds - fold_seconds}


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
        started = time.perf_counter()
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
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "events": count}


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
            insert = (f"INSERT INTO {target_table} (originator_id, originator_version, topic, "
                      "state) VALUES (?, ?, ?, ?)")
        else:
            select = (f"SELECT originator_id, originator_version, topic, state FROM {table} "
                      "WHERE notification_id BETWEEN %s AND %s ORDER BY notification_id")
            insert = (f"INSERT INTO {target_table} (originator_id, originator_version, topic, "
                      "state) VALUES (%s, %s, %s, %s)")
        for first, last, timing in ranges:
            rows = source.execute(select, (first, last)).fetchall()
            if kind == "postgres":
                source.commit()
            started = time.perf_counter()
            if kind == "sqlite":
                target.execute("BEGIN")
                target.executemany(insert, rows)
                target.execute("COMMIT")
            else:
                with target.transaction(), target.cursor() as cursor:
                    cursor.executemany(insert, rows)
            if timing:
                seconds += time.perf_counter() - started
                events += len(rows)
            del rows
    return {"seconds": seconds, "events": events}


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


STEPS = {"generate": step_generate, "import": step_import, "pay": step_pay,
         "rebuild": step_rebuild, "raw-read": step_raw_read, "plain-insert": step_plain_insert,
         "write-floor": step_write_floor, "update": step_update}


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


def measure_backend(backend: str, url: str | None, la: Params, work: Path,
                    say: Any, partial: Params, save: Any) -> Params:
    """Replay the LA into a fresh ledger on ``backend`` and measure every step; each step's
    figures also go into ``partial`` as they come (``save`` writes them: a national run
    takes hours, and what it measured before an interruption is still worth having)."""
    from topup_ledger.storage.store import EventStore

    folder = work / backend
    folder.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        ledger, plain = str(folder / "ledger.sqlite"), str(folder / "plain.sqlite")
    else:
        assert url
        tag = f"bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        ledger, plain = with_schema(url, f"{tag}_ledger"), with_schema(url, f"{tag}_plain")
        os.environ["TOPUP_PROJECTIONS"] = str(folder / "ledger.projections.sqlite")
    try:
        for location in (ledger, plain):  # `topup init`: the library's own tables, twice
            EventStore(location, create=True).close()
        imports: list[Params] = []
        runs: list[Params] = []
        partial.update(imports=imports, runs=runs)
        for number, batch in enumerate(la["batches"], 1):
            figures = run_step("import", {"location": ledger, "kinds": batch["kinds"],
                                          "folder": str(work / "la" / batch["folder"]),
                                          "run_on": batch["run_on"]}, work)
            imports.append(figures)
            save()
            say(f"  {backend}: imported {batch['folder']}: {figures['events']:,} events in "
                f"{figures['seconds']:.2f} s")
            if number == len(la["batches"]):
                # The projections as a finance officer last looked at them: before the run.
                figures = partial["before_run"] = run_step("update", {"location": ledger}, work)
                say(f"  {backend}: projections before the last run (from nothing): "
                    f"{figures['seconds']:.2f} s")
            figures = run_step("pay", {"location": ledger, "period": batch["period"],
                                       "run_on": batch["run_on"],
                                       "out": str(folder / "payments")}, work)
            figures["period"] = batch["period"]
            runs.append(figures)
            save()
            say(f"  {backend}: paid {batch['period']} ({figures['events']:,} events in the "
                f"ledger): {figures['seconds']:.2f} s, files {figures['files_seconds']:.2f} s")
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
    finally:
        if backend == "postgres":
            os.environ.pop("TOPUP_PROJECTIONS", None)
            for location in (ledger, plain):
                drop_schema(location)
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
    machine_line = (f"machine: {m['cpu']}, {m['cores']} cores, {m.get('ram_gib', '?')} GiB RAM; "
                    f"{m['os']}; Python {m['python']}; SQLite {m['sqlite']}"
                    + (f"; PostgreSQL {m['postgresql']}" if "postgresql" in m else "")
                    + f"; eventsourcing {m['eventsourcing']}"
                    + (f"; code at {m['commit']}" if "commit" in m else ""))
    out = [f"- {line}" for line in [*head, machine_line]] if markdown else [*head, machine_line]
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
from the same run (the ratios), not with other runs. Targets are issue 8's.

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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="county")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--url", help="PostgreSQL server (default: $TOPUP_TEST_POSTGRES_URL); the "
                                      "benchmark works in schemas of its own and drops them")
    parser.add_argument("--plans", type=int, help="override the scale's number of plans")
    parser.add_argument("--schools", type=int, help="override the scale's number of schools")
    parser.add_argument("--years", type=int, default=3, help="academic years from 2025-26")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write every figure as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the figures into this doc")
    parser.add_argument("--work", type=Path, help="build in this (new) folder and keep it")
    parser.add_argument("--step-timeout", type=float,
                        help="stop a step (and the benchmark) that runs longer than this many seconds")
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

    plans, schools = SCALES[args.scale]
    if args.plans:
        plans = args.plans
        schools = args.schools or max(5, round(args.plans * SCALES[args.scale][1] / SCALES[args.scale][0]))
    schools = args.schools or schools
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    url = args.url or os.environ.get("TOPUP_TEST_POSTGRES_URL")
    if "postgres" in backends and not url:
        parser.error("PostgreSQL needs --url or $TOPUP_TEST_POSTGRES_URL")
    if args.work and args.work.exists() and any(args.work.iterdir()):
        parser.error(f"{args.work} is not empty; choose a new folder")

    def say(text: str) -> None:
        print(text, flush=True)

    temp = None if args.work else tempfile.mkdtemp(prefix="topup-bench-")
    work = args.work or Path(temp)  # type: ignore[arg-type]
    work.mkdir(parents=True, exist_ok=True)
    try:
        report: Params = {"complete": False, "notes": args.note, "scale": args.scale, "plans": plans,
                          "schools": schools, "years": args.years, "seed": args.seed, "argv": argv,
                          "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                          "machine": machine(backends, url)}
        say(f"generating {plans:,} plans, {schools:,} schools, {args.years} years ...")
        la = run_step("generate", {"out": str(work / "la"), "plans": plans, "schools": schools,
                                   "years": args.years, "seed": args.seed}, work)
        report["generate"] = {k: la[k] for k in ("seconds", "peak_mib", "stats", "described", "files")}
        say(f"  {la['described']} ({la['seconds']:.1f} s, peak {la['peak_mib']:,.0f} MiB)")
        report["partial"] = {}

        def save() -> None:
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")

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
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    say("")
    for line in lines(report):
        say(line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if args.markdown:
        write_markdown(args.markdown, report)
        say(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
