"""Benchmark: `topup import` of a synthetic county into a fresh SQLite ledger, against the
plain-SQL limit of the same store.

    python scripts/bench_import.py [--plans 8000] [--schools 450] [--seed 1]

Generates an LA (scripts/generate.py's data), then imports every batch of it in order
(schools, rates, tariffs, plans, then each later batch of plans and changes) through the
importer, one atomic append per batch, timing reading + checking the rows apart from the
store's append. Then it copies the very same stored rows (id, version, type, state bytes)
into an identical table in a fresh SQLite file with one plain ``executemany`` INSERT in one
transaction: the most any import into this store could do. It prints both, and the ratio.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from topup_ledger.generator import generate
from topup_ledger.importer import Import
from topup_ledger.io.import_csv import read_table
from topup_ledger.ledger import Ledger
from topup_ledger.store import EventStore


def rate(events: int, seconds: float) -> str:
    return f"{events / seconds:>10,.0f}" if seconds else f"{'-':>10}"


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
        location = work / "ledger.sqlite"
        store = EventStore(str(location), create=True)
        ledger = Ledger(store, clock=lambda: datetime(2025, 8, 31, 16, tzinfo=UTC))
        rows: list[tuple[str, int, float, float, float]] = []  # (label, events, stage, encode, append)
        try:
            for batch in la.batches:
                t0 = time.perf_counter()
                job = Import(ledger)
                for kind, _ in batch.files():
                    result = job.stage_table(read_table(work / "input" / batch.folder / f"{kind}.csv"), kind)
                    assert not result.rejected, result.rejects()[:3]
                t1 = time.perf_counter()
                for recorded in job.staging.staged:  # what the append spends encoding, measured apart
                    store.mapper.to_stored_event(recorded)
                t2 = time.perf_counter()
                job.commit()
                t3 = time.perf_counter()
                rows.append((batch.folder, len(job.staging.staged), t1 - t0, t2 - t1, t3 - t2))
        finally:
            store.close()

        # The same stored rows, inserted by plain SQL into an identical table.
        source = sqlite3.connect(location)
        ddl = [sql for (sql,) in source.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL")]
        stored = source.execute("SELECT originator_id, originator_version, topic, state "
                                "FROM stored_events ORDER BY rowid").fetchall()
        source.close()
        target = sqlite3.connect(work / "plain.sqlite", isolation_level=None)
        for statement in ddl:
            target.execute(statement)
        t0 = time.perf_counter()
        target.execute("BEGIN")
        target.executemany("INSERT INTO stored_events (originator_id, originator_version, topic, "
                           "state) VALUES (?, ?, ?, ?)", stored)
        target.execute("COMMIT")
        plain = time.perf_counter() - t0
        target.close()

    events = sum(r[1] for r in rows)
    stage = sum(r[2] for r in rows)
    append = sum(r[4] for r in rows)
    encode = sum(r[3] for r in rows)
    total = stage + append
    print(f"import of a synthetic LA into a fresh SQLite ledger: {args.plans:,} plans, "
          f"{args.schools:,} schools, seed {args.seed}, {len(rows)} batches")
    print(f"{'batch':<34} {'events':>7} {'read+check s':>12} {'append s':>9} {'events/s':>10}")
    for label, n, s, _, a in rows:
        print(f"{label:<34} {n:>7,} {s:>12.2f} {a:>9.2f} {rate(n, s + a)}")
    print(f"{'whole import':<34} {events:>7,} {stage:>12.2f} {append:>9.2f} {rate(events, total)}")
    print()
    print(f"reading + checking rows (in memory):   {rate(events, stage)} events/s")
    print(f"EventStore.append (one per batch):      {rate(events, append)} events/s "
          f"(encoding facts alone: {rate(events, encode).strip()} events/s)")
    print(f"whole import:                           {rate(events, total)} events/s")
    print(f"plain executemany INSERT, same rows:    {rate(events, plain)} events/s  (the store's limit)")
    print(f"ratio import / plain INSERT:            {plain / total:.3f}"
          f"  (append alone / plain INSERT: {plain / append:.3f})")


if __name__ == "__main__":
    main()
