"""Projections (issue 4): per-school funding, paid vs due, hours vs band; tracking, resume,
rebuild, as-of. Every test that takes ``ledger`` or ``location`` runs on SQLite and
PostgreSQL (projection state is always a local SQLite file, never the ledger's database)."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from topup_ledger.cli.projections import funding_cmd, rebuild_cmd, reconcile_group
from topup_ledger.domain.calendar import parse_moment as parse_time
from topup_ledger.io.payment_files import write_files_for_run
from topup_ledger.projections import funding, hours_vs_band, paid_vs_due, runner
from topup_ledger.projections.db import ProjectionDB, projections_path
from topup_ledger.projections.runner import catch_up, folds_for, position_at, view
from topup_ledger.projections.school_periods.fold import SchoolPeriods
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.pages import StoredPages
from topup_ledger.storage.store import EventStore

TARIFFS = {"2025-26": {"A": 160000, "B": 310000, "C": 500000, "D": 700000, "E": 1000000},
           "2026-27": {"A": 165000, "B": 320000, "C": 515000, "D": 720000, "E": 1030000}}
ALL = ["funding", "paid-vs-due", "hours-vs-band"]


@pytest.fixture(autouse=True)
def projections_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PostgreSQL ledgers keep their projection file here (not in the user's cache)."""
    folder = tmp_path / "projections"
    monkeypatch.setenv("TOPUP_PROJECTIONS_DIR", str(folder))
    monkeypatch.delenv("TOPUP_PROJECTIONS", raising=False)
    return folder


def reference(ledger: Ledger) -> None:
    ledger.add_school("100001", "Oakfield Primary", "mainstream")
    ledger.add_school("100002", "Riverside Academy", "mainstream")
    ledger.add_school("100003", "Beacon Special School", "special")
    for year, bands in TARIFFS.items():
        ledger.set_tariff(year, bands, reason="approved by the Schools Forum")
        ledger.set_rate(year, 1181 if year == "2025-26" else 1215, Decimal(38), 600000)


def scenario(ledger: Ledger, clock: Any, out: Path) -> Iterator[str]:
    """A small LA over a year, one step at a time: every kind of fact and three runs, with
    backdated changes, a correction, a tariff revision, a cushion and a change after the last
    run (so something is outstanding)."""
    reference(ledger)
    yield "reference"
    ledger.issue_plan("P1", "X1", "100001", date(2025, 9, 1), hours=Decimal("27.5"))
    ledger.issue_plan("P2", "X2", "100001", date(2025, 9, 1), band="C")
    ledger.issue_plan("P3", "X3", "100002", date(2025, 9, 1), hours=Decimal("20"))
    ledger.issue_plan("P4", "X4", "100003", date(2025, 10, 6), band="E")
    ledger.issue_plan("P5", "X5", "100002", date(2025, 9, 1), hours=Decimal("15"), kind="non-statutory")
    yield "plans"
    result = pay(ledger, "2025-26/autumn")
    write_files_for_run(ledger.store, result.run_id, out)
    yield "autumn paid"
    clock.advance(days=60)
    ledger.transfer("P1", "B", date(2025, 11, 3), protect_until=date(2026, 3, 31))
    ledger.change_band("P2", "D", date(2025, 10, 1), "annual-review")
    ledger.transfer("P5", "A", date(2025, 11, 3))
    yield "transfers"
    clock.advance(days=62)
    ledger.transfer("P3", "C", date(2026, 1, 5))
    ledger.move("P4", "100002", date(2026, 2, 2))
    ledger.set_cushion("100001", date(2026, 4, 1), date(2027, 3, 31), Decimal(50))
    result = pay(ledger, "2025-26/spring")
    write_files_for_run(ledger.store, result.run_id, out)
    yield "spring paid"
    clock.advance(days=90)
    ledger.cease("P3", date(2026, 3, 1), "needs met without top-up")
    ledger.correct("P2", "P2/2", "the review set band D from 1 November", effective=date(2025, 11, 1))
    ledger.set_tariff("2026-27", {"D": 730000}, reason="revised")
    result = pay(ledger, "2025-26/summer")
    write_files_for_run(ledger.store, result.run_id, out)
    yield "summer paid"
    clock.advance(days=10)
    ledger.change_band("P2", "E", date(2026, 4, 1), "interim-review")
    yield "band change after the run"


