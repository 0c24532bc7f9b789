"""The payment files `topup pay` writes, checked against their specs in projections/ (issue 3).

A run writes a school file (payments-…) and a line file (payment-lines-…), each as CSV and
Parquet from the same Arrow table. Here: exact columns, order and Arrow types from the spec,
the same rows in CSV and Parquet, school totals equal to the sum of their lines to the penny,
pounds that are pence ÷ 100 with two decimals, the seal as HEX@POSITION, owner-only files and
the --json report agreeing with the files. Amounts are worked out by hand in the comments.
"""

from __future__ import annotations

import csv
import json
import re
import stat
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import Result

from topup_ledger.domain.calendar import termly_periods
from topup_ledger.storage.known import read_known
from topup_ledger.storage.store import EventStore

Invoke = Callable[..., Result]
SPECS = Path(__file__).resolve().parents[1] / "projections"
ARROW = {"string": pa.string(), "int64": pa.int64(), "int32": pa.int32(), "bool": pa.bool_()}
KINDS = ("regular", "arrears", "clawback", "protection", "cushion")
SEAL = re.compile(r"^[0-9a-f]{64}@[0-9]+$")
ST_MARYS, ELM, BEACON = "100001", "100002", "100003"
NAMES = {ST_MARYS: "St Mary's, Oakfield", ELM: "Elm Academy", BEACON: 'Beacon "Special" School'}
PERIOD_ORDER = {p.id: i for i, p in enumerate(
    [*termly_periods("2025-26"), *termly_periods("2026-27")])}


def spec_columns(name: str) -> list[tuple[str, pa.DataType]]:
    spec = json.loads((SPECS / f"{name}.json").read_text(encoding="utf-8"))
    return [(c["name"], ARROW[c["type"]]) for c in spec["columns"]]


def gbp(pence: int) -> str:
    """Pence as pounds with two decimals, worked out independently of the product."""
    return f"{Decimal(pence) / 100:.2f}"


def read_checked(path_stem: Path, name: str) -> list[dict[str, Any]]:
    """Read stem.csv and stem.parquet, check both against the spec, return the rows."""
    columns = spec_columns(name)
    names = [n for n, _ in columns]
    csv_path, parquet_path = (path_stem.with_name(path_stem.name + s) for s in (".csv", ".parquet"))
    for path in (csv_path, parquet_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    parquet = pq.read_table(parquet_path)
    assert [(f.name, f.type) for f in parquet.schema] == columns
    assert parquet.schema.metadata[b"projection"] == name.encode()

    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        text_rows = list(csv.reader(handle))
    assert text_rows[0] == names
    from_csv = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(
        column_types=dict(columns), strings_can_be_null=False, quoted_strings_can_be_null=False))
    assert from_csv.column_names == names
    rows = parquet.to_pylist()
    assert from_csv.to_pylist() == rows
    # the CSV's own text is plain: whole pence without decimals, pounds as written
    assert [[str(v) for v in row.values()] for row in rows] == text_rows[1:]
    return rows


def check_run_files(report: dict[str, Any], out: Path) -> tuple[list[dict[str, Any]],
                                                                 list[dict[str, Any]]]:
    run_id = report["run_id"]
    suffix = "-supplementary" if report["supplementary"] else ""
    school_stem, line_stem = out / f"payments-{run_id}{suffix}", out / f"payment-lines-{run_id}{suffix}"
    assert sorted(report["files"]) == sorted(
        str(stem.with_name(stem.name + ext)) for stem in (school_stem, line_stem)
        for ext in (".csv", ".parquet"))
    schools = read_checked(school_stem, "payments")
    lines = read_checked(line_stem, "payment-lines")
    kind = "supplementary" if report["supplementary"] else "main"

    assert [r["school_urn"] for r in schools] == sorted(r["school_urn"] for r in schools)
    for row in schools:
        assert (row["run_id"], row["run_kind"], row["period"]) == (run_id, kind, report["period"])
        assert row["school_name"] == NAMES[row["school_urn"]]
        mine = [line for line in lines if line["school_urn"] == row["school_urn"]]
        for k in KINDS:
            assert row[f"{k}_pence"] == sum(line["amount_pence"] for line in mine
                                            if line["line_kind"] == k)
        assert row["total_pence"] == sum(row[f"{k}_pence"] for k in KINDS)
        assert row["total_pence"] == sum(line["amount_pence"] for line in mine)
        assert row["total_gbp"] == gbp(row["total_pence"])
        assert SEAL.match(row["seal"]) and row["seal"] == report["seal"]

    order = [(line["school_urn"], line["plan_ref"], PERIOD_ORDER[line["for_period"]])
             for line in lines]
    assert order == sorted(order)
    for line in lines:
        assert (line["run_id"], line["run_kind"], line["period"]) == (run_id, kind, report["period"])
        assert line["line_kind"] in KINDS and line["amount_pence"] != 0
        assert line["amount_gbp"] == gbp(line["amount_pence"])
        assert line["caused_by"] and all(part for part in line["caused_by"].split(" "))
        if line["for_period"] == report["period"]:
            assert line["line_kind"] in ("regular", "protection", "cushion")
        else:
            assert line["line_kind"] == ("arrears" if line["amount_pence"] > 0 else "clawback")

    # the --json report agrees with the files
    assert report["schools"] == [
        {"school_urn": r["school_urn"], "total_pence": r["total_pence"],
         "lines": sum(1 for line in lines if line["school_urn"] == r["school_urn"])}
        for r in schools]
    assert report["total_pence"] == sum(r["total_pence"] for r in schools)
    assert report["total_gbp"] == gbp(report["total_pence"])
    return schools, lines


