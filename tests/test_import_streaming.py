"""Bounded input (issue 21): `topup import` reads its files a chunk of rows at a time and keeps
at most a bounded number of streams in memory, the staged facts on disk, and is still all or
nothing. The caps are made small here so that a file of a thousand rows is bigger than they
are; the memory figures for 50 and 200 MB files are measured by scripts/reliability_report.py,
never asserted in a test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from test_import import load_reference, write
from topup_ledger.cli import main
from topup_ledger.io import import_csv
from topup_ledger.io.import_csv import FileRefused, read_table
from topup_ledger.services import importer
from topup_ledger.services.importer import ALREADY, RECORDED, Import, import_file
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.streams import plan_stream

ROWS = 1_000
SCHOOLS = ("100001", "100002", "100003")  # test_import's reference data


def plan_rows(count: int) -> str:
    """Plans Q0000… at the three schools: even ones on hours (10 to 29), odd ones on band B."""
    return "".join(f"Q{i:04d},PR-{i:04d},{SCHOOLS[i % 3]},2025-09-01,"
                   + (f"{10 + i % 20},," if i % 2 == 0 else ",B,") + "\n" for i in range(count))


HEADER = "plan,pupil,school,from,hours,band,kind\n"


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "CHUNK_ROWS", 50)
    monkeypatch.setattr(importer, "CACHED_STREAMS", 120)
    monkeypatch.setattr(importer, "KEPT_OUTCOMES", 100)


class Counting:
    """A table's rows, counting how many have been read from the file so far."""

    def __init__(self, rows: Any) -> None:
        self.rows, self.read = rows, 0

    def __iter__(self) -> Iterator[Any]:
        self.read = 0
        for row in self.rows:
            self.read += 1
            yield row


def test_a_file_bigger_than_the_caps_is_read_a_chunk_at_a_time(
        ledger: Ledger, tmp_path: Path, small_caps: None, monkeypatch: pytest.MonkeyPatch) -> None:
    load_reference(ledger, tmp_path)
    before = ledger.store.max_position()
    table = read_table(write(tmp_path, "plans.csv", HEADER + plan_rows(ROWS)))
    assert isinstance(table.rows, import_csv.FileRows)  # read from the file, not held
    counted = Counting(table.rows)
    table.rows = counted
    job = Import(ledger)
    ahead: list[int] = []  # rows read from the file but not yet checked, at each row checked
    cached: list[int] = []
    checked = 0
    stage_row = job._stage_row

    def watched(*args: Any) -> Any:
        nonlocal checked
        checked += 1
        ahead.append(counted.read - checked)
        cached.append(len(job.staging.streams))
        return stage_row(*args)

    monkeypatch.setattr(job, "_stage_row", watched)
    result = job.stage_table(table, "plans")
    assert checked == ROWS and max(ahead) < 50  # never more than a chunk read ahead
    assert max(cached) <= 120 + 3 + 5  # the streams cap, plus the schools and reference read at once
    # the counts are exact; every row's outcome is kept only up to KEPT_OUTCOMES rows
    assert (result.rows, result.recorded, result.rejected) == (ROWS, 0, 0)  # not yet committed
    assert len(result.outcomes) == 100 and result.count(RECORDED) == ROWS
    positions = job.commit()
    assert len(positions) == ROWS and result.recorded == ROWS
    assert ledger.store.max_position() == before + ROWS
    # every plan as its row said, in file order
    first, last = ledger.plan("Q0000"), ledger.store.stream(plan_stream(f"Q{ROWS - 1:04d}"))
    assert first.facts[0].fact.hours == 10 and first.facts[0].fact.school == "100001"  # type: ignore[attr-defined]
    assert last[0].fact.band == "B" and last[0].fact.school == SCHOOLS[(ROWS - 1) % 3]  # type: ignore[attr-defined]