def run_all(ledger: Ledger, clock: Any, out: Path) -> None:
    for _ in scenario(ledger, clock, out):
        pass


def invoke(location: str, clock: Any, command: Any, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(command, list(args), obj={"location": location, "clock": clock},
                                catch_exceptions=False)
    if ok and result.exit_code != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.exit_code}):\n{result.output}")
    return result


def write_all(location: str, clock: Any, out: Path, *extra: str) -> dict[str, bytes]:
    invoke(location, clock, funding_cmd, "--out", str(out), *extra)
    invoke(location, clock, reconcile_group, "paid-vs-due", "--out", str(out), *extra)
    invoke(location, clock, reconcile_group, "hours-vs-band", "--out", str(out), *extra)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def rows_of(store: EventStore, output: str, **kwargs: Any) -> list[dict[str, Any]]:
    module = {"funding": funding, "paid-vs-due": paid_vs_due}[output]
    with view(store, [output]) as v:
        return module.rows(v, **kwargs)


# Figures.


def test_funding_and_paid_vs_due_figures(ledger: Ledger, clock: Any) -> None:
    reference(ledger)
    ledger.issue_plan("P1", "X1", "100001", date(2025, 9, 1), band="C")
    pay(ledger, "2025-26/autumn")
    [row] = rows_of(ledger.store, "funding")
    assert (row["period"], row["school_urn"], row["plans"], row["plans_band"], row["bands"]) == (
        "2025-26/autumn", "100001", 1, 1, "C:1")
    assert (row["run_rate_pence"], row["due_pence"], row["paid_pence"], row["difference_pence"]) == (
        500000, 166667, 166667, 0)
    assert row["due_gbp"] == "1666.67"

    clock.advance(days=40)
    event = ledger.change_band("P1", "D", date(2025, 10, 1), "annual-review")  # backdated
    [row] = rows_of(ledger.store, "paid-vs-due")
    # C for 30 days and D for 92 of autumn's 122: (5000×30 + 7000×92)/122 × 4/12 = £2,169.40
    assert (row["due_pence"], row["paid_pence"], row["outstanding_pence"]) == (216940, 166667, 50273)
    assert row["status"] == "underpaid"
    assert row["explained_by"] == event == "P1/2"
    assert row["last_run"] == "2025-26-autumn-r1"
    pay(ledger, "2025-26/autumn")  # a supplementary run pays the arrears
    [row] = rows_of(ledger.store, "paid-vs-due")
    assert (row["outstanding_pence"], row["status"], row["explained_by"]) == (0, "settled", "")


def test_hours_plan_counts_and_run_rate(ledger: Ledger, clock: Any) -> None:
    reference(ledger)
    ledger.issue_plan("P1", "X1", "100001", date(2025, 9, 1), hours=Decimal("20"))
    ledger.issue_plan("P2", "X2", "100001", date(2025, 10, 1), band="B")  # not there at the start
    [row] = rows_of(ledger.store, "funding")
    # 20 h × £11.81 × 38 weeks − £6,000 = £2,975.60 a year on 1 September
    assert (row["plans"], row["plans_hours"], row["plans_band"], row["bands"]) == (2, 1, 1, "B:1")
    assert row["run_rate_pence"] == 297560
    assert row["paid_pence"] == 0 and row["difference_pence"] == row["due_pence"] > 0


def test_periods_reach_the_ledgers_date_and_missing_terms_are_named(ledger: Ledger, clock: Any) -> None:
    ledger.add_school("100001", "Oakfield Primary", "mainstream")
    ledger.set_tariff("2025-26", {"C": 500000})
    ledger.issue_plan("P1", "X1", "100001", date(2025, 9, 1), band="C")
    assert [r["period"] for r in rows_of(ledger.store, "funding")] == ["2025-26/autumn"]
    clock.advance(days=220)  # April 2026: financial year 2026-27 has no tariff yet
    ledger.add_school("100002", "Riverside Academy", "mainstream")
    found = rows_of(ledger.store, "funding")
    assert [r["period"] for r in found] == ["2025-26/autumn", "2025-26/spring", "2025-26/summer"]
    summer = found[-1]
    assert summer["unpriced_plans"] == 1 and summer["due_pence"] == 0
    assert summer["missing"] == "no tariff for band C in financial year 2026-27"
    assert found[0]["missing"] == "" and found[0]["due_pence"] == 166667


