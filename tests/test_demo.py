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
    report = folder / "reports" / "finance-2027-28-summer.html"  # issue 26: the demo writes it
    assert "Total paid by period" in report.read_text() and report.with_suffix(".pdf").is_file()
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


def test_demo_pays_through_the_finance_system_and_its_files_tie_to_its_runs(
        demo: tuple[Path, str]) -> None:
    """Every run leaves a journal, an AP file, a recoupment list and a workbook; what they
    send in all is what the runs paid (their nets) plus what schools still owe (a negative net
    is sent as nothing), to the penny;
    about a third of the schools are academies; the summary prints the split by route."""
    import csv
    from datetime import date
    from decimal import Decimal

    from topup_ledger.services.payees import payees_on
    from topup_ledger.services.recoveries import outstanding

    folder, output = demo
    payments = folder / "payments"
    sent = Decimal(0)
    for period in PERIODS:
        stem = period.replace("/", "-") + "-r1"
        for file, amount in (("journal", "Amount"), ("ap", "Invoice Amount"),
                             ("recoupment", "amount")):
            with (payments / f"finance-{file}-{stem}.csv").open(encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle))
            assert all(Decimal(r[amount]) > 0 for r in rows)  # never a negative payment
            sent += sum((Decimal(r[amount]) for r in rows), Decimal(0))
        assert (payments / f"finance-{stem}.xlsx").is_file()
    summary = json.loads((folder / "summary.json").read_text())
    store = EventStore(str(folder / "ledger.sqlite"))
    try:
        owed = sum(o.pence for o in outstanding(store))
        routes = [p.route for p in payees_on(store, date(2025, 9, 1)).values()]
    finally:
        store.close()
    # a negative net is paid as nothing: what is still owed was sent on top of the nets
    assert sent * 100 == summary["total_paid"] + owed
    assert len(routes) == summary["schools"]
    assert 0.2 < routes.count("academy") / len(routes) < 0.5
    by_route = summary["finance"]["by_route"]
    assert sum(pence for _, pence in by_route.values()) == sent * 100
    assert "sent through the finance system: £" in output and "academy £" in output
    # the demo LA's details head every statement, as on a remittance advice
    statement = next((folder / "statements").rglob("statement-*.html")).read_text(encoding="utf-8")
    assert "Demoshire County Council" in statement and "01632 960000" in statement


def test_the_demo_releases_each_run_and_matches_a_remittance_with_two_exceptions(
        demo: tuple[Path, str]) -> None:
    """Issue 23: every run is released (one-person: the demo is one officer on SQLite), and
    the generated remittance pays every school what its run released, except the first
    school of the first run, paid twice, and the first of the last run, paid £100.00 short."""
    folder, out = demo
    summary = json.loads((folder / "summary.json").read_text())
    rows = pacsv.read_csv(folder / "projections" / "paid-vs-remitted.csv").to_pylist()
    by_state: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_state.setdefault(str(row["state"]), []).append(row)
    assert set(by_state) == {"matched", "duplicate", "short"}
    assert summary["remitted"] == {state: len(found) for state, found in by_state.items()}
    (twice,), (short,) = by_state["duplicate"], by_state["short"]
    assert twice["run_id"] == "2025-26-autumn-r1" and twice["payments"] == 2
    assert twice["remitted_pence"] == 2 * twice["released_pence"]  # type: ignore[operator]
    assert short["run_id"] == "2027-28-summer-r1" and short["difference_pence"] == -10000
    released = sum(int(r["released_pence"]) for r in rows)  # type: ignore[call-overload]
    assert released == summary["total_paid"]  # every released payment is in the match
    assert "paid vs remitted: 1 duplicate" in out and "1 short" in out
    verified = (folder / "verify.txt").read_text()
    assert all(f"run {p.replace('/', '-')}-r1: prepared by " in verified for p in PERIODS)
    assert "(one-person)" in verified
