"""Benchmark: rebuilding the projections against the raw read of the same ledger.

    python scripts/bench_projections.py [--plans 8000] [--schools 450] [--years 2]
                                        [--source auto|generator|synthetic] [--keep DIR [--reuse]]
                                        [--backend sqlite|postgres] [--postgres-url URL]

Builds a ledger (with ``topup_ledger.services.generator`` and the importer when they are present,
replaying a synthetic LA batch by batch with its termly payment runs; otherwise with a small
synthetic builder of its own), copies it to a fresh PostgreSQL schema with ``--backend
postgres`` (ids included), then, in one run on the same ledger:

- raw: a plain SELECT of every stored event (``sqlite3`` or ``psycopg``) and an ``orjson``
  decode of each state (the floor any fold must read through);
- library: ``EventStore.notifications`` (the library's recorder) and the mapper's decode;
- stored pages: ``StoredPages`` (what the projections read through) and the decode;
- rebuild: every projection from nothing (fold + recompute of every plan), and its split;
- update: the incremental update after a handful of new events.

Prints events, plans, events per second of each and the ratio raw rate / rebuild rate. Figures, not
assertions.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson

from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError
from topup_ledger.projections import base
from topup_ledger.projections.db import ProjectionDB
from topup_ledger.projections.runner import folds_for, rebuild, view
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.pages import PAGE, StoredPages
from topup_ledger.storage.store import EventStore, Recorded, is_postgres, postgres_schema


class BatchClock:
    """Recorded times for a replay: each batch at its own day, a millisecond per reading."""

    def __init__(self) -> None:
        self.now = datetime(2025, 8, 1, 9, tzinfo=UTC)

    def at(self, day: date) -> None:
        self.now = max(self.now, datetime(day.year, day.month, day.day, 8, tzinfo=UTC))

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def build_with_generator(ledger: Ledger, clock: BatchClock, plans: int, schools: int, years: int,
                         folder: Path, say: Callable[[str], None]) -> None:
    from topup_ledger.services.generator import generate
    from topup_ledger.services.importer import import_file

    la = generate(plans=plans, schools=schools, years=years, seed=1)
    la.write(folder)
    say(f"generator: {la.describe()}")
    for batch in la.batches:
        clock.at(batch.run.on - timedelta(days=1))
        for kind, _ in batch.files():
            result = import_file(ledger, folder / batch.folder / f"{kind}.csv", kind)
            if result.rejected:
                say(f"  {batch.folder}/{kind}.csv: {result.rejected} rows rejected")
        clock.at(batch.run.on)
        started = time.perf_counter()
        run = pay(ledger, batch.run.period)
        say(f"  paid {batch.run.period}: {len(run.schools)} schools "
            f"in {time.perf_counter() - started:.1f} s")


def build_synthetic(ledger: Ledger, clock: BatchClock, plans: int, schools: int, years: int,
                    say: Callable[[str], None]) -> None:
    """Schools, tariffs, rates, plans on hours and bands, reviews, transfers, moves, and a
    payment run each term, appended in batches through the store (the ledger's commands
    validate one fact at a time, which is slower than needed to build a benchmark)."""
    rnd = random.Random(1)
    store = ledger.store
    versions: dict[str, int] = {}

    def rec(stream: str, fact: ev.Fact) -> Recorded:
        versions[stream] = versions.get(stream, 0) + 1
        return Recorded(stream, versions[stream], clock(), fact)

    urns = [f"{100000 + i}" for i in range(schools)]
    batch = [rec(f"school:{u}", ev.SchoolAdded(u, f"School {u}", rnd.choice(
        ["mainstream", "mainstream", "special", "resourced"]))) for u in urns]
    for y in range(2025, 2025 + years + 1):
        year = f"{y}-{(y + 1) % 100:02d}"
        bands = tuple((b, 150_000 + i * 100_000 + (y - 2025) * 5_000) for i, b in enumerate("ABCDEFG"))
        batch.append(rec(f"tariff:{year}", ev.TariffSet(year, bands)))
        hourly = 1181 + (y - 2025) * 30
        batch.append(rec(f"rate:{year}", ev.HourlyRateSet(year, hourly, Decimal(38), 600_000)))
    on_hours: dict[str, Decimal] = {}
    for i in range(plans):
        ref = f"P{i:06d}"
        hours = Decimal(rnd.choice(["10", "15", "20", "25", "32.5"])) if rnd.random() < 0.5 else None
        if hours is not None:
            on_hours[ref] = hours
        batch.append(rec(f"plan:{ref}", ev.PlanIssued(
            ref, f"X{i:06d}", rnd.choice(urns), date(2025, 9, 1) + timedelta(days=rnd.randrange(0, 60)),
            "ehcp", hours, None if hours is not None else rnd.choice("ABCDEFG"))))
    store.append(batch)
    terms = [(f"{y}-{(y + 1) % 100:02d}", term) for y in range(2025, 2025 + years)
             for term in ("autumn", "spring", "summer")]
    starts = {"autumn": (0, 9, 1), "spring": (1, 1, 1), "summer": (1, 4, 1)}
    for n, (year, term) in enumerate(terms):
        offset, month, day = starts[term]
        begins = date(int(year[:4]) + offset, month, day)
        if n:
            clock.at(begins - timedelta(days=20))
            changes = []
            for ref in rnd.sample(sorted(versions), k=len(versions) // 3):
                if not ref.startswith("plan:") or versions[ref] > 3:
                    continue
                plan = ref[5:]
                when = begins - timedelta(days=rnd.randrange(20, 90))  # often after a paid period
                if plan in on_hours:
                    band = rnd.choice("BCD")
                    prior = max(0, int(on_hours.pop(plan) * 1181 * 38) - 600_000)
                    changes.append(rec(ref, ev.TransferredToBand(plan, when, band, prior,
                                                                 when + timedelta(days=300))))
                elif rnd.random() < 0.3:
                    changes.append(rec(ref, ev.PlacementMoved(plan, when, rnd.choice(urns))))
                else:
                    changes.append(rec(ref, ev.BandChanged(plan, when, rnd.choice("ABCDEFG"),
                                                           "annual-review")))
            store.append(changes)
        clock.at(begins)
        started = time.perf_counter()
        run = pay(ledger, f"{year}/{term}")
        say(f"  paid {year}/{term}: {len(run.schools)} schools in {time.perf_counter() - started:.1f} s")


def raw_read(store: EventStore) -> tuple[int, float, float]:
    """A plain SELECT of every stored event and an orjson decode of each state: the floor
    any fold must read through. CPU and wall seconds."""
    started, wall = time.process_time(), time.perf_counter()
    count = 0
    if is_postgres(store.location):
        import psycopg
        from psycopg import sql

        table = sql.Identifier(postgres_schema(store.location) or "public",
                               store.recorder.events_table_name)  # type: ignore[attr-defined]
        with psycopg.connect(store.location.split("?")[0]) as conn, conn.cursor(binary=True) as cursor:
            cursor.execute(sql.SQL("SELECT notification_id, originator_id, originator_version, topic, "
                                   "state FROM {} ORDER BY notification_id").format(table))
            for _id, _stream, _version, _topic, state in cursor:
                orjson.loads(state)
                count += 1
    else:
        conn = sqlite3.connect(store.location)
        for _rowid, _stream, _version, _topic, state in conn.execute(
                "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
                "ORDER BY rowid"):
            orjson.loads(state)
            count += 1
        conn.close()
    return count, time.process_time() - started, time.perf_counter() - wall


def library_read(store: EventStore) -> tuple[int, float, float]:
    """The library's recorder (a Notification per event) and the mapper's decode."""
    started, wall = time.process_time(), time.perf_counter()
    decode = store.mapper.decode_state
    count = 0
    for n in store.notifications(page=5_000):
        decode(n.state)
        count += 1
    return count, time.process_time() - started, time.perf_counter() - wall


def pages_read(store: EventStore) -> tuple[int, float, float]:
    """What the projections read through: plain rows in pages, and the mapper's decode."""
    started, wall = time.process_time(), time.perf_counter()
    decode = store.mapper.decode_state
    count = 0
    reader = StoredPages(store)
    for rows in reader.pages(size=PAGE):
        for row in rows:
            decode(row.state)
        count += len(rows)
    reader.close()
    return count, time.process_time() - started, time.perf_counter() - wall


