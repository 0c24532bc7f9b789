"""Issue 8's benchmark still runs: a tiny county through scripts/bench.py on each backend.

This checks that the harness works and reports every figure of every step; it never times
anything, nor compares one timing with another (the figures are for people to read, against
their same-run baselines): a timing is only checked to be there, as a number of seconds.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import postgres_url

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"
STEPS = ("import", "plain_insert", "raw_read", "rebuild", "payrun", "update")


OTHER = "<!-- bench:national-640000-3y -->\nnational figures\n<!-- /bench:national-640000-3y -->"
STALE = "<!-- bench:county-120-1y -->\nstale figures\n<!-- /bench:county-120-1y -->"


def run_bench(tmp_path: Path, *options: str) -> tuple[dict, str]:
    out = tmp_path / "bench.json"
    doc = tmp_path / "docs" / "benchmarks.md"
    doc.parent.mkdir()
    doc.write_text(f"# Benchmarks\n\nold text\n{OTHER}\n\n{STALE}\n")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "county", "--plans", "120", "--schools", "8",
         "--years", "1", "--out", str(out), "--markdown", str(doc), *options],
        capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), doc.read_text()


def timed(value: object) -> bool:
    """A timer's figure as the report carries it: a finite, non-negative number of seconds.
    How large it is depends on the machine and the moment, so nothing else is asserted."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and value >= 0


def ratio(value: object) -> bool:
    """A ratio of two timings: a timing itself, or None when its denominator read 0."""
    return value is None or timed(value)


def check_backend(figures: dict, events_imported: int) -> None:
    for step in STEPS:
        assert timed(figures[step]["seconds"]), step
        assert figures[step]["peak_mib"] > 0, step
    # Each ratio is taken over the same rows on both sides.
    assert figures["import"]["events"] == figures["plain_insert"]["events"] == events_imported
    assert figures["rebuild"]["events"] == figures["raw_read"]["events"] == figures["ledger_events"]
    assert figures["ledger_events"] > events_imported  # the runs' payments and seals too
    assert ratio(figures["import_ratio"]) and ratio(figures["rebuild_ratio"])
    # Each split adds up to its whole, whatever the timings: checking and recording;
    # folding and working out plans. Each ratio is the quotient of the figures it names.
    imported = figures["import"]
    assert timed(imported["checking_seconds"]) and timed(imported["recording_seconds"])
    assert imported["checking_seconds"] + imported["recording_seconds"] == pytest.approx(imported["seconds"])
    if figures["import_checks_ratio"] is not None:
        assert figures["import_checks_ratio"] == pytest.approx(
            imported["checking_seconds"] / figures["plain_insert"]["seconds"])
    rebuilt = figures["rebuild"]
    assert timed(rebuilt["fold_seconds"]) and timed(rebuilt["plans_seconds"])
    assert rebuilt["fold_seconds"] + rebuilt["plans_seconds"] == pytest.approx(rebuilt["seconds"])
    if figures["rebuild_fold_ratio"] is not None:
        assert figures["rebuild_fold_ratio"] == pytest.approx(
            rebuilt["fold_seconds"] / figures["raw_read"]["seconds"])
    # The update after the last run folds that run's events, and no others.
    assert figures["update"]["events"] == figures["ledger_events"] - figures["payrun"]["events"] > 0
    # What the rebuild wrote, written again: paid rows alone outnumber the last run's lines.
    assert figures["write_floor"]["rows"] > figures["payrun"]["lines"] > 0
    assert timed(figures["write_floor"]["seconds"]) and ratio(figures["rebuild_floor_ratio"])
    runs = figures["payrun"]["runs"]
    assert [r["period"] for r in runs] == ["2025-26/autumn", "2025-26/spring", "2025-26/summer"]
    assert figures["payrun"]["period"] == "2025-26/summer"
    assert all(r["schools"] > 0 and r["total_pence"] > 0 for r in runs)


def test_the_benchmark_reports_every_figure_on_sqlite(tmp_path: Path) -> None:
    report, doc = run_bench(tmp_path, "--backend", "sqlite")
    assert report["plans"] == 120 and report["generate"]["stats"]["plans"] == 120
    imported = sum(b["events"] for b in report["backends"]["sqlite"]["import"]["batches"])
    check_backend(report["backends"]["sqlite"], imported)
    results = {t["target"].split(" (at ")[0]: t["result"] for t in report["targets"]}
    assert set(results) == {
        "sqlite: rebuild ratio raw/rebuild <= 2.0", "sqlite: import >= 50,000 events/s",
        "sqlite: import ratio plain/import <= 4.0", "sqlite: slowest termly run < 2.0 s (county)",
        "sqlite: peak memory of every step (and generating) < 2048 MiB"}
    assert set(results.values()) <= {"PASS", "MISS"}
    for read in ("cpu", "cores", "ram_gib", "os", "python", "sqlite"):
        assert report["machine"][read]
    assert doc.startswith("# Benchmarks\n\nGenerated by `scripts/bench.py")
    assert "<!-- bench:county-120-1y -->" in doc and f"SQLite {report['machine']['sqlite']}" in doc
    assert "| sqlite | rebuild every projection from nothing | " in doc
    assert "| sqlite | import: of which checking (files read, plans read, every row's rules) | " in doc
    assert "| sqlite | rebuild: of which folding the events (one process, ledger order) | " in doc
    assert "| sqlite | import floor: checking alone / plain INSERT (nothing recorded) | " in doc
    assert "| sqlite | projections updated after the last run (the run's events) | " in doc
    # A run replaces its own section (scale, plans, years) and keeps the others.
    assert OTHER in doc and "stale figures" not in doc and "old text" not in doc
    assert doc.index("bench:county-120-1y") < doc.index("bench:national-640000-3y")


def test_the_benchmark_compares_postgres_with_sqlite(tmp_path: Path) -> None:
    url = postgres_url()
    if not url:
        pytest.skip("no PostgreSQL server (set TOPUP_TEST_POSTGRES_URL)")
    report, doc = run_bench(tmp_path, "--backend", "both", "--url", url)
    sqlite, postgres = report["backends"]["sqlite"], report["backends"]["postgres"]
    imported = sqlite["import"]["events"]
    check_backend(sqlite, imported)
    check_backend(postgres, imported)  # the same LA, event for event, on both
    assert postgres["ledger_events"] == sqlite["ledger_events"]
    assert set(report["postgres_vs_sqlite"]) == set(STEPS)
    assert all(ratio(value) for value in report["postgres_vs_sqlite"].values())
    assert sum("postgres within 2.0x of sqlite" in t["target"] for t in report["targets"]) == 3
    assert report["machine"]["postgresql"] and f"PostgreSQL {report['machine']['postgresql']}" in doc
