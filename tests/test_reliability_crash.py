"""Crash safety (issue 9): a `topup` process SIGKILLed during an import, a payment run or a
projection update leaves the ledger with the whole batch or none of it, and running the same
command again finishes the work exactly once.

Each test kills a real child process (tests/reliability_harness.py) at every named point of
its command (before the append, with the rows inserted but not committed, after the commit;
inside and after each projection transaction; before and after each file is renamed into
place) and at random moments, on SQLite and on PostgreSQL. The ledger afterwards is compared
with one that ran the command once, undisturbed.
"""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

from conftest import new_location
from reliability_support import (
    AUTUMN,
    SCALE,
    batch,
    content,
    count_events,
    import_all,
    record_figure,
    reference_files,
    run_child,
    topup,
)
from topup_ledger.domain import events as ev
from topup_ledger.storage.store import EventStore
from topup_ledger.storage.streams import PAYMENTS_STREAM

KILLED = -signal.SIGKILL


def fresh(backend: str, tmp_path: Path, files: list[Path]) -> str:
    location = new_location(backend, tmp_path)
    topup(location, "init")
    import_all(location, files)
    return location


def random_delays(rng: random.Random, undisturbed: float, count: int) -> list[float]:
    """Moments in the second half of an undisturbed run (the first is mostly start-up)."""
    return [rng.uniform(0.4, 1.0) * undisturbed for _ in range(count)]


def test_import_killed_anywhere_records_the_file_whole_or_not_at_all(
        backend: str, tmp_path: Path, la: Path) -> None:
    plans = batch(la, 1) / "plans.csv"
    reference = fresh(backend, tmp_path, [*reference_files(la), plans])
    expected = content(reference)
    start = fresh(backend, tmp_path, reference_files(la))
    before, file_events = count_events(start), len(expected) - count_events(start)
    rc, _, err, undisturbed = run_child(start, "import", str(plans))
    assert rc == 0, err
    assert content(start) == expected

    rng = random.Random(9)
    trials = [(f"{p}:1", None) for p in ("append:before", "append:inside", "append:after")]
    trials += [("random", delay) for delay in random_delays(rng, undisturbed, SCALE)]
    killed = 0
    for point, delay in trials:
        location = fresh(backend, tmp_path, reference_files(la))
        env = {"TOPUP_TEST_KILL_AT": point} if delay is None else None
        rc, _, err, _ = run_child(location, "import", str(plans), env=env, kill_after=delay)
        assert "Traceback" not in err
        if delay is None:
            assert rc == KILLED, f"{point} was never reached"
        killed += rc == KILLED
        # Whole batch or none: never a part of the file.
        assert count_events(location) - before in (0, file_events), point
        if point == "append:after:1":
            assert count_events(location) - before == file_events
        if point in ("append:before:1", "append:inside:1"):
            assert count_events(location) == before
        again = topup(location, "import", str(plans), "--json")
        assert content(location) == expected, point
        report = json.loads(again.output)
        assert report["recorded"] + report["already_recorded"] == report["rows"]
        third = json.loads(topup(location, "import", str(plans), "--json").output)
        assert (third["recorded"], third["already_recorded"]) == (0, third["rows"])
        assert content(location) == expected
    record_figure("crash-import", backend=backend, kill_points=killed, trials=len(trials))


PAY_POINTS = ["append:before:1", "append:inside:1", "append:after:1", "file:before:1",
              "file:after:2", "file:before:4", "append:before:2", "append:inside:2",
              "append:after:2"]


def payment_runs(location: str) -> list[ev.PaymentRunRecorded]:
    store = EventStore(location)
    try:
        runs = [r.fact for r in store.stream_recorded(PAYMENTS_STREAM)]
        for run in runs:
            assert isinstance(run, ev.PaymentRunRecorded)
            paid = store.stream_recorded(f"run:{run.run_id}")
            # A run is recorded with all of its schools' payments, or not at all.
            assert len(paid) == run.schools
            assert sum(line.amount for p in paid for line in p.fact.lines) == run.total
        return runs  # type: ignore[return-value]
    finally:
        store.close()


def check_paid_equals_due(location: str, out: Path) -> dict[str, int]:
    report = json.loads(topup(location, "reconcile", "paid-vs-due", "--period", AUTUMN,
                              "--out", str(out), "--json").output)
    totals = report["totals"]
    assert totals["unsettled"] == 0
    assert totals["paid_pence"] == totals["due_pence"] > 0
    # to another folder, the released run's files can only be copies (one release per run)
    again = json.loads(topup(location, "pay", AUTUMN, "--out", str(out / "again"), "--copy",
                             "--json").output)
    assert again["recorded"] is False  # nothing left to pay: paid equals due for every plan
    return totals


