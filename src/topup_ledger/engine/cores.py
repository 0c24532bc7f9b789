"""Work shared out over this machine's cores: one share here, each other in a forked child.

A payment run's work, and a projection's recomputing of dirty plans, is the same small
computation for every plan, so it splits cleanly by plan; Python runs it on one core per
process. A forked child starts with everything the parent has read (the terms, the window,
the payments) without copying or sending it, and sends back only its result. Where fork is
missing, or there is one core, it all runs here.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import TypeVar

Share = TypeVar("Share")
Result = TypeVar("Result")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def split(items: Sequence[Share], parts: int) -> list[Sequence[Share]]:
    """``items`` in ``parts`` contiguous runs of (nearly) equal length, in order."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    runs, start = [], 0
    for part in range(parts):
        end = start + size + (part < extra)
        runs.append(items[start:end])
        start = end
    return runs


# Below this many plans a share, a forked process costs more than it saves (measured in
# docs/benchmarks.md): the payment run and the projections share plans out alike.
PLANS_PER_CORE = 2_000


def shares_of(items: Sequence[Share], per_core: int | None = None) -> list[Sequence[Share]]:
    """``items`` split over the cores, in order, with at least ``per_core`` items a share
    (``PLANS_PER_CORE`` unless given; fewer shares, down to one, when there are fewer items:
    forking has its cost)."""
    per_core = PLANS_PER_CORE if per_core is None else per_core
    return split(items, min(cores(), max(1, len(items) // per_core)))


def shared_out(shares: Sequence[Share], work: Callable[[Share, bool], Result]) -> list[Result]:
    """``[work(share, forked) for share in shares]``, the shares after the first worked out
    at the same time in forked children (``forked`` True: a child must open connections of
    its own). An exception in any share is raised here."""
    if len(shares) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [work(share, False) for share in shares]
    context = multiprocessing.get_context("fork")
    children = []
    done = False
    try:
        for share in shares[1:]:
            receiving, sending = context.Pipe(duplex=False)
            child = context.Process(target=_send, args=(work, share, sending, os.getpid()),
                                    daemon=True)
            child.start()
            sending.close()
            children.append((child, receiving))
        results = [work(shares[0], False)]
        for child, receiving in children:
            try:
                outcome, value = receiving.recv()
            except EOFError:
                child.join()
                raise RuntimeError(f"a worker process ended without a result "
                                   f"(exit code {child.exitcode})") from None
            if outcome == "raised":
                raise value
            results.append(value)
        done = True
        return results
    finally:
        for child, receiving in children:
            receiving.close()
            if not done:  # this process failed first: the others' work is not wanted
                child.terminate()
            child.join()


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """End this forked worker when its parent dies, however it dies (even SIGKILL), rather
    than let it hold the ledger open as an orphan: the kernel's parent-death signal on
    Linux, and everywhere a thread that watches for the parent to be gone."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _send(work: Callable[[Share, bool], Result], share: Share,
          sending: Connection, parent: int | None = None) -> None:
    if parent is not None:
        die_with_parent(parent)
    try:
        sending.send(("done", work(share, True)))
    except BaseException as error:
        sending.send(("raised", error))
    finally:
        sending.close()