def copy_to_postgres(source: Path, url: str) -> str:
    """The same stored events, ids included, in a fresh schema of a PostgreSQL database."""
    import psycopg
    from psycopg import sql

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    location = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    created = EventStore(location, create=True)
    name = created.recorder.events_table_name  # type: ignore[attr-defined]
    created.close()
    table = sql.Identifier(schema, name)
    rows = sqlite3.connect(source).execute(
        "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
        "ORDER BY rowid").fetchall()
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy(sql.SQL("COPY {} (notification_id, originator_id, originator_version, topic, "
                                 "state) FROM STDIN").format(table)) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'notification_id'), %s)").format(
            sql.Literal(f"{schema}.{name}")), (rows[-1][0],))
    return location


def drop_schema(url: str, location: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(
            sql.Identifier(postgres_schema(location) or "")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plans", type=int, default=8000)
    parser.add_argument("--schools", type=int, default=450)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--source", choices=("auto", "generator", "synthetic"), default="auto")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite",
                        help="Where the measured ledger lives (postgres: a copy of the built "
                             "SQLite ledger in a fresh schema of --postgres-url).")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "TOPUP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:25432/topup_test"))
    parser.add_argument("--keep", type=Path, help="Build the ledger in this folder and keep it.")
    parser.add_argument("--reuse", action="store_true",
                        help="With --keep: measure the ledger already there instead of building one.")
    args = parser.parse_args()
    source = args.source
    if source == "auto":
        found = importlib.util.find_spec("topup_ledger.services.generator") and importlib.util.find_spec(
            "topup_ledger.services.importer")
        source = "generator" if found else "synthetic"

    with tempfile.TemporaryDirectory(prefix="bench-projections-") as temp:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "ledger.sqlite"
        reuse = args.reuse and args.keep is not None and path.exists()
        for stale in [*folder.glob("ledger*.sqlite*"), *folder.glob("measured*.sqlite*")]:
            if not (reuse and stale == path):
                stale.unlink()
        started = time.perf_counter()
        if reuse:
            print(f"measuring the ledger in {path}")
        else:
            store = EventStore(str(path), create=True)
            clock = BatchClock()
            ledger = Ledger(store, clock=clock)
            print(f"building a ledger ({source}): {args.plans:,} plans, {args.schools:,} schools, "
                  f"{args.years} years")
            if source == "generator":
                build_with_generator(ledger, clock, args.plans, args.schools, args.years,
                                     folder / "la", print)
            else:
                build_synthetic(ledger, clock, args.plans, args.schools, args.years, print)
            store.close()
        conn = sqlite3.connect(path)
        events = conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
        plans = conn.execute("SELECT COUNT(DISTINCT originator_id) FROM stored_events "
                             "WHERE originator_id LIKE 'plan:%'").fetchone()[0]
        payments = conn.execute("SELECT COUNT(*), SUM(LENGTH(state)) FROM stored_events "
                                "WHERE topic = 'payment.school_paid'").fetchone()
        size = conn.execute("SELECT SUM(LENGTH(state)) FROM stored_events").fetchone()[0]
        conn.close()
        print(f"ready in {time.perf_counter() - started:.0f} s: {events:,} events ({size / 1e6:.1f} MB "
              f"of state; {payments[0]:,} school payments holding {payments[1] / 1e6:.1f} MB), "
              f"{plans:,} plans")
        # Measured on a copy: the update figures append events, and a kept ledger must stay
        # as built so that runs with --reuse measure the same thing.
        location = str(folder / "measured.sqlite")
        shutil.copyfile(path, location)
        if args.backend == "postgres":
            location = copy_to_postgres(path, args.postgres_url)
            print(f"copied to PostgreSQL schema {postgres_schema(location)}")
        try:
            measure(location, folder, plans)
        finally:
            if args.backend == "postgres":
                drop_schema(args.postgres_url, location)