def test_payment_run_killed_anywhere_pays_exactly_once(backend: str, tmp_path: Path,
                                                       la: Path) -> None:
    files = [*reference_files(la), batch(la, 1) / "plans.csv"]
    reference = fresh(backend, tmp_path, files)
    rc, out, err, undisturbed = run_child(reference, "pay", AUTUMN, "--out",
                                          str(tmp_path / "ref-pay"), "--json")
    assert rc == 0, err
    expected_total = json.loads(out)["total_pence"]
    expected = check_paid_equals_due(reference, tmp_path / "ref-reports")
    assert expected["paid_pence"] == expected_total

    rng = random.Random(3)
    trials: list[tuple[str, float | None]] = [(p, None) for p in PAY_POINTS]
    trials += [("random", d) for d in random_delays(rng, undisturbed, SCALE)]
    killed = 0
    for i, (point, delay) in enumerate(trials):
        location = fresh(backend, tmp_path, files)
        folder = tmp_path / f"pay-{i}"
        env = {"TOPUP_TEST_KILL_AT": point} if delay is None else None
        rc, _, err, _ = run_child(location, "pay", AUTUMN, "--out", str(folder), env=env,
                                  kill_after=delay)
        assert "Traceback" not in err
        if delay is None:
            assert rc == KILLED, f"{point} was never reached"
        killed += rc == KILLED
        runs = payment_runs(location)
        assert len(runs) <= 1
        if point.startswith(("append:after:1", "file:", "append:before:2", "append:inside:2",
                             "append:after:2")):
            assert len(runs) == 1, point
        if point in ("append:before:1", "append:inside:1"):
            assert runs == []
        topup(location, "pay", AUTUMN, "--out", str(folder))
        runs = payment_runs(location)
        assert [(r.run_id, r.total) for r in runs] == [("2025-26-autumn-r1", expected_total)]
        assert check_paid_equals_due(location, tmp_path / f"reports-{i}") == expected
        assert not list(folder.glob(".*.tmp")), "a half-written file was left behind"
        assert sorted(p.suffix for p in folder.iterdir()) == [".csv", ".csv", ".parquet", ".parquet"]
        verified = topup(location, "verify", "--files", str(folder), "--json")
        assert json.loads(verified.output)["ok"] is True
    record_figure("crash-pay", backend=backend, kill_points=killed, trials=len(trials))


def funding_rows(location: str, projections: Path, out: Path) -> list[dict[str, object]]:
    result = topup(location, "funding", "--out", str(out), "--json",
                   env={"TOPUP_PROJECTIONS": str(projections)})
    return [{k: v for k, v in row.items() if k != "known_at"}
            for row in json.loads(result.output)["rows"]]


def test_projection_update_killed_anywhere_equals_a_fresh_rebuild(
        backend: str, tmp_path: Path, la: Path) -> None:
    location = fresh(backend, tmp_path, [*reference_files(la), batch(la, 1) / "plans.csv"])
    topup(location, "pay", AUTUMN, "--out", str(tmp_path / "paid"))
    import_all(location, sorted(batch(la, 2).glob("*.csv"), key=lambda p: p.name != "tariffs.csv"))
    expected = funding_rows(location, tmp_path / "reference.projections.sqlite", tmp_path / "r")
    assert expected and any(r["paid_pence"] for r in expected)

    rng = random.Random(5)
    killed, undisturbed, i = 0, 0.0, 0
    # CI tries a spread of the transactions; a larger scale tries every one.
    spread = range(1, 40) if SCALE > 1 else (1, 2, 3, 5, 8, 13, 21)
    for command, limit in (("rebuild", 40), ("funding", 2 * SCALE)):
        args = ["rebuild"] if command == "rebuild" else ["funding", "--out", str(tmp_path / "f")]
        for point in (f"projection:{m}:{n}" for n in spread if n <= limit
                      for m in ("inside", "after")):
            i += 1
            projections = tmp_path / f"p{i}.projections.sqlite"
            env = {"TOPUP_PROJECTIONS": str(projections), "TOPUP_TEST_KILL_AT": point}
            rc, _, err, seconds = run_child(location, *args, env=env)
            assert "Traceback" not in err
            if rc == 0:  # past the command's last transaction
                undisturbed = max(undisturbed, seconds)
                break
            assert rc == KILLED, err
            killed += 1
            # The same command again completes the update; its result is a fresh rebuild's.
            if command == "rebuild":
                topup(location, "rebuild", env={"TOPUP_PROJECTIONS": str(projections)})
            assert funding_rows(location, projections, tmp_path / f"g{i}") == expected, point
    for delay in random_delays(rng, undisturbed or 1.0, SCALE):
        projections = tmp_path / f"r{delay}.projections.sqlite"
        env = {"TOPUP_PROJECTIONS": str(projections)}
        rc, _, err, _ = run_child(location, "rebuild", env=env, kill_after=delay)
        assert "Traceback" not in err
        killed += rc == KILLED
        topup(location, "rebuild", env=env)
        assert funding_rows(location, projections, tmp_path / "rr") == expected
    record_figure("crash-projection", backend=backend, kill_points=killed)
