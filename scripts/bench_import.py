"""Benchmark: importing a synthetic county into a fresh SQLite ledger, against the plain-SQL
limit of the same store.

    python scripts/bench_import.py [--plans 8000] [--schools 450] [--seed 1]

Generates an LA (scripts/generate.py's data) and imports all of it — schools, rates,
tariffs, every plan, then every change, in the order the LA learned them — as ONE import
into a fresh SQLite ledger: every row read, checked by the ledger's own rules in memory,
and the whole county recorded by one atomic EventStore.append. It times reading + checking
(per kind of file) apart from the append, and the append's encoding of facts apart from the
rest. Then it inserts the very same stored rows (id, version, type, state bytes) into a
fresh ledger with the library's recorder alone, and into an identical table with one plain
``executemany`` INSERT in one transaction: the most any import into this store could do.
It prints all of them and the ratios. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from eventsourcing.persistence import StoredEvent

from topup_ledger.generator import KIND_ORDER, generate
from topup_ledger.importer import Import
from topup_ledger.io.import_csv import read_table
from topup_ledger.ledger import Ledger
from topup_ledger.store import EventStore


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:>9,.0f}/s" if seconds else f"{'-':>11}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=8000)
    parser.add_argument("--schools", type=int, default=450)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        la = generate(plans=args.plans, schools=args.schools, seed=args.seed)
        la.write(work / "input")
        files = [(kind, work / "input" / batch.folder / f"{kind}.csv")
                 for kind in KIND_ORDER for batch in la.batches if batch.rows[kind]]
        location = work / "ledger.sqlite"
        store = EventStore(str(location), create=True)
        checked: dict[str, list[float]] = {kind: [0, 0.0] for kind in KIND_ORDER}
        try:
            ledger = Ledger(store, clock=lambda: datetime(2028, 3, 31, 16, tzinfo=UTC))
            t0 = time.perf_counter()
            job = Import(ledger)  # reads the (empty) ledger once
            for kind, path in files:
                t = time.perf_counter()
                result = job.stage_table(read_table(path), kind)
                assert not result.rejected, result.rejects()[:3]
                checked[kind][0] += result.rows
                checked[kind][1] += time.perf_counter() - t
            staged = job.staging.staged
            t1 = time.perf_counter()
            for recorded in staged:  # what the append spends encoding, measured apart
                store.mapper.to_stored_event(recorded)
            t2 = time.perf_counter()
            job.commit()
            t3 = time.perf_counter()
        finally:
            store.close()
        events, check, encode, append = len(staged), t1 - t0, t2 - t1, t3 - t2

        source = sqlite3.connect(location)
        ddl = [sql for (sql,) in source.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL")]
        stored = source.execute("SELECT originator_id, originator_version, topic, state "
                                "FROM stored_events ORDER BY rowid").fetchall()
        source.close()
        assert len(stored) == events

        fresh = EventStore(str(work / "recorder.sqlite"), create=True)
        try:
            rows = [StoredEvent(*row) for row in stored]
            t = time.perf_counter()
            fresh.recorder.insert_events(rows)
            recorder = time.perf_counter() - t
        finally:
            fresh.close()

        target = sqlite3.connect(work / "plain.sqlite", isolation_level=None)
        for statement in ddl:
            target.execute(statement)
        t = time.perf_counter()
        target.execute("BEGIN")
        target.executemany("INSERT INTO stored_events (originator_id, originator_version, topic, "
                           "state) VALUES (?, ?, ?, ?)", stored)
        target.execute("COMMIT")
        plain = time.perf_counter() - t
        target.close()

    total = check + append
    print(f"one import of a synthetic county into a fresh SQLite ledger: {args.plans:,} plans, "
          f"{args.schools:,} schools, seed {args.seed}: {sum(c[0] for c in checked.values()):,.0f} "
          f"rows in {len(files)} files, {events:,} events, one EventStore.append")
    for kind, (count, seconds) in checked.items():
        if count:
            rows_per_second = per_second(int(count), seconds)
            print(f"  checking {kind:<8} {count:>7,.0f} rows {seconds:6.2f}s {rows_per_second} rows")
    print(f"reading + checking every row, in memory:  {check:6.2f}s {per_second(events, check)} events")
    print(f"EventStore.append of all of them:         {append:6.2f}s {per_second(events, append)} events"
          f"  (encoding the facts alone: {per_second(events, encode).strip()})")
    print(f"whole import:                             {total:6.2f}s {per_second(events, total)} events")
    print(f"recorder.insert_events, same rows:        {recorder:6.2f}s {per_second(events, recorder)} events"
          "  (the library's insert without encoding or Application.save)")
    print(f"plain executemany INSERT, same rows:      {plain:6.2f}s {per_second(events, plain)} events"
          "  (the store's limit)")
    print(f"ratio whole import / plain INSERT: {plain / total:.3f}; append / plain INSERT: "
          f"{plain / append:.3f}")


if __name__ == "__main__":
    main()
