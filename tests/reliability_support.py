"""What the reliability tests share: a small generated LA, child processes, the ledger's
content for comparison, and the figures ``scripts/reliability_report.py`` collects.

``TOPUP_RELIABILITY_SCALE`` (default 1) multiplies the random iterations (kill delays,
concurrent rounds, fuzz examples); ``TOPUP_RELIABILITY_FIGURES`` names a JSON-lines file
each test appends its counts to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from topup_ledger.cli import main
from topup_ledger.services.generator import generate
from topup_ledger.storage.store import EventStore

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
HARNESS = HERE / "reliability_harness.py"
SCALE = max(1, int(os.environ.get("TOPUP_RELIABILITY_SCALE", "1")))
AUTUMN, SPRING = "2025-26/autumn", "2025-26/spring"


def record_figure(check: str, **counts: Any) -> None:
    target = os.environ.get("TOPUP_RELIABILITY_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"check": check, **counts}) + "\n")


def write_la(folder: Path, plans: int = 40, schools: int = 6, seed: int = 3) -> Path:
    generate(plans=plans, schools=schools, years=1, seed=seed).write(folder)
    return folder


def batch(la: Path, number: int) -> Path:
    return next(la.glob(f"batch-{number:02d}-*"))


def reference_files(la: Path) -> list[Path]:
    first = batch(la, 1)
    return [first / "schools.csv", first / "rates.csv", first / "tariffs.csv"]


def topup(location: str, *args: str, ok: bool = True, env: dict[str, str] | None = None) -> Result:
    """``topup`` in this process, no exception left uncaught by the command line."""
    result = CliRunner().invoke(main, ["--ledger", location, *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"topup {' '.join(args)} raised {result.exception!r}\n{result.output}")
    assert "Traceback" not in result.output
    if ok:
        assert result.exit_code == 0, f"topup {' '.join(args)} ({result.exit_code}):\n{result.output}"
    return result


def import_all(location: str, files: list[Path]) -> None:
    for path in files:
        topup(location, "import", str(path))


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOPUP_TEST_KILL", "TOPUP_TEST_PAUSE"))}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra or {})
    return env


def spawn(location: str, *args: str, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(HARNESS), "--ledger", location, *args],
                            env=child_env(env), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_child(location: str, *args: str, env: dict[str, str] | None = None,
              kill_after: float | None = None, cwd: Path | None = None
              ) -> tuple[int, str, str, float]:
    """Run ``topup`` in a child; SIGKILL it after ``kill_after`` seconds if still running.
    Returns the exit code (-9 when killed), stdout, stderr and the wall time."""
    started = time.perf_counter()
    child = spawn(location, *args, env=env, cwd=cwd)
    try:
        out, err = child.communicate(timeout=kill_after if kill_after is not None else 120)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
    return child.returncode, out, err, time.perf_counter() - started


def content(location: str) -> list[tuple[str, int, str, Any]]:
    """Every stored event as (stream, version, type, versioned data), without recorded times:
    what two ledgers that learned the same facts must share."""
    store = EventStore(location)
    try:
        rows = []
        for n in store.notifications():
            state = store.mapper.decode_state(n.state)
            rows.append((str(n.originator_id), n.originator_version, n.topic,
                         json.dumps([state["v"], state["data"]], sort_keys=True)))
        return rows
    finally:
        store.close()


def count_events(location: str) -> int:
    store = EventStore(location)
    try:
        return sum(1 for _ in store.notifications())
    finally:
        store.close()
