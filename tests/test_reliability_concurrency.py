"""Concurrency (issue 9): several processes recording plan changes while others run the same
payment at once, on PostgreSQL and on SQLite (where the file lock serialises the writes).

Nothing is lost (every change asked for is in the ledger exactly once), nothing is paid
twice (paid equals due afterwards, and one more run finds nothing to pay), and every
conflict is reported as one (exit code 3, "run it again") and succeeds when run again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from conftest import new_location
from reliability_support import (
    AUTUMN,
    HARNESS,
    SCALE,
    batch,
    child_env,
    import_all,
    record_figure,
    reference_files,
    spawn,
    topup,
)
from topup_ledger.domain import events as ev
from topup_ledger.storage.store import EventStore
from topup_ledger.storage.streams import PAYMENTS_STREAM


@pytest.fixture
def paying_ledger(backend: str, tmp_path: Path, la: Path) -> str:
    location = new_location(backend, tmp_path)
    topup(location, "init")
    import_all(location, [*reference_files(la), batch(la, 1) / "plans.csv"])
    return location


def hours_plans(la: Path) -> list[str]:
    rows = (batch(la, 1) / "plans.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [r.split(",")[0] for r in rows if r.split(",")[4]]


def hours_changes(location: str) -> list[tuple[str, date, str, str]]:
    store = EventStore(location)
    try:
        return sorted((r.fact.plan, r.fact.effective, str(r.fact.hours), r.fact.reason)  # type: ignore[attr-defined]
                      for _, r in store.recorded(types=(ev.HoursChanged.TYPE,)))
    finally:
        store.close()


def runs(location: str) -> list[ev.PaymentRunRecorded]:
    store = EventStore(location)
    try:
        return [r.fact for r in store.stream_recorded(PAYMENTS_STREAM)]  # type: ignore[misc]
    finally:
        store.close()


def check_conflict_attempt(attempt: dict[str, object]) -> None:
    assert attempt["exception"] is None
    assert attempt["exit"] == 3, attempt
    output = str(attempt["output"])
    assert "conflict" in output and "run it again" in output and "Traceback" not in output


def test_writers_and_payment_runs_at_once_lose_nothing_and_pay_once(
        backend: str, paying_ledger: str, tmp_path: Path, la: Path) -> None:
    location = paying_ledger
    plans = hours_plans(la)[:3]  # few plans, so the writers collide on them
    writers, per_writer = 3 + SCALE, 4 * SCALE
    wanted = []
    workers = []
    for w in range(writers):
        commands = []
        for k in range(per_writer):
            plan = plans[(w + k) % len(plans)]
            day = date(2025, 9, 15) + timedelta(days=w * per_writer + k)
            hours = f"{10 + (w + k) % 20}.5"
            reason = f"writer {w} change {k}"
            commands.append(["plan", "hours", plan, "--hours", hours, "--from", day.isoformat(),
                             "--reason", reason])
            wanted.append((plan, day, hours, reason))
        workers.append(commands)
    for payer in range(2):
        # a payer that finds nothing new writes copies of the run that stands (one release
        # per run: --copy); one that records a run releases its files
        workers.append([["pay", AUTUMN, "--out", str(tmp_path / f"payer{payer}-{i}"), "--copy"]
                        for i in range(2)])
    children = []
    for n, commands in enumerate(workers):
        script = tmp_path / f"commands-{n}.jsonl"
        script.write_text("".join(json.dumps(c) + "\n" for c in commands), encoding="utf-8")
        children.append((subprocess.Popen(
            [sys.executable, str(HARNESS), "worker", location, str(script),
             str(tmp_path / f"results-{n}.jsonl")], env=child_env(), stderr=subprocess.PIPE,
            text=True), tmp_path / f"results-{n}.jsonl"))
    conflicts = 0
    for child, results in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        for line in results.read_text(encoding="utf-8").splitlines():
            done = json.loads(line)
            *retried, last = done["attempts"]
            for attempt in retried:
                check_conflict_attempt(attempt)
            conflicts += len(retried)
            assert last["exception"] is None and last["exit"] == 0, (done["args"], last)
    # No lost update, no duplicate: every change asked for is recorded exactly once.
    assert hours_changes(location) == sorted(wanted)
    # Runs are ordered one after another; none pays what another already paid.
    recorded = runs(location)
    assert [r.sequence for r in recorded] == list(range(1, len(recorded) + 1))
    final = json.loads(topup(location, "pay", AUTUMN, "--out", str(tmp_path / "final"),
                             "--copy", "--json").output)
    if final["recorded"]:  # changes recorded after the last run: one supplementary run
        again = json.loads(topup(location, "pay", AUTUMN, "--out", str(tmp_path / "final2"),
                                 "--copy", "--json").output)
        assert again["recorded"] is False
    totals = json.loads(topup(location, "reconcile", "paid-vs-due", "--period", AUTUMN, "--out",
                              str(tmp_path / "reports"), "--json").output)["totals"]
    raced = changes_recorded_while_a_run_was_worked_out(location)
    record_figure("concurrency", backend=backend, writers=writers, payers=2,
                  commands=len(wanted) + 4, conflicts=conflicts, runs=len(runs(location)),
                  raced_past_a_run=len(raced))
    assert totals["unsettled"] == 0 and totals["paid_pence"] == totals["due_pence"] > 0


def changes_recorded_while_a_run_was_worked_out(location: str) -> list[str]:
    """Plan changes whose position lies between the position a run was computed from (its
    seal's) and the run's own: what the next run must pay."""
    store = EventStore(location)
    try:
        windows, changes = [], []
        sealed_from = 0
        for position, r in store.recorded():
            if isinstance(r.fact, ev.Sealed) and r.fact.reason.startswith("payment run"):
                sealed_from = r.fact.position
            elif isinstance(r.fact, ev.PaymentRunRecorded):
                windows.append((sealed_from, position))
            elif isinstance(r.fact, ev.HoursChanged):
                changes.append((position, r.id))
        return [i for p, i in changes if any(a < p < b for a, b in windows)]
    finally:
        store.close()


def paused(location: str, tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    """A child that stops just before its append until ``go`` exists."""
    go = tmp_path / "go"
    child = spawn(location, *args, env={"TOPUP_TEST_PAUSE_AT": "append:before:1",
                                        "TOPUP_TEST_PAUSE_FILE": str(go)})
    deadline = time.monotonic() + 60
    while not go.with_suffix(".waiting").exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return child, go


def test_a_change_that_lost_the_race_is_a_conflict_and_succeeds_again(
        paying_ledger: str, tmp_path: Path, la: Path) -> None:
    plan = hours_plans(la)[0]
    mine = ["plan", "hours", plan, "--hours", "11", "--from", "2025-10-01", "--reason", "review"]
    child, go = paused(paying_ledger, tmp_path, *mine)
    topup(paying_ledger, "plan", "hours", plan, "--hours", "12", "--from", "2025-10-02",
          "--reason", "the other officer")
    go.touch()
    out, err = child.communicate(timeout=60)
    assert child.returncode == 3, err
    assert err.startswith("error: conflict: another writer changed plan:") and "run it again" in err
    assert "Traceback" not in err and out == ""
    assert [c[1] for c in hours_changes(paying_ledger)] == [date(2025, 10, 2)]
    topup(paying_ledger, *mine)
    assert [c[1] for c in hours_changes(paying_ledger)] == [date(2025, 10, 1), date(2025, 10, 2)]


def test_a_payment_run_that_lost_the_race_pays_nothing_twice(
        paying_ledger: str, tmp_path: Path) -> None:
    child, go = paused(paying_ledger, tmp_path, "pay", AUTUMN, "--out", str(tmp_path / "late"))
    first = json.loads(topup(paying_ledger, "pay", AUTUMN, "--out", str(tmp_path / "first"),
                             "--json").output)
    go.touch()
    _, err = child.communicate(timeout=60)
    assert child.returncode == 3, err
    assert "conflict" in err and "run it again" in err and "Traceback" not in err
    assert not (tmp_path / "late").exists()  # nothing written for a run never recorded
    again = json.loads(topup(paying_ledger, "pay", AUTUMN, "--out", str(tmp_path / "late"),
                             "--copy", "--json").output)
    assert again["recorded"] is False and again["run_id"] == first["run_id"]
    assert [(r.run_id, r.total) for r in runs(paying_ledger)] == [
        (first["run_id"], first["total_pence"])]


def test_a_change_recorded_while_a_run_is_worked_out_is_paid_by_the_next_run(
        paying_ledger: str, tmp_path: Path, la: Path) -> None:
    plan = hours_plans(la)[0]
    child, go = paused(paying_ledger, tmp_path, "pay", AUTUMN, "--out", str(tmp_path / "first"))
    topup(paying_ledger, "plan", "hours", plan, "--hours", "30", "--from", "2025-10-01",
          "--reason", "recorded during the run")
    go.touch()
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err  # the run was worked out before the change: it stands
    supplementary = json.loads(topup(paying_ledger, "pay", AUTUMN, "--out",
                                     str(tmp_path / "next"), "--json").output)
    assert supplementary["recorded"] is True, "the change was never paid"
    totals = json.loads(topup(paying_ledger, "reconcile", "paid-vs-due", "--period", AUTUMN,
                              "--out", str(tmp_path / "reports"), "--json").output)["totals"]
    assert totals["unsettled"] == 0 and totals["paid_pence"] == totals["due_pence"]
