"""Test-only: run `topup` in a child process that dies (SIGKILL) or waits at a named point.

Nothing of this is in the product. The child patches the product's own seams before it runs
the command line, so a test can kill it exactly where a crash hurts most:

    TOPUP_TEST_KILL_AT=append:inside:1   python tests/reliability_harness.py pay 2025-26/autumn
    TOPUP_TEST_PAUSE_AT=append:before:1 TOPUP_TEST_PAUSE_FILE=/tmp/go  python ... plan hours ...

A point is ``seam:moment:N``, the Nth time the seam is reached (counting from 1):

- ``append:before``  before an ``EventStore.append`` or ``append_many`` (worked out, nothing sent)
- ``append:inside``  the rows are inserted but the transaction is not committed
- ``append:after``   the append has committed
- ``projection:inside`` / ``projection:after``  a projection transaction's body has run but
  not committed / has committed
- ``file:before`` / ``file:after``  a written file is about to be / has been renamed into place

``worker`` mode runs many commands in one process (for the concurrency tests) and retries a
command that reports a conflict, writing what happened as JSON lines.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SEAMS = ("append", "projection", "file")
NAMED_POINTS = [f"{seam}:{moment}" for seam, moments in (
    ("append", ("before", "inside", "after")), ("projection", ("inside", "after")),
    ("file", ("before", "after"))) for moment in moments]

_reached: Counter[str] = Counter()


def _parse(spec: str | None) -> tuple[str, str, int] | None:
    if not spec:
        return None
    seam, moment, nth = spec.split(":")
    return seam, moment, int(nth)


KILL = _parse(os.environ.get("TOPUP_TEST_KILL_AT"))
PAUSE = _parse(os.environ.get("TOPUP_TEST_PAUSE_AT"))


def _at(seam: str, moment: str, nth: int) -> None:
    if (seam, moment, nth) == KILL:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if (seam, moment, nth) == PAUSE:
        ready = Path(os.environ["TOPUP_TEST_PAUSE_FILE"])
        ready.with_suffix(".waiting").touch()
        while not ready.exists():
            time.sleep(0.02)


def install() -> None:
    from topup_ledger.projections.db import ProjectionDB
    from topup_ledger.storage.store import EventStore

    append, append_many = EventStore.append, EventStore.append_many

    def patched(real: Any) -> Any:
        """``real`` (append or append_many) with the "append" seam around it: "inside" is the
        end of the body of the recorder's transaction (which takes the write lock, stamps the
        time and authenticates the facts), before its commit. Every append, the bulk path of
        imports and payment runs included, goes through that one transaction."""

        def appending(self: EventStore, batch: Any) -> list[int]:
            _reached["append"] += 1
            nth = _reached["append"]
            _at("append", "before", nth)
            datastore = self.recorder.datastore  # type: ignore[attr-defined]
            transaction = datastore.transaction

            @contextmanager
            def inside(*args: Any, **kwargs: Any) -> Iterator[Any]:
                with transaction(*args, **kwargs) as cursor:
                    yield cursor
                    _at("append", "inside", nth)

            datastore.transaction = inside
            try:
                positions = real(self, batch)
            finally:
                del datastore.transaction
            _at("append", "after", nth)
            return positions

        return appending

    EventStore.append = patched(append)  # type: ignore[method-assign]
    EventStore.append_many = patched(append_many)  # type: ignore[method-assign]

    transaction = ProjectionDB.transaction

    @contextmanager
    def patched_transaction(self: ProjectionDB) -> Iterator[Any]:
        _reached["projection"] += 1
        nth = _reached["projection"]
        with transaction(self) as conn:
            yield conn
            _at("projection", "inside", nth)
        _at("projection", "after", nth)

    ProjectionDB.transaction = patched_transaction  # type: ignore[method-assign,assignment]

    replace = os.replace

    def patched_replace(src: Any, dst: Any, **kwargs: Any) -> None:
        _reached["file"] += 1
        nth = _reached["file"]
        _at("file", "before", nth)
        replace(src, dst, **kwargs)
        _at("file", "after", nth)

    os.replace = patched_replace  # type: ignore[assignment]


def worker(location: str, commands_file: str, out_file: str) -> int:
    """Run each JSON list of arguments in ``commands_file``; retry on a conflict (exit 3)."""
    from click.testing import CliRunner

    from topup_ledger.cli import main

    runner = CliRunner()
    with open(out_file, "w", encoding="utf-8") as out:
        for line in Path(commands_file).read_text(encoding="utf-8").splitlines():
            args = json.loads(line)
            attempts: list[dict[str, Any]] = []
            while True:
                result = runner.invoke(main, ["--ledger", location, *args])
                attempts.append({"exit": result.exit_code, "output": result.output,
                                 "exception": None if result.exception is None
                                 or isinstance(result.exception, SystemExit)
                                 else repr(result.exception)})
                if result.exit_code != 3 or len(attempts) > 50:
                    break
            out.write(json.dumps({"args": args, "attempts": attempts}) + "\n")
            out.flush()
    return 0


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        sys.exit(worker(*sys.argv[2:5]))
    install()
    from topup_ledger.cli import run

    sys.argv = ["topup", *sys.argv[1:]]
    run()


if __name__ == "__main__":
    main()
