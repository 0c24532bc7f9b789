"""Work shared out over forked processes comes back whole, in order, and fails loudly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reliability_support import record_figure
from topup_ledger.engine.cores import shared_out, split


def test_split_keeps_every_item_once_in_order_in_nearly_equal_runs() -> None:
    items = list(range(10))
    assert split(items, 3) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert split(items, 1) == [items]
    assert split([1, 2], 5) == [[1], [2]]  # never an empty share
    assert split([], 2) == [[]]


def test_each_share_is_worked_out_in_a_process_of_its_own_and_returned_in_order() -> None:
    shares = [[1, 2], [3], [4, 5, 6]]
    results = shared_out(shares, lambda share, forked: (os.getpid(), forked, sum(share)))
    assert [(forked, total) for _, forked, total in results] == [
        (False, 3), (True, 3), (True, 15)]
    assert results[0][0] == os.getpid()  # the first share is this process's
    assert len({pid for pid, _, _ in results}) == 3


def test_a_failure_in_another_process_is_raised_here_with_its_message() -> None:
    def work(share: list[int], forked: bool) -> int:
        if share == [2]:
            raise ValueError("plan P2 cannot be read")
        return share[0]

    with pytest.raises(ValueError, match="plan P2 cannot be read"):
        shared_out([[1], [2]], work)


def test_a_process_that_dies_without_a_result_is_reported() -> None:
    def work(share: list[int], forked: bool) -> int:
        if share == [2]:
            os._exit(3)
        return share[0]

    with pytest.raises(RuntimeError, match="exit code 3"):
        shared_out([[1], [2]], work)


ORPHAN_SCRIPT = """
import os, sys, time
from topup_ledger.engine.cores import shared_out

def work(share, forked):
    if forked:
        with open(sys.argv[1] + f".{os.getpid()}", "w"):
            pass
    time.sleep(600)

shared_out([[1], [2], [3]], work)
"""


def test_workers_end_within_seconds_when_their_parent_is_killed(tmp_path: Path) -> None:
    """Issue 21: a SIGKILLed parent (a killed `topup rebuild` or `pay`) leaves no worker behind
    holding the ledger open."""
    marker = tmp_path / "worker"
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT, str(marker)])
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("worker.*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = [int(p.suffix[1:]) for p in tmp_path.glob("worker.*")]
        assert len(workers) == 2
    finally:
        parent.kill()
        parent.wait()
    started = time.monotonic()
    while any(alive(pid) for pid in workers) and time.monotonic() - started < 10:
        time.sleep(0.05)
    ended = time.monotonic() - started
    record_figure("orphans after SIGKILL of the parent", workers=len(workers),
                  alive=sum(alive(pid) for pid in workers), seconds=round(ended, 2))
    assert not any(alive(pid) for pid in workers), f"workers {workers} outlived their parent"
    assert ended < 5


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False
