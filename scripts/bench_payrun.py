"""Benchmark: one termly payment run at county scale, against the raw read of the same ledger.

    python scripts/bench_payrun.py [--plans 8000] [--schools 450] [--runs 4]

Builds a synthetic ledger (plans on hours and bands, band changes, moves, with payment runs
in between), then for each run prints its seconds beside the time a plain SELECT + JSON
decode of every stored event takes on the same file in the same process: the floor any run
must read through. Figures, not assertions: CI runs it small as a smoke test.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson

from topup_ledger.domain import events as ev
from topup_ledger.domain.money import pounds_for_people
from topup_ledger.ledger import Ledger
from topup_ledger.payrun import pay
from topup_ledger.store import EventStore, Recorded

PERIODS = ["2025-26/autumn", "2025-26/spring", "2025-26/summer", "2026-27/autumn",
           "2026-27/spring", "2026-27/summer"]


def build(store: EventStore, plans: int, schools: int, seed: int) -> int:
    rnd = random.Random(seed)
    now = datetime(2025, 8, 1, tzinfo=UTC)
    urns = [f"{100000 + i}" for i in range(schools)]
    batch = [Recorded(f"school:{u}", 1, now, ev.SchoolAdded(
        u, f"School {u}", rnd.choice(["mainstream", "mainstream", "special", "resourced"])))
        for u in urns]
    for year in ("2025-26", "2026-27", "2027-28"):
        bands = tuple((b, 150_000 + i * 100_000 + (5_000 if year > "2025-26" else 0))
                      for i, b in enumerate("ABCDEFG"))
        batch.append(Recorded(f"tariff:{year}", 1, now, ev.TariffSet(year, bands)))
        batch.append(Recorded(f"rate:{year}", 1, now, ev.HourlyRateSet(year, 1181, Decimal(38), 600_000)))
    for i in range(plans):
        ref, version = f"P{i:06d}", 1
        start = date(2025, 9, 1) + timedelta(days=rnd.randrange(0, 60))
        on_hours = rnd.random() < 0.5
        hours = Decimal(rnd.choice(["10", "15", "20", "25", "32.5"])) if on_hours else None
        batch.append(Recorded(f"plan:{ref}", version, now, ev.PlanIssued(
            ref, f"X{i:06d}", rnd.choice(urns), start, "ehcp", hours,
            None if on_hours else rnd.choice("ABCDEFG"))))
        if not on_hours and rnd.random() < 0.5:
            version += 1
            batch.append(Recorded(f"plan:{ref}", version, now, ev.BandChanged(
                ref, date(2025, 11, 1) + timedelta(days=rnd.randrange(0, 100)),
                rnd.choice("ABCDEFG"), "annual-review")))
        if rnd.random() < 0.1:
            version += 1
            batch.append(Recorded(f"plan:{ref}", version, now, ev.PlacementMoved(
                ref, date(2026, 1, 5), rnd.choice(urns))))
    store.append(batch)
    return len(batch)


def later_changes(store: EventStore, ledger: Ledger, plans: int, seed: int) -> None:
    """Backdated band changes on 2% of the band plans, as recorded between runs."""
    rnd = random.Random(seed)
    for i in rnd.sample(range(plans), plans // 50):
        plan = ledger.plan(f"P{i:06d}")
        state = plan.state_on(date(2025, 10, 1))
        if state is None or state.basis != "band" or plan.ceased_from:
            continue
        last = max(getattr(f.fact, "effective", plan.start) for f in plan.facts)
        effective = max(last + timedelta(days=1), date(2025, 10, 1))
        band = rnd.choice([b for b in "ABCDEFG" if b != (plan.state_on(effective) or state).band])
        ledger.change_band(plan.ref, band, effective, "annual-review")


def raw_read_seconds(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with sqlite3.connect(path) as conn:
        rows = 0
        for (state,) in conn.execute("SELECT state FROM stored_events ORDER BY rowid"):
            orjson.loads(state)
            rows += 1
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=8000)
    parser.add_argument("--schools", type=int, default=450)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite"
        store = EventStore(str(path), create=True)
        ledger = Ledger(store)
        events = build(store, args.plans, args.schools, args.seed)
        print(f"ledger: {args.plans} plans, {args.schools} schools, {events} events")
        print(f"{'run':<18} {'events':>8} {'run s':>7} {'raw read s':>11} {'ratio':>6} {'paid £':>16}")
        for n, period in enumerate(PERIODS[: args.runs]):
            if n:
                later_changes(store, ledger, args.plans, args.seed + n)
            raw, rows = raw_read_seconds(path)
            start = time.perf_counter()
            result = pay(ledger, period)
            took = time.perf_counter() - start
            print(f"{result.run_id:<18} {rows:>8} {took:>7.2f} {raw:>11.3f} {took / raw:>6.1f} "
                  f"{pounds_for_people(result.total):>16}")
        store.close()


if __name__ == "__main__":
    main()
