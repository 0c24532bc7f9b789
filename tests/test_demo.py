"""`topup demo` (issue 7): a county-sized LA through the move to bands, in one folder."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner

from conftest import FakeClock
from topup_ledger.cli.imports import demo_cmd
from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import financial_year_of
from topup_ledger.services.demo import build_demo
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.store import EventStore

PERIODS = [f"{y}/{t}" for y in ("2025-26", "2026-27", "2027-28") for t in ("autumn", "spring", "summer")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("demo") / "la"
    result = CliRunner().invoke(demo_cmd, ["--plans", "200", "--out", str(folder)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder, result.stdout


def test_demo_for_200_plans_prints_a_summary_and_the_folder(demo: tuple[Path, str]) -> None:
    folder, output = demo
    assert "200 plans" in output and "schools" in output
    assert "total paid over 9 termly runs: £" in output
    assert "cost neutrality on the full cost:" in output and "moved from hours to bands" in output
    assert "bands alone at the transfers' prices" in output
    assert str(folder.resolve()) in output and "statements/2027-28-summer/index.html" in output


def test_demo_leaves_ledger_inputs_payment_files_and_a_summary(demo: tuple[Path, str]) -> None:
    folder, _ = demo
    assert (folder / "ledger.sqlite").is_file()
    assert (folder / "input" / "run.sh").is_file()
    summary = json.loads((folder / "summary.json").read_text())
    assert [r["period"] for r in summary["runs"]] == PERIODS
    assert summary["plans"] == 200 and summary["total_paid"] == sum(r["total"] for r in summary["runs"])
    assert summary["neutrality"]["plans"] > 0 and 0.8 < summary["neutrality"]["ratio"] < 1.2
    neutrality = summary["neutrality"]
    assert neutrality["prices_year"] == "2028-29" and neutrality["prior_cost"] > 0
    assert neutrality["full_cost"] == (neutrality["band_cost"] + neutrality["protection_cost"]
                                       + neutrality["cushion_cost"])
    assert summary["due_now"] == summary["total_paid"] and summary["unsettled"] == 0
    for name in ("funding", "paid-vs-due", "hours-vs-band", "band-calibration"):
        assert (folder / "projections" / f"{name}.csv").is_file()
    assert (folder / "verify.txt").read_text().count("OK: every event matches") == 1
    assert json.loads((folder / "verify.json").read_text())["ok"] is True
    assert summary["seal"].endswith(f"@{summary['events'] - 1}")
    statements = folder / "statements" / "2027-28-summer"
    assert (statements / "index.html").is_file() and len(list(statements.glob("statement-*.html"))) > 5
    payments = folder / "payments"
    for period in PERIODS:
        stem = period.replace("/", "-") + "-r1"
        for name in (f"payments-{stem}", f"payment-lines-{stem}"):
            assert (payments / f"{name}.csv").is_file() and (payments / f"{name}.parquet").is_file()
    paid = sum(sum(pacsv.read_csv(payments / f"payments-{p.replace('/', '-')}-r1.csv")
                   .column("total_pence").to_pylist()) for p in PERIODS)
    assert paid == summary["total_paid"]
    kinds = set()
    for period in PERIODS[1:]:
        lines = pacsv.read_csv(payments / f"payment-lines-{period.replace('/', '-')}-r1.csv")
        kinds |= set(lines.column("line_kind").to_pylist())
    assert {"regular", "arrears", "clawback", "protection"} <= kinds  # late changes put right


def test_cost_neutrality_is_the_prior_amounts_against_the_bands_of_the_transfers(
        demo: tuple[Path, str]) -> None:
    folder, _ = demo
    store = EventStore(str(folder / "ledger.sqlite"))
    try:
        terms = Ledger(store, clock=FakeClock()).terms()
        prior = banded = plans = 0
        for _, recorded in store.recorded(types=(ev.TransferredToBand.TYPE,)):
            fact = recorded.fact
            assert isinstance(fact, ev.TransferredToBand)
            plan = Ledger(store, clock=FakeClock()).plan(fact.plan)
            state = plan.state_on(fact.effective)
            if state is None or plan.corrected[recorded.id] != fact:
                continue
            plans += 1
            prior += fact.prior_annual
            banded += terms.band_rate(financial_year_of(fact.effective),
                                      terms.setting_of(state.school), state.band or "") or 0
    finally:
        store.close()
    neutrality = json.loads((folder / "summary.json").read_text())["neutrality"]
    assert (neutrality["plans"], neutrality["prior"], neutrality["banded"]) == (plans, prior, banded)


def test_after_the_demo_every_term_is_paid_exactly_what_is_due(demo: tuple[Path, str]) -> None:
    folder, _ = demo
    store = EventStore(str(folder / "ledger.sqlite"))
    try:
        again = pay(Ledger(store, clock=FakeClock()), "2027-28/summer")
        assert not again.recorded and again.total == 0
    finally:
        store.close()


def test_the_same_seed_builds_the_same_la_and_payments(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # one ledger key for both: every event's authentication, and so the chain, is the same
    monkeypatch.setenv("TOPUP_LEDGER_KEY", base64.b64encode(bytes(range(32))).decode())
    one = build_demo(tmp_path / "one", plans=60, seed=4)
    two = build_demo(tmp_path / "two", plans=60, seed=4)
    # The simulated clock makes every run repeatable; seals differ only because the recorded
    # digests of each run's files name the folder they were written to.
    assert [(r["run_id"], r["schools"], r["total"]) for r in one.runs] == [
        (r["run_id"], r["schools"], r["total"]) for r in two.runs]
    assert one.runs[0]["seal"] == two.runs[0]["seal"]
    assert one.total_paid == two.total_paid > 0


def test_demo_refuses_a_folder_it_did_not_make_and_reuses_its_own(tmp_path: Path) -> None:
    runner = CliRunner()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = runner.invoke(demo_cmd, ["--plans", "20", "--out", str(foreign)])
    assert result.exit_code == 2 and "did not make" in result.output
    assert (foreign / "notes.txt").read_text() == "keep me"
    own = tmp_path / "own"
    for _ in range(2):
        result = runner.invoke(demo_cmd, ["--plans", "20", "--out", str(own), "--json"])
        assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["plans"] == 20
