"""The synthetic LA generator (issue 7): realistic, importable, and the same for the same seed."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from topup_ledger.domain.calendar import academic_year_of
from topup_ledger.io.import_csv import read_table
from topup_ledger.services.generator import GeneratedLA, generate, write_generated
from topup_ledger.services.importer import Import
from topup_ledger.services.recording import Ledger

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "generate.py"


def all_rows(la: GeneratedLA, kind: str) -> list[dict[str, str]]:
    return [row for batch in la.batches for row in batch.rows[kind]]


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def county() -> GeneratedLA:
    return generate(plans=2000, schools=120, years=3, seed=1)


def test_the_same_seed_writes_the_same_files_and_another_seed_does_not(tmp_path: Path) -> None:
    generate(plans=300, schools=20, seed=7).write(tmp_path / "a")
    generate(plans=300, schools=20, seed=7).write(tmp_path / "b")
    generate(plans=300, schools=20, seed=8).write(tmp_path / "c")
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b
    assert a != c
    assert "batch-01-before-2025-26-autumn/plans.csv" in a and "run.sh" in a and "schedule.csv" in a


def test_streaming_writes_the_same_files_as_generating_in_memory(tmp_path: Path) -> None:
    """National scale streams its rows to disk; it must be the very same LA, byte for byte."""
    kept = generate(plans=400, schools=30, seed=4)
    kept.write(tmp_path / "kept")
    streamed, written = write_generated(tmp_path / "streamed", plans=400, schools=30, seed=4)
    assert files(tmp_path / "kept") == files(tmp_path / "streamed")
    assert sorted(written) == sorted(p for p in (tmp_path / "streamed").rglob("*") if p.is_file())
    assert streamed.stats == kept.stats
    assert [b.kinds() for b in streamed.batches] == [b.kinds() for b in kept.batches]
    assert not any(b.rows["plans"] or b.rows["changes"] for b in streamed.batches)


def test_the_la_is_laid_out_as_batches_before_nine_termly_runs(county: GeneratedLA) -> None:
    assert [r.period for r in county.runs] == [
        f"{y}/{t}" for y in ("2025-26", "2026-27", "2027-28") for t in ("autumn", "spring", "summer")]
    assert [b.folder for b in county.batches][:2] == ["batch-01-before-2025-26-autumn",
                                                      "batch-02-before-2025-26-spring"]
    assert county.runs[0].on == date(2025, 9, 1) and county.runs[1].on == date(2026, 1, 1)
    assert len(county.batches[0].rows["schools"]) == 120
    assert sum(len(b.rows["schools"]) for b in county.batches[1:]) == 0


def test_plans_are_about_half_mainstream_with_a_spread_of_bands_and_hours(county: GeneratedLA) -> None:
    settings = {r["urn"]: r["setting"] for r in all_rows(county, "schools")}
    plans = all_rows(county, "plans")
    assert len(plans) == 2000 == county.stats["plans"]
    placed = Counter(settings[p["school"]] for p in plans)
    assert 0.4 <= placed["mainstream"] / len(plans) <= 0.6
    assert set(placed) == {"mainstream", "special", "resourced", "independent", "post16"}
    hours = [Decimal(p["hours"]) for p in plans if p["hours"]]
    assert max(hours) == Decimal("32.5") and min(hours) >= 5 and len(set(hours)) >= 8
    assert 0.4 <= len(hours) / len(plans) <= 0.75  # the old model, for most plans outside special
    bands = Counter(p["band"] for p in plans if p["band"]) + Counter(
        c["band"] for c in all_rows(county, "changes") if c["band"])
    assert set(bands) == set("ABCDEFG")
    assert {p["kind"] for p in plans} == {"ehcp", "non-statutory"}
    assert len({p["pupil"] for p in plans}) == len(plans)  # pseudonymous, one per plan


def test_changes_cover_reviews_moves_cessations_and_a_phased_transfer(county: GeneratedLA) -> None:
    changes = all_rows(county, "changes")
    kinds = Counter(c["change"] for c in changes)
    assert set(kinds) == {"transfer", "band", "hours", "move", "cease", "correct"}
    transfers = [c for c in changes if c["change"] == "transfer"]
    by_year = Counter(academic_year_of(date.fromisoformat(c["from"])) for c in transfers)
    assert set(by_year) == {"2025-26", "2026-27", "2027-28"}  # phased over three years
    assert min(by_year.values()) > len(transfers) / 10
    protected = [c for c in transfers if c["protect_until"]]
    assert 0 < len(protected) < len(transfers)
    reviews = Counter(date.fromisoformat(c["from"]).month for c in changes if c["change"] == "band")
    assert len(reviews) == 12  # annual reviews through the year
    assert county.stats["recorded_late"] > len(changes) / 4  # weeks after their effective date
    assert all(c["reason"] for c in changes if c["change"] in ("band", "cease", "correct"))
    assert not any(c["reason"] for c in changes if c["change"] in ("transfer", "move"))


def test_a_change_lands_in_the_batch_of_the_run_after_it_was_learned(county: GeneratedLA) -> None:
    late = 0
    for number, batch in enumerate(county.batches):
        for change in batch.rows["changes"]:
            if change["change"] == "correct":
                continue
            effective = date.fromisoformat(change["from"])
            if change["change"] != "move":  # moves at phase transfer are known in advance
                assert effective < batch.run.on
            if number and effective < county.runs[number - 1].on:
                late += 1  # a run had already paid its term: the next one puts it right
    assert late > 100


def test_each_financial_year_has_rates_a_tariff_and_an_in_year_revision(county: GeneratedLA) -> None:
    tariffs = all_rows(county, "tariffs")
    per_year = Counter((t["year"], t["setting"]) for t in tariffs)
    for year in ("2025-26", "2026-27", "2027-28"):
        assert per_year[(year, "")] == 2  # published, then revised
        assert per_year[(year, "special")] == 2
    assert per_year[("2028-29", "")] == 1  # its revision would come after the last run
    assert [r["year"] for r in all_rows(county, "rates")] == ["2025-26", "2026-27", "2027-28", "2028-29"]
    first = next(b for b in county.batches if any(t["year"] == "2026-27" for t in b.rows["tariffs"]))
    assert first.run.period == "2025-26/summer"  # published before the year it prices


def test_every_generated_row_imports_without_a_reject(ledger: Ledger, tmp_path: Path) -> None:
    la = generate(plans=150, schools=12, seed=3)
    la.write(tmp_path)
    for batch in la.batches:
        job = Import(ledger)
        for kind, rows in batch.files():
            result = job.stage_table(read_table(tmp_path / batch.folder / f"{kind}.csv"), kind)
            assert result.rejected == 0, (batch.folder, kind, result.rejects()[:3])
            assert result.count("recorded") == len(rows)
        job.commit()
        ledger.clock.advance(days=120)  # type: ignore[attr-defined]
    assert len(ledger.store.stream("plan:EHCP-00001")) >= 1


def test_the_script_writes_a_folder_and_refuses_a_full_one(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("generate_script", SCRIPT)
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    sys.modules["generate_script"] = script
    spec.loader.exec_module(script)
    out = tmp_path / "la"
    assert script.main(["--plans", "100", "--schools", "10", "--years", "2", "--seed", "5",
                        "--out", str(out)]) == 0
    assert "100 plans" in capsys.readouterr().out
    runs = list(csv.DictReader((out / "schedule.csv").read_text().splitlines()))
    assert [r["target"] for r in runs if r["action"] == "pay"] == [
        "2025-26/autumn", "2025-26/spring", "2025-26/summer",
        "2026-27/autumn", "2026-27/spring", "2026-27/summer"]
    assert "topup import batch-01-before-2025-26-autumn/plans.csv" in (out / "run.sh").read_text()
    assert script.main(["--plans", "10", "--out", str(out)]) == 2