def measure(location: str, folder: Path, plans: int) -> None:
    store = EventStore(location)
    store.max_position()  # open the connection outside the timings
    raw_read(store)  # and read once so that every read below finds the same caches warm
    raw_n, raw_s, raw_wall = raw_read(store)
    lib_n, lib_s, lib_wall = library_read(store)
    pages_n, pages_s, pages_wall = pages_read(store)
    timings = {"refresh": 0.0}
    original = base.PlanFold.refresh

    def timed_refresh(self: base.PlanFold, db: ProjectionDB, decoder: base.Decoder) -> int:
        began = time.process_time()
        try:
            return original(self, db, decoder)
        finally:
            timings["refresh"] += time.process_time() - began

    base.PlanFold.refresh = timed_refresh  # type: ignore[method-assign]
    projection = folder / f"{'pg' if is_postgres(location) else 'measured'}.projections.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{projection}{suffix}").unlink(missing_ok=True)
    db = ProjectionDB(projection)
    started, wall = time.process_time(), time.perf_counter()
    rebuilt = rebuild(store, db, folds_for([]))
    rebuild_s, rebuild_wall = time.process_time() - started, time.perf_counter() - wall
    rebuild_refresh = timings["refresh"]
    db.close()

    # An update after a few new events: one review recorded for ten plans.
    clock = BatchClock()
    clock.now = datetime.fromisoformat(store.mapper.decode_state(
        store.recorder.select_notifications(store.max_position(), 1)[0].state)["at"])
    ledger = Ledger(store, clock=clock)
    refs = sorted({r.fact.plan for _, r in store.recorded(types=("plan.issued",))})  # type: ignore[attr-defined]
    changed = 0
    for ref in refs:
        if changed == 10:
            break
        for change in (lambda r: ledger.change_band(r, "C", date(2026, 3, 2), "annual-review"),
                       lambda r: ledger.change_hours(r, Decimal("12.5"), date(2026, 3, 2), "review")):
            try:
                change(ref)
            except RuleError:
                continue
            changed += 1
            break
    timings["refresh"] = 0.0
    started, wall = time.process_time(), time.perf_counter()
    with view(store, ["funding", "hours-vs-band"], path=projection) as v:
        update_position = v.position
    update_s, update_wall = time.process_time() - started, time.perf_counter() - wall
    update_refresh = timings["refresh"]

    # A tariff revision of the latest financial year with a tariff: every plan is looked at
    # again, and the periods overlapping that year are priced again.
    tariffs = sorted(r.fact.year for _, r in store.recorded(types=("tariff.set",)))  # type: ignore[attr-defined]
    revised_year = tariffs[-1] if tariffs else "2026-27"
    ledger.set_tariff(revised_year, {"C": 512_345}, reason="revised (benchmark)")
    started, wall = time.process_time(), time.perf_counter()
    with view(store, ["funding", "hours-vs-band"], path=projection):
        pass
    revision_s, revision_wall = time.process_time() - started, time.perf_counter() - wall
    base.PlanFold.refresh = original  # type: ignore[method-assign]
    store.close()

    raw_rate = raw_n / raw_s
    rate = rebuilt / rebuild_s
    fold_rate = rebuilt / (rebuild_s - rebuild_refresh)
    backend = "PostgreSQL" if is_postgres(location) else "SQLite"
    print(f"{backend}: {raw_n:,} events, {plans:,} plans. CPU seconds of this process (robust to "
          "other load on the machine; wall in brackets):")
    print(f"raw read (plain SELECT + orjson): {raw_s:.2f} s ({raw_wall:.2f}) = {raw_rate:,.0f} events/s")
    print(f"library read (notifications + decode): {lib_s:.2f} s ({lib_wall:.2f}) = "
          f"{lib_n / lib_s:,.0f} events/s ({lib_n / lib_s / raw_rate:.0%} of raw)")
    print(f"stored pages read (+ decode): {pages_s:.2f} s ({pages_wall:.2f}) = "
          f"{pages_n / pages_s:,.0f} events/s ({pages_n / pages_s / raw_rate:.0%} of raw)")
    print(f"rebuild (every projection): {rebuilt:,} events in {rebuild_s:.2f} s ({rebuild_wall:.2f}) = "
          f"{rate:,.0f} events/s")
    print(f"  fold: {rebuild_s - rebuild_refresh:.2f} s = {fold_rate:,.0f} events/s "
          f"({fold_rate / raw_rate:.0%} of raw); working out every plan's rows: {rebuild_refresh:.2f} s "
          f"= {plans / rebuild_refresh:,.0f} plans/s")
    print(f"ratio raw rate / rebuild rate (rebuild time / raw time; target <= 2.0): "
          f"{raw_rate / rate:.2f} (wall {rebuild_wall / raw_wall:.2f})")
    print(f"update after {changed} new events (to position {update_position:,}): {update_s:.2f} s "
          f"({update_wall:.2f}; recomputing the plans they touched {update_refresh:.2f} s)")
    print(f"update after a tariff revision of {revised_year}: {revision_s:.2f} s ({revision_wall:.2f})")


if __name__ == "__main__":
    main()
