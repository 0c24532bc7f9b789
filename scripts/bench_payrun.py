"""Benchmark: termly payment runs over a synthetic LA's whole history (issues 3 and 8).

    python scripts/bench_payrun.py [--plans 8000] [--schools 450] [--years 3] [--seed 1]
                                   [--backend sqlite|postgres] [--profile FILE]

Generates an LA with ``topup_ledger.services.generator`` (opening plans, later issues, backdated band
changes, transfers, moves, cessations, corrections, each year's rates and tariffs published
in February and revised in December), imports each batch with the importer, and makes every
termly run as ``topup pay`` does. For each run it prints the events and plans in the ledger,
the lines paid, and the seconds spent reading the ledger, computing the lines and recording
them, beside a plain SELECT + JSON decode of every stored event (the floor any run must read
through). Then the worst case: a revision of the current financial year's tariff (every
plan on a band is unsettled) and its supplementary run, and a repeat run with nothing new.

``--backend postgres`` uses TOPUP_TEST_POSTGRES_URL (a fresh schema, dropped at the end).
For a national estimate run it larger (``--plans 80000 --schools 2750``) and scale up. ``--profile FILE``
writes cProfile statistics of the last timed run. ``cpu s`` is this process's CPU time for
the run: on a shared machine it moves less than the wall-clock figures. Figures, not
assertions.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import orjson

from topup_ledger.domain.money import pounds_for_people
from topup_ledger.engine import collector
from topup_ledger.engine.run import work_out
from topup_ledger.io.import_csv import read_table
from topup_ledger.services.generator import BANDS, BASE_TARIFF, generate
from topup_ledger.services.importer import Import
from topup_ledger.services.payment_run import record_run
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.known import read_reference
from topup_ledger.storage.plan_streams import StoredPlans
from topup_ledger.storage.store import EventStore, is_postgres


def raw_read_seconds(store: EventStore) -> float:
    """A plain SELECT of every stored state and an orjson decode of each."""
    start = time.perf_counter()
    if is_postgres(store.location):
        import psycopg

        env = store.app.env  # type: ignore[attr-defined]
        schema = env.get("POSTGRES_SCHEMA", "public")
        with psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                             port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"]) as conn, \
                conn.cursor(name="raw") as cur:
            cur.itersize = 5000
            cur.execute(f'SELECT state FROM "{schema}".topup_events ORDER BY notification_id')
            for (state,) in cur:
                orjson.loads(state)
    else:
        with sqlite3.connect(store.location) as conn:
            for (state,) in conn.execute("SELECT state FROM stored_events ORDER BY rowid"):
                orjson.loads(state)
    return time.perf_counter() - start


def timed_run(ledger: Ledger, period: str, profile: cProfile.Profile | None = None
              ) -> tuple[dict[str, float], int, int, int]:
    """One run as ``payrun.pay`` makes it, timed by phase: (seconds, plans, lines, total)."""
    seconds: dict[str, float] = {}
    if profile:
        profile.enable()
    cpu = time.process_time()
    t0 = time.perf_counter()
    store = ledger.store
    with collector.paused():
        known = read_reference(store, store.max_position())
        plans = StoredPlans(store, known.position)
        # compute: the window, the payments compared with, and each plan's facts as it
        # comes to it, exactly as pay() works them out
        t1 = time.perf_counter()
        try:
            sequence, lines = work_out(known, period, plans, store)
        finally:
            plans.close()
    t2 = time.perf_counter()
    with lines:
        result = record_run(ledger, known, period, sequence, lines)
    t3 = time.perf_counter()
    if profile:
        profile.disable()
    seconds.update(read=t1 - t0, compute=t2 - t1, record=t3 - t2, total=t3 - t0,
                   cpu=time.process_time() - cpu)
    lines = sum(s.lines for s in result.schools)
    return seconds, plans.count(), lines, result.total


def location_for(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return str(folder / "bench.sqlite")
    url = os.environ.get("TOPUP_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("--backend postgres needs TOPUP_TEST_POSTGRES_URL")
    return f"{url}{'&' if '?' in url else '?'}schema=bench_{uuid.uuid4().hex[:10]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=8000)
    parser.add_argument("--schools", type=int, default=450)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the last run here")
    args = parser.parse_args()
    la = generate(plans=args.plans, schools=args.schools, years=args.years, seed=args.seed)
    print(la.describe())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        la.write(folder / "input")
        store = EventStore(location_for(args.backend, folder), create=True)
        now = [datetime(2025, 8, 1, tzinfo=UTC)]
        ledger = Ledger(store, clock=lambda: now[0])
        print(f"{args.backend}: {'run':<20} {'events':>8} {'plans':>6} {'lines':>6} {'read s':>7} "
              f"{'compute s':>9} {'record s':>8} {'run s':>6} {'cpu s':>6} {'raw s':>6} {'paid £':>16}")

        def report(label: str, profile: cProfile.Profile | None = None) -> None:
            raw = raw_read_seconds(store)
            events = store.max_position()
            s, plans, lines, total = timed_run(ledger, period, profile)
            print(f"{args.backend}: {label:<20} {events:>8} {plans:>6} {lines:>6} {s['read']:>7.2f} "
                  f"{s['compute']:>9.2f} {s['record']:>8.2f} {s['total']:>6.2f} {s['cpu']:>6.2f} {raw:>6.2f} "
                  f"{pounds_for_people(total):>16}", flush=True)

        imported = 0.0
        for batch in la.batches:
            t0 = time.perf_counter()
            now[0] = datetime.combine(batch.run.on - timedelta(days=1), clock_time(16), tzinfo=UTC)
            job = Import(ledger)
            for kind, _ in batch.files():
                job.stage_table(read_table(folder / "input" / batch.folder / f"{kind}.csv"), kind)
            job.commit()
            imported += time.perf_counter() - t0
            now[0] = datetime.combine(batch.run.on, clock_time(9), tzinfo=UTC)
            period = batch.run.period
            report(period)
        # The worst case: the current financial year's tariff revised for every band (all
        # settings), which changes the due of every plan on a band in the year's terms.
        year = f"{batch.run.on.year if batch.run.on.month >= 4 else batch.run.on.year - 1}"
        fy = f"{year}-{(int(year) + 1) % 100:02d}"
        now[0] += timedelta(hours=1)
        ledger.set_tariff(fy, {b: p + 12_345 for b, p in zip(BANDS, BASE_TARIFF, strict=True)},
                          reason="bench: revision of every band")
        profile = cProfile.Profile() if args.profile else None
        report(f"{period} tariff+", None)
        now[0] += timedelta(hours=1)
        report(f"{period} again", None)
        # One more revision, profiled if asked: the case issue 8 calls the worst.
        now[0] += timedelta(hours=1)
        ledger.set_tariff(fy, {b: p + 23_456 for b, p in zip(BANDS, BASE_TARIFF, strict=True)},
                          reason="bench: second revision")
        report(f"{period} tariff++", profile)
        if profile and args.profile:
            profile.dump_stats(str(args.profile))
        print(f"imports took {imported:.1f} s in all; {store.max_position()} events at the end "
              f"(day {date.today()})")
        store.close()
        if args.backend == "postgres":
            drop_schema(store)


def drop_schema(store: EventStore) -> None:
    """The bench's own schema goes when it is done (the server is shared with the tests)."""
    import psycopg

    env = store.app.env  # type: ignore[attr-defined]
    with psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                         port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                         autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{env["POSTGRES_SCHEMA"]}" CASCADE')


if __name__ == "__main__":
    main()