def test_streams_let_go_of_are_read_again_from_the_ledger_and_the_staged_facts(
        ledger: Ledger, tmp_path: Path, small_caps: None) -> None:
    load_reference(ledger, tmp_path)
    plans = write(tmp_path, "plans.csv", HEADER + plan_rows(ROWS))
    # Q0000 is let go of long before the changes file names it: its issue is read back
    # from the staged facts, so its move is version 2, and the same move twice is the same.
    changes = write(tmp_path, "changes.csv", "plan,change,from,school\n"
                    "Q0000,move,2025-11-03,100002\nQ0999,move,2025-11-03,100003\n"
                    "Q0000,move,2025-11-03,100002\n")
    job = Import(ledger)
    job.stage_table(read_table(plans), "plans")
    assert plan_stream("Q0000") not in job.staging.streams
    result = job.stage_table(read_table(changes), "changes")
    assert [o.status for o in result.outcomes] == [RECORDED, RECORDED, ALREADY], result.rejects()
    assert result.outcomes[2].reason == "the same as line 2"
    job.commit()
    moved = ledger.store.stream(plan_stream("Q0000"))
    assert [(r.id, r.fact.TYPE) for r in moved] == [("Q0000/1", "plan.issued"), ("Q0000/2", "plan.moved")]
    # importing the plans again: every stream read again from the ledger, nothing new
    again = import_file(ledger, plans)
    assert (again.rows, again.already, again.recorded, again.rejected) == (ROWS, ROWS, 0, 0)


def test_one_bad_row_at_the_end_of_a_big_file_records_nothing(
        ledger: Ledger, tmp_path: Path, small_caps: None) -> None:
    load_reference(ledger, tmp_path)
    before = ledger.store.max_position()
    path = write(tmp_path, "plans.csv", HEADER + plan_rows(ROWS) + "Q9999,PR-9999,199999,2025-09-01,20,,\n")
    result = CliRunner().invoke(main, ["import", str(path)], obj={"location": ledger.store.location},
                                catch_exceptions=False)
    assert result.exit_code == 2
    assert f"line {ROWS + 2}, school: school 199999 is not in the ledger" in result.output
    assert "nothing was recorded because 1 row was rejected" in result.output
    assert ledger.store.max_position() == before
    rejects = (tmp_path / "plans.rejects.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(rejects) == 2 and rejects[1].startswith(f"{ROWS + 2},school,") and "Q9999" in rejects[1]


def test_a_damaged_line_deep_in_a_file_is_refused_naming_it_and_records_nothing(
        ledger: Ledger, tmp_path: Path, small_caps: None) -> None:
    load_reference(ledger, tmp_path)
    before = ledger.store.max_position()
    rows = plan_rows(ROWS).splitlines(keepends=True)
    quoted = write(tmp_path, "quoted.csv", HEADER + "".join(rows[:700]) + 'Q7777,"PR-7\n' * 2)
    with pytest.raises(FileRefused, match=r"quoted.csv, line 70[0-9]"):
        import_file(ledger, quoted)
    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEADER + "".join(rows[:699])).encode() + "Q7777,PR-7,100001,2025-09-01,20,,Zoë\n"
                      .encode("latin-1") + "".join(rows[700:]).encode())
    with pytest.raises(FileRefused, match=r"latin.csv, line 701: the file is not UTF-8 \(byte 0xeb\)"):
        import_file(ledger, latin)
    assert ledger.store.max_position() == before


def test_running_out_of_memory_is_a_plain_refusal(ledger: Ledger, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine (or a limit set on the process) without the memory an import needs: no
    traceback, exit 7, nothing recorded."""
    load_reference(ledger, tmp_path)
    before = ledger.store.max_position()
    path = write(tmp_path, "plans.csv", HEADER + plan_rows(10))

    def exhausted(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(importer.Import, "commit", exhausted)
    result = CliRunner().invoke(main, ["import", str(path)], obj={"location": ledger.store.location},
                                catch_exceptions=False)
    assert result.exit_code == 7 and "Traceback" not in result.output
    assert "ran out of memory" in result.output and "nothing was recorded" in result.output
    assert ledger.store.max_position() == before


def test_the_staged_facts_have_no_name_on_disk() -> None:
    """The staging file is unlinked as soon as it is made: an import killed at any moment
    leaves no file of staged facts behind (they name schools and pupils)."""
    from datetime import UTC, date, datetime
    from decimal import Decimal

    from topup_ledger.domain import events as ev
    from topup_ledger.services.import_spill import StagedFacts
    from topup_ledger.storage.store import Recorded

    staged = StagedFacts()
    try:
        assert not staged.folder.exists()
        when = datetime(2025, 9, 1, 9, tzinfo=UTC)
        facts = [Recorded(f"plan:P{i}", 1, when, ev.PlanIssued(f"P{i}", f"PR-{i}", "100001",
                                                             date(2025, 9, 1), "ehcp",
                                                             Decimal("12.5"), None))
                 for i in range(3)]
        for recorded in facts:
            staged.add(recorded)
        assert list(staged) == facts and len(staged) == 3
        assert staged.of_streams(["plan:P1", "plan:P9"]) == {"plan:P1": [facts[1]]}
    finally:
        staged.close()