# Reconciliation.


def test_paid_equals_the_payment_files_to_the_penny(ledger: Ledger, clock: Any, tmp_path: Path) -> None:
    out = tmp_path / "payments"
    run_all(ledger, clock, out)
    files = sorted(out.glob("payments-*.csv"))
    assert len(files) == 3
    by_school: dict[str, int] = {}
    for path in files:
        for row in read_csv(path):
            by_school[row["school_urn"]] = by_school.get(row["school_urn"], 0) + int(row["total_pence"])
    found = rows_of(ledger.store, "funding")
    paid: dict[str, int] = {}
    for row in found:
        paid[row["school_urn"]] = paid.get(row["school_urn"], 0) + row["paid_pence"]
    assert paid == by_school
    assert funding.totals(found)["paid_pence"] == sum(by_school.values())
    # Every period paid is settled except what the change after the last run touched.
    outstanding = [r for r in rows_of(ledger.store, "paid-vs-due")
                   if r["outstanding_pence"] and r["period"].startswith("2025-26")]
    assert [(r["period"], r["school_urn"]) for r in outstanding] == [("2025-26/summer", "100001")]
    assert "P2/4" in outstanding[0]["explained_by"].split()


def test_hours_vs_band_totals_are_the_sums_of_their_rows(ledger: Ledger, clock: Any,
                                                         tmp_path: Path) -> None:
    run_all(ledger, clock, tmp_path / "payments")
    with view(ledger.store, ["hours-vs-band"]) as v:
        found = hours_vs_band.rows(v)
        bands = hours_vs_band.calibration(v)
    plans = [r for r in found if r["level"] == "plan"]
    assert [(r["plan_ref"], r["band"], r["transferred_on"]) for r in plans] == [
        ("P1", "B", "2025-11-03"), ("P3", "C", "2026-01-05"), ("P5", "A", "2025-11-03")]
    p1 = plans[0]
    # 27.5 h × £11.81 × 38 − £6,000 = £6,341.45 before; band B £3,100: protected to 31 March
    assert (p1["prior_annual_pence"], p1["band_annual_pence"], p1["protection_annual_pence"],
            p1["difference_pence"], p1["difference_percent"]) == (634145, 310000, 324145, -324145, "-51.12")
    assert plans[1]["protection_annual_pence"] == 0  # not protected
    money = ("plans", "prior_annual_pence", "band_annual_pence", "protection_annual_pence",
             "difference_pence")
    for level, key in (("school", "school_urn"), ("band", "band"), ("setting", "setting")):
        totals = [r for r in found if r["level"] == level]
        assert totals
        for total in totals:
            members = [r for r in plans if r[key] == total[key]]
            for column in money:
                assert total[column] == sum(r[column] for r in members), (level, column)
    overall = found[-1]
    assert overall["level"] == "overall"
    for column in money:
        assert overall[column] == sum(r[column] for r in plans)
    assert overall["difference_pence"] == overall["band_annual_pence"] - overall["prior_annual_pence"]
    assert [(b["band"], b["plans"]) for b in bands] == [("A", 1), ("B", 1), ("C", 1)]
    assert bands[0]["prior_total_pence"] == plans[2]["prior_annual_pence"]


def test_band_calibration_is_exact_and_rounds_half_up(tmp_path: Path) -> None:
    db = ProjectionDB(tmp_path / "p.sqlite")
    fold = hours_vs_band.HoursVsBand()
    with db.transaction() as conn:
        fold.create(conn)
        for i, prior in enumerate((100, 200, 301, 400)):  # mean 250.25, median 250.5
            conn.execute("INSERT INTO hv_row VALUES (?, ?, ?, 'X', '100001', 'mainstream', "
                         "'2025-11-03', '2025-26', 'B', ?, 310, 0, '', '', '', '[]')",
                         (f"P{i}", f"P{i}/2", i, prior))
        conn.execute("INSERT INTO hv_row VALUES ('Q', 'Q/2', 9, 'X', '100001', 'mainstream', "
                     "'2025-11-03', '2025-26', 'C', 999, 500, 0, '', '', '', '[]')")
    [b, c] = hours_vs_band.calibration_rows(db.conn)
    assert (b["plans"], b["prior_mean_pence"], b["prior_median_pence"], b["prior_min_pence"],
            b["prior_max_pence"], b["rate_minus_mean_pence"]) == (4, 250, 251, 100, 400, 60)
    assert (b["prior_total_pence"], b["band_total_pence"]) == (1001, 1240)
    assert (c["plans"], c["prior_mean_pence"], c["prior_median_pence"]) == (1, 999, 999)
    assert hours_vs_band.percent(-1, 3) == "-33.33" and hours_vs_band.percent(1, 8) == "12.50"
    assert hours_vs_band.percent(1, 0) == ""
    db.close()