def pay(cli: Invoke, period: str, out: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(cli("pay", period, "--out", str(out), "--json").output)
    return report


def events(location: str) -> int:
    store = EventStore(location)
    try:
        return store.max_position()
    finally:
        store.close()


def totals(schools: list[dict[str, Any]]) -> dict[str, tuple[int, int, int, int, int]]:
    return {r["school_urn"]: (r["regular_pence"], r["arrears_pence"], r["clawback_pence"],
                              r["protection_pence"], r["total_pence"]) for r in schools}


@pytest.fixture
def county(cli: Invoke) -> Invoke:
    """Three schools (one special), band values and an hourly rate, four plans from 1 Sep."""
    for urn, name in NAMES.items():
        cli("school", "add", urn, "--name", name,
            "--setting", "special" if urn == BEACON else "mainstream")
    for year in ("2025-26", "2026-27"):
        cli("tariff", "set", "--year", year, "--band", "B=3,100", "--band", "C=5000",
            "--band", "D=7000.00")
    cli("rate", "set", "--year", "2025-26", "--hourly", "12.00", "--weeks", "38")
    cli("plan", "issue", "P1", "--pupil", "PR-1", "--school", ST_MARYS, "--from", "2025-09-01",
        "--band", "B")
    cli("plan", "issue", "P2", "--pupil", "PR-2", "--school", ST_MARYS, "--from", "2025-09-01",
        "--hours", "25")
    cli("plan", "transfer", "P2", "--band", "B", "--from", "2026-01-01",
        "--protect-until", "2026-02-14")
    cli("plan", "issue", "P3", "--pupil", "PR-3", "--school", ELM, "--from", "2025-09-01",
        "--band", "C")
    cli("plan", "issue", "P4", "--pupil", "PR-4", "--school", BEACON, "--from", "2025-09-01",
        "--band", "D")
    return cli


def test_payment_files_match_their_specs_and_the_ledger(county: Invoke, location: str,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "payments"
    autumn = pay(county, "2025-26/autumn", out)
    assert (autumn["run_id"], autumn["recorded"], autumn["supplementary"]) == (
        "2025-26-autumn-r1", True, False)
    schools, lines = check_run_files(autumn, out)
    # St Mary's: P1 310000/3 → 103333; P2 (25 × 1200 × 38 − 600000)/3 = 180000.
    # Elm: P3 500000/3 → 166667. Beacon: P4 700000/3 → 233333.
    assert totals(schools) == {ST_MARYS: (283333, 0, 0, 0, 283333), ELM: (166667, 0, 0, 0, 166667),
                               BEACON: (233333, 0, 0, 0, 233333)}
    assert autumn["total_pence"] == 683333 and autumn["total_gbp"] == "6833.33"
    assert len(lines) == 4

    store = EventStore(location)
    try:  # the seal printed is the one recorded: the chain head and the position it covers
        seal = read_known(store).seals[-1][1]
        assert autumn["seal"] == f"{seal.head}@{seal.position}"
    finally:
        store.close()

    county("plan", "band", "P1", "--band", "D", "--from", "2025-11-01", "--reason", "annual-review")
    county("plan", "move", "P3", "--school", ST_MARYS, "--from", "2025-12-01")
    spring = pay(county, "2025-26/spring", out)
    schools, lines = check_run_files(spring, out)
    # P1: autumn (310000 + 700000)/2/3 = 168333.33 → 168333, +65000 arrears; spring D 175000.
    # P2: spring on B 77500; protection (540000 − 310000) × 3/12 × 45/90 = 28750.
    # P3: autumn at Elm 91/122: 500000 × 91/366 = 124316.94 → 124317, less 166667 = −42350;
    #     at St Mary's 31/122: 42349.73 → 42350 arrears; spring there 167349.73 → 167350 − 42350
    #     = 125000. P4: 175000.
    assert totals(schools) == {
        ST_MARYS: (175000 + 77500 + 125000, 65000 + 42350, 0, 28750, 513600),
        ELM: (0, 0, -42350, 0, -42350),
        BEACON: (175000, 0, 0, 0, 175000)}
    assert spring["total_pence"] == 646250 and spring["total_gbp"] == "6462.50"
    assert {(line["plan_ref"], line["line_kind"], line["for_period"], line["amount_pence"])
            for line in lines} == {
        ("P1", "arrears", "2025-26/autumn", 65000), ("P1", "regular", "2025-26/spring", 175000),
        ("P2", "regular", "2025-26/spring", 77500), ("P2", "protection", "2025-26/spring", 28750),
        ("P3", "clawback", "2025-26/autumn", -42350), ("P3", "arrears", "2025-26/autumn", 42350),
        ("P3", "regular", "2025-26/spring", 125000), ("P4", "regular", "2025-26/spring", 175000)}
    p1_arrears = next(line for line in lines if line["plan_ref"] == "P1" and
                      line["line_kind"] == "arrears")
    assert (p1_arrears["band_or_hours"], p1_arrears["caused_by"], p1_arrears["days"]) == (
        "B→D", "P1/2", 122)

    # A backdated cessation after the spring run: a supplementary spring run.
    county("plan", "cease", "P4", "--from", "2026-03-01", "--reason", "moved out of the LA")
    supplementary = pay(county, "2025-26/spring", out)
    assert (supplementary["run_id"], supplementary["recorded"], supplementary["supplementary"]) == (
        "2025-26-spring-r2", True, True)
    assert all("supplementary" in Path(f).name for f in supplementary["files"])
    schools, lines = check_run_files(supplementary, out)
    # P4 spring as known now: 59 of 90 days: 175000 × 59/90 = 114722.22; cumulative
    # 233333.33 + 114722.22 = 348055.56 → 348056, less 233333 = 114723; less 175000 paid
    # = −60277, a (negative) regular line: it is the run's own term.
    assert totals(schools) == {BEACON: (-60277, 0, 0, 0, -60277)}
    assert schools[0]["total_gbp"] == "-602.77" and supplementary["total_gbp"] == "-602.77"
    assert [(line["plan_ref"], line["caused_by"]) for line in lines] == [("P4", "P4/2")]

    # Nothing new: nothing recorded, and the files of r2 are written again byte for byte.
    written = {f: Path(f).read_bytes() for f in supplementary["files"]}
    before = events(location)
    again = pay(county, "2025-26/spring", out)
    assert (again["run_id"], again["recorded"], again["total_pence"]) == (
        "2025-26-spring-r2", False, 0)
    assert {f: Path(f).read_bytes() for f in again["files"]} == written
    assert events(location) == before


def test_the_text_output_names_the_run_seal_and_files(county: Invoke, tmp_path: Path) -> None:
    result = county("pay", "2025-26/autumn", "--out", str(tmp_path))
    assert "recorded payment run 2025-26-autumn-r1 for 2025-26/autumn: 3 schools, " \
           "total £6,833.33" in result.output
    assert re.search(r"^seal [0-9a-f]{64}@[0-9]+$", result.output, re.MULTILINE)
    assert str(tmp_path / "payments-2025-26-autumn-r1.csv") in result.output
    again = county("pay", "2025-26/autumn", "--out", str(tmp_path))
    assert "nothing new to pay for 2025-26/autumn since run 2025-26-autumn-r1" in again.output


def test_a_run_with_nothing_to_pay_writes_files_with_only_headers(cli: Invoke,
                                                                   tmp_path: Path) -> None:
    cli("school", "add", ST_MARYS, "--name", NAMES[ST_MARYS], "--setting", "mainstream")
    report = pay(cli, "2025-26/autumn", tmp_path)
    assert (report["recorded"], report["total_pence"], report["schools"]) == (True, 0, [])
    schools, lines = check_run_files(report, tmp_path)
    assert schools == [] and lines == []


def test_files_are_the_same_bytes_however_the_rows_are_batched(
        county: Invoke, location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's files are built a batch of rows at a time from its payments read a page at a
    time (a national run does not fit in memory as Python rows); the bytes, which the
    ledger records digests of, must not depend on either size."""
    from topup_ledger.io import arrow_files, payment_files
    from topup_ledger.storage import runs

    report = pay(county, "2025-26/autumn", tmp_path / "paid")
    written = {}
    for rows, schools in ((1, 1), (2, 3), (10_000, 200)):
        monkeypatch.setattr(arrow_files, "ROWS_PER_BATCH", rows)
        monkeypatch.setattr(runs, "SCHOOLS_PER_PAGE", schools)
        out = tmp_path / f"batched-{rows}"
        store = EventStore(location)
        try:
            paths = payment_files.write_files_for_run(store, report["run_id"], out)
        finally:
            store.close()
        written[rows] = {p.name: p.read_bytes() for p in paths}
    assert written[1] == written[2] == written[10_000]
    assert written[1] == {p.name: p.read_bytes() for p in (tmp_path / "paid").iterdir()}
    lines = read_checked(tmp_path / "batched-1" / f"payment-lines-{report['run_id']}",
                         "payment-lines")
    assert [r["plan_ref"] for r in lines] == ["P1", "P2", "P3", "P4"]  # by school, then plan


def test_the_line_file_is_written_a_row_group_at_a_time_as_the_whole_table_would_be(
        county: Invoke, location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only one Parquet row group's rows are held at once: the file must be, byte for byte,
    what pyarrow writes for the whole table split into groups of that many rows (as it
    split every file written so far, at its own largest group), and the CSV what it writes
    for the whole table."""
    from topup_ledger.io import arrow_files, payment_files

    report = pay(county, "2025-26/autumn", tmp_path / "paid")
    stem = f"payment-lines-{report['run_id']}"
    whole = pq.read_table(tmp_path / "paid" / f"{stem}.parquet")
    for batch, group in ((1, 3), (2, 3), (3, 2), (10_000, 3)):
        monkeypatch.setattr(arrow_files, "ROWS_PER_BATCH", batch)
        monkeypatch.setattr(arrow_files, "ROWS_PER_GROUP", group)
        out = tmp_path / f"groups-{batch}-{group}"
        store = EventStore(location)
        try:
            payment_files.write_files_for_run(store, report["run_id"], out)
        finally:
            store.close()
        written = pq.ParquetFile(out / f"{stem}.parquet").metadata
        assert [written.row_group(i).num_rows for i in range(written.num_row_groups)] == \
            [group] * (whole.num_rows // group) + ([whole.num_rows % group] if whole.num_rows % group else [])
        expected = pa.BufferOutputStream()
        pq.write_table(whole, expected, compression="zstd", row_group_size=group)
        assert (out / f"{stem}.parquet").read_bytes() == expected.getvalue().to_pybytes()
        assert (out / f"{stem}.csv").read_bytes() == (tmp_path / "paid" / f"{stem}.csv").read_bytes()
    assert whole.num_rows == 4 and arrow_files.ROWS_PER_GROUP == 3  # three groups and two were tried


def test_files_of_more_rows_than_one_group_are_split_where_pyarrow_splits_them(
        tmp_path: Path) -> None:
    """The group size is pyarrow's largest, which every payment file written so far was
    split by: a file's bytes (and so its recorded digest) depend on it."""
    from topup_ledger.io import arrow_files

    table = pa.table({"n": pa.array(range(arrow_files.ROWS_PER_GROUP + 1), type=pa.int32())})
    pq.write_table(table, tmp_path / "whole.parquet")
    found = pq.ParquetFile(tmp_path / "whole.parquet").metadata
    assert [found.row_group(i).num_rows for i in range(found.num_row_groups)] == [
        arrow_files.ROWS_PER_GROUP, 1]


def test_payments_out_of_school_order_are_refused(county: Invoke, location: str,
                                                  tmp_path: Path) -> None:
    from topup_ledger.io.payment_files import write_run_files
    from topup_ledger.storage.runs import run_payments

    report = pay(county, "2025-26/autumn", tmp_path / "paid")
    store = EventStore(location)
    try:
        paid = list(run_payments(store, report["run_id"]))
        run = read_known(store).runs[-1][1].fact
    finally:
        store.close()
    assert [p.school for p in paid] == sorted(NAMES)
    with pytest.raises(ValueError, match=rf"payments of run {report['run_id']} are not in "
                                         rf"school order \({ELM} after {BEACON}\)"):
        write_run_files(run, paid[::-1], NAMES, tmp_path / "reversed")