# Tracking, exactly once, resume, rebuild.


def test_an_update_reads_only_the_new_events(ledger: Ledger, clock: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = ledger.store
    reference(ledger)
    ledger.issue_plan("P1", "X1", "100001", date(2025, 9, 1), band="C")
    reads: list[tuple[int, int]] = []
    original = StoredPages.pages

    def spy(self: StoredPages, after: int = 0, upto: int | None = None, *args: Any, **kw: Any) -> Any:
        count = 0
        for rows in original(self, after, upto, *args, **kw):
            count += len(rows)
            yield rows
        reads.append((after, count))

    monkeypatch.setattr(StoredPages, "pages", spy)
    rows_of(store, "funding")
    head = store.max_position()
    assert reads == [(0, head)]
    db = ProjectionDB(projections_path(store.location))
    assert db.tracked("school-periods").position == head  # type: ignore[union-attr]
    db.close()
    ledger.issue_plan("P2", "X2", "100002", date(2025, 9, 1), band="B")
    ledger.change_band("P1", "D", date(2025, 10, 1), "annual-review")
    reads.clear()
    found = rows_of(store, "funding")
    assert reads == [(head, 2)]
    assert [r["school_urn"] for r in found] == ["100001", "100002"]
    reads.clear()
    rows_of(store, "funding")
    assert reads == [(store.max_position(), 0)]


def test_killed_mid_page_it_resumes_and_never_double_counts(
        ledger: Ledger, clock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_all(ledger, clock, tmp_path / "payments")
    store = ledger.store
    path = projections_path(store.location)
    folds = folds_for(["funding"])
    calls = {"n": 0}
    original = SchoolPeriods.fold_other

    def dies(self: SchoolPeriods, n: Any, decoder: Any) -> None:
        original(self, n, decoder)
        if n.topic == "payment.school_paid":
            calls["n"] += 1
            if calls["n"] == 5:  # some pages (with payments) are committed before this
                raise KeyboardInterrupt("killed")

    monkeypatch.setattr(SchoolPeriods, "fold_other", dies)
    db = ProjectionDB(path)
    with pytest.raises(KeyboardInterrupt):
        catch_up(store, db, folds, page=7)
    reached = db.tracked("school-periods").position  # type: ignore[union-attr]
    assert 0 < reached < store.max_position()
    assert reached % 7 == 0  # only whole pages were committed
    paid_before = db.conn.execute("SELECT SUM(pence) FROM sp_spaid").fetchone()[0]
    assert paid_before > 0
    # The committed pages' payment lines wait, whole, for the sum before the next refresh.
    lines = db.conn.execute("SELECT COUNT(*), SUM(pence) FROM sp_line").fetchone()
    assert lines[0] > 0 and lines[1] == paid_before
    assert db.conn.execute("SELECT COUNT(*) FROM sp_paid").fetchone()[0] == 0
    db.close()
    monkeypatch.setattr(SchoolPeriods, "fold_other", original)

    resumed = write_all(store.location, clock, tmp_path / "resumed")  # resumes from `reached`
    invoke(store.location, clock, rebuild_cmd)
    rebuilt = write_all(store.location, clock, tmp_path / "rebuilt")
    assert resumed == rebuilt
    paid = sum(int(r["paid_pence"]) for r in read_csv(tmp_path / "resumed" / "funding.csv"))
    files = sum(int(r["total_pence"]) for p in (tmp_path / "payments").glob("payments-*.csv")
                for r in read_csv(p))
    assert paid == files


def test_killed_while_recomputing_it_resumes(ledger: Ledger, clock: Any, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    run_all(ledger, clock, tmp_path / "payments")
    store = ledger.store
    from topup_ledger.engine import cores
    from topup_ledger.projections import base
    from topup_ledger.projections.school_periods import recompute

    monkeypatch.setattr(base, "CHUNK", 2)
    monkeypatch.setattr(cores, "cores", lambda: 1)  # one process: the count below is its
    calls = {"n": 0}
    original = recompute.plan_rows

    def dies(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # the first chunk of two plans is committed, the second is not
            raise RuntimeError("killed")
        return original(*args)

    monkeypatch.setattr(recompute, "plan_rows", dies)
    db = ProjectionDB(projections_path(store.location))
    with pytest.raises(RuntimeError):
        catch_up(store, db, folds_for(["funding"]))
    dirty = db.conn.execute("SELECT COUNT(*) FROM sp_dirty").fetchone()[0]
    assert dirty == 3  # 5 plans, 2 recomputed
    db.close()
    monkeypatch.setattr(recompute, "plan_rows", original)
    resumed = write_all(store.location, clock, tmp_path / "resumed")
    invoke(store.location, clock, rebuild_cmd)
    assert write_all(store.location, clock, tmp_path / "rebuilt") == resumed


def test_a_rebuild_gives_byte_identical_files(ledger: Ledger, clock: Any, tmp_path: Path) -> None:
    store = ledger.store
    for step, _ in enumerate(scenario(ledger, clock, tmp_path / "payments")):
        incremental = write_all(store.location, clock, tmp_path / f"step-{step}")
    assert set(incremental) == {f"{name}.{suffix}" for name in
                                ("funding", "paid-vs-due", "hours-vs-band", "band-calibration")
                                for suffix in ("csv", "parquet")}
    path = projections_path(store.location)
    result = invoke(store.location, clock, rebuild_cmd)
    assert "rebuilt school-periods (for funding, paid-vs-due), hours-vs-band" in result.output
    assert write_all(store.location, clock, tmp_path / "rebuilt") == incremental
    path.unlink()  # from nothing at all: no projection file
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    assert write_all(store.location, clock, tmp_path / "fresh") == incremental


def test_rebuild_of_one_projection_leaves_the_other(ledger: Ledger, clock: Any, tmp_path: Path) -> None:
    run_all(ledger, clock, tmp_path / "payments")
    store = ledger.store
    write_all(store.location, clock, tmp_path / "a")
    result = invoke(store.location, clock, rebuild_cmd, "--projection", "hours-vs-band", "--json")
    assert '"rebuilt": [\n    "hours-vs-band"\n  ]' in result.stdout
    db = ProjectionDB(projections_path(store.location))
    tracked = {row[0]: row[1] for row in db.conn.execute("SELECT projection, position FROM tracking")}
    assert tracked == {"school-periods": store.max_position(), "hours-vs-band": store.max_position()}
    db.close()


def test_a_projection_file_of_another_ledger_is_rebuilt(location: str, clock: Any, tmp_path: Path) -> None:
    first = EventStore(location)
    ledger = Ledger(first, clock=clock)
    reference(ledger)
    ledger.issue_plan("P1", "X1", "100001", date(2025, 9, 1), band="C")
    projection = tmp_path / "shared.projections.sqlite"
    with view(first, ["funding"], path=projection) as v:
        assert funding.rows(v)[0]["due_pence"] == 166667
    other_location = str(tmp_path / "other.sqlite")
    other = EventStore(other_location, create=True)
    other_ledger = Ledger(other, clock=clock)
    reference(other_ledger)
    other_ledger.issue_plan("P9", "X9", "100002", date(2025, 9, 1), band="B")
    with view(other, ["funding"], path=projection) as v:
        [row] = funding.rows(v)
    assert (row["school_urn"], row["due_pence"]) == ("100002", 103333)
    first.close()
    other.close()


def test_state_grows_with_plans_not_with_events(ledger: Ledger, clock: Any) -> None:
    reference(ledger)
    for i in range(4):
        ledger.issue_plan(f"P{i}", f"X{i}", "100001", date(2025, 9, 1), band="C")
    store = ledger.store
    path = projections_path(store.location)

    def sizes() -> dict[str, int]:
        conn = sqlite3.connect(path)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name LIKE 'sp_%'")]
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
        conn.close()
        return counts

    pay(ledger, "2025-26/autumn")
    rows_of(store, "funding")
    before, events = sizes(), store.max_position()
    for _ in range(5):
        ledger.set_tariff("2025-26", {"C": 500000}, reason="confirmed again")  # changes nothing
        pay(ledger, "2025-26/autumn")  # and pays nothing new
    rows_of(store, "funding")
    after = sizes()
    assert store.max_position() > events
    assert {t: n for t, n in after.items() if t != "sp_ref"} == {
        t: n for t, n in before.items() if t != "sp_ref"}


# As of a recorded time.


def test_as_of_gives_the_projection_as_it_was_known(ledger: Ledger, clock: Any, tmp_path: Path) -> None:
    store = ledger.store
    snapshots: dict[str, tuple[str, dict[str, bytes]]] = {}
    for step in scenario(ledger, clock, tmp_path / "payments"):
        if step in ("autumn paid", "transfers", "summer paid"):
            moment = clock.now.isoformat()
            snapshots[step] = (moment, write_all(store.location, clock, tmp_path / step.replace(" ", "-")))
        clock.advance(seconds=30)  # a time between events
    for step, (moment, files) in snapshots.items():
        out = tmp_path / f"as-of-{step.replace(' ', '-')}"
        replayed = write_all(store.location, clock, out, "--as-of", moment)
        stem = "-as-of-" + parse_time(moment).strftime("%Y%m%dT%H%M%SZ")
        assert {name.replace(stem, ""): data for name, data in replayed.items()} == files, step
    # Before the first event: nothing was known.
    result = invoke(store.location, clock, funding_cmd, "--as-of", "2025-01-01", "--out",
                    str(tmp_path / "empty"), "--json")
    assert '"ledger_position": 0' in result.stdout and '"rows": []' in result.stdout
    # As of now is the projection itself.
    now = invoke(store.location, clock, funding_cmd, "--as-of", "2099-12-31", "--out",
                 str(tmp_path / "now"), "--json")
    assert f'"ledger_position": {store.max_position()}' in now.stdout


def test_position_at_finds_the_last_event_recorded_by_then(ledger: Ledger, clock: Any) -> None:
    reference(ledger)  # 9 events, one second apart from 09:00:01
    store = ledger.store
    assert position_at(store, parse_time("2025-09-01T09:00:00Z"))[0] == 0
    assert position_at(store, parse_time("2025-09-01T09:00:01Z"))[0] == 1
    assert position_at(store, parse_time("2025-09-01T09:00:04.5Z"))[0] == 4
    assert position_at(store, parse_time("2025-09-01"))[0] == store.max_position()  # end of the day
    assert parse_time("2025-09-01T10:00").isoformat() == "2025-09-01T10:00:00+00:00"
    with pytest.raises(ValueError):
        parse_time("yesterday")


# The command line.


def test_commands_print_tables_and_json(ledger: Ledger, clock: Any, tmp_path: Path) -> None:
    run_all(ledger, clock, tmp_path / "payments")
    location = ledger.store.location
    out = str(tmp_path / "reports")
    text = invoke(location, clock, funding_cmd, "--period", "2025-26/spring", "--out", out).output
    assert "per-school funding as known at" in text and "2025-26/spring  100001" in text
    assert "2025-26/autumn" not in text and "funding-2025-26-spring.csv" in text
    school = invoke(location, clock, funding_cmd, "--school", "100003", "--json", "--out", out).stdout
    assert '"school_urn": "100003"' in school and '"school_urn": "100001"' not in school
    text = invoke(location, clock, reconcile_group, "paid-vs-due", "--out", out).output
    assert "underpaid" in text and "P2/4" in text
    text = invoke(location, clock, reconcile_group, "hours-vs-band", "--out", out).output
    assert "cost neutrality on the full cost at 2026-27 prices over the days funded: 3 plans" in text
    assert "at the transfers' prices (a year each): 3 plans" in text and "band calibration" in text
    bad = invoke(location, clock, funding_cmd, "--period", "2030-31/autumn", "--out", out, ok=False)
    assert bad.exit_code == 2 and "not a period the ledger has reached" in bad.output
    bad = invoke(location, clock, funding_cmd, "--school", "999999", "--out", out, ok=False)
    assert bad.exit_code == 2 and "school 999999 is not in the ledger" in bad.output
    bad = invoke(location, clock, funding_cmd, "--as-of", "last week", "--out", out, ok=False)
    assert bad.exit_code == 2 and "is not a time" in bad.output


def test_files_match_their_specs(ledger: Ledger, clock: Any, tmp_path: Path) -> None:
    import json

    import pyarrow.parquet as pq

    run_all(ledger, clock, tmp_path / "payments")
    files = write_all(ledger.store.location, clock, tmp_path / "out")
    spec_dir = Path(__file__).resolve().parent.parent / "projections"
    for name in ("funding", "paid-vs-due", "hours-vs-band", "band-calibration"):
        spec = json.loads((spec_dir / f"{name}.json").read_text())
        columns = [c["name"] for c in spec["columns"]]
        table = pq.read_table(tmp_path / "out" / f"{name}.parquet")
        assert table.column_names == columns
        assert files[f"{name}.csv"].startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads UTF-8
        header = files[f"{name}.csv"].removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode()
        assert header == ",".join(f'"{c}"' for c in columns)
        for column in spec["columns"]:
            if column["name"].endswith("_pence"):
                assert column["type"] == "int64"
                gbp = column["name"][:-6] + "_gbp"
                values = table.column(column["name"]).to_pylist()
                assert [f"{'-' if v < 0 else ''}{abs(v) // 100}.{abs(v) % 100:02d}" for v in values] \
                    == table.column(gbp).to_pylist()


def test_runner_module_names_every_output() -> None:
    assert set(runner.OUTPUTS) >= set(ALL) | {"band-calibration"}


def test_after_a_payment_only_differences_are_explained_again(ledger: Ledger, clock: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from topup_ledger.projections.school_periods import recompute

    reference(ledger)
    for i in range(3):
        ledger.issue_plan(f"P{i}", f"X{i}", "100001", date(2025, 9, 1), band="C")
    store = ledger.store
    assert {r["status"] for r in rows_of(store, "paid-vs-due")} == {"not paid yet"}
    recomputed: list[str] = []
    original = recompute.plan_rows

    def counting(ref: str, *args: Any) -> Any:
        recomputed.append(ref)
        return original(ref, *args)

    monkeypatch.setattr(recompute, "plan_rows", counting)
    pay(ledger, "2025-26/autumn")
    [row] = rows_of(store, "paid-vs-due")
    assert (row["status"], row["explained_by"], row["paid_pence"]) == ("settled", "", 3 * 166667)
    assert recomputed == []  # a payment changes paid, not due: no plan was priced again
    clock.advance(days=30)
    ledger.change_band("P1", "D", date(2025, 10, 1), "annual-review")
    [row] = rows_of(store, "paid-vs-due")
    assert recomputed == ["P1"] and row["explained_by"] == "P1/2"


def test_a_payment_for_one_period_leaves_the_others_explained(ledger: Ledger, clock: Any,
                                                              tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A backdated band change leaves autumn and spring underpaid; a supplementary autumn
    run pays autumn only. Only autumn is looked at again: spring stays explained by the
    change, as a rebuild from nothing explains it."""
    from topup_ledger.projections.school_periods import recompute

    reference(ledger)
    ledger.issue_plan("P0", "X0", "100001", date(2025, 9, 1), band="C")
    pay(ledger, "2025-26/autumn")
    clock.advance(days=120)
    pay(ledger, "2025-26/spring")
    clock.advance(days=10)
    ledger.change_band("P0", "D", date(2025, 10, 1), "annual-review")
    store = ledger.store
    before = {r["period"]: (r["status"], r["explained_by"]) for r in rows_of(store, "paid-vs-due")}
    assert before == {"2025-26/autumn": ("underpaid", "P0/2"), "2025-26/spring": ("underpaid", "P0/2")}
    looked_at: list[set[str]] = []
    original = recompute.explanations

    def counting(ref: str, plan: Any, periods: list[Any], *args: Any) -> Any:
        looked_at.append({p.id for p in periods})
        return original(ref, plan, periods, *args)

    monkeypatch.setattr(recompute, "explanations", counting)
    pay(ledger, "2025-26/autumn")  # supplementary: autumn's arrears only
    after = {r["period"]: (r["status"], r["explained_by"]) for r in rows_of(store, "paid-vs-due")}
    assert after == {"2025-26/autumn": ("settled", ""), "2025-26/spring": ("underpaid", "P0/2")}
    assert looked_at == []  # autumn now equals its due: nothing needed explaining there
    updated = write_all(store.location, clock, tmp_path / "updated")
    monkeypatch.setenv("TOPUP_PROJECTIONS", str(tmp_path / "fresh.projections.sqlite"))
    assert write_all(store.location, clock, tmp_path / "fresh") == updated
