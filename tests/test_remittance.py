"""Remittance matching (issue 23): ``topup remittance import`` and ``topup reconcile
paid-vs-remitted``, on SQLite and PostgreSQL.

Hand-worked releases (default terms; band C £4,000 and D £7,000 a year): autumn pays 4/12 —
C £1,333.33, D £2,333.33; spring pays 3/12 — C £1,000.00, D £1,750.00.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq

from conftest import Invoke

OAK, ELM, ASH = "100001", "100002", "100003"
AUTUMN, SPRING = "2025-26-autumn-r1", "2025-26-spring-r1"


def setup_runs(cli: Invoke, tmp_path: Path) -> None:
    cli("school", "add", OAK, "--name", "Oak Primary", "--setting", "mainstream")
    cli("school", "add", ELM, "--name", "Elm Special", "--setting", "special")
    cli("school", "add", ASH, "--name", "Ash Academy", "--setting", "mainstream")
    cli("tariff", "set", "--fy", "2025-26", "--band", "C=4000", "--band", "D=7000")
    for plan, school, band in (("P1", OAK, "C"), ("P2", ELM, "D"), ("P3", ASH, "C")):
        cli("plan", "issue", plan, "--pupil", f"PR-{plan}", "--school", school, "--from",
            "2025-09-01", "--band", band)
    cli("pay", "2025-26/autumn", "--out", str(tmp_path / "autumn"))
    cli("pay", "2025-26/spring", "--out", str(tmp_path / "spring"))


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


REMITTANCE = [
    [OAK, AUTUMN, "£1,333.33", "12/12/2025"],  # matched
    [ELM, AUTUMN, "2000.00", "12/12/2025"],  # short by £333.33
    [ASH, AUTUMN, "1333.33", "12/12/2025"],  # paid twice: duplicate
    [ASH, AUTUMN, "1333.33", "15/12/2025"],
    ["100009", AUTUMN, "250.00", "12/12/2025"],  # no such payee in the run: unexpected
    [OAK, SPRING, "1000.01", "2026-03-20"],  # a penny over
    [ASH, SPRING, "1000.00", "2026-03-20"],  # matched; Elm's spring £1,750.00 is missing
]


def test_each_state_is_classified_and_a_reimport_records_nothing(cli: Invoke, tmp_path: Path) -> None:
    setup_runs(cli, tmp_path)
    remit = write_csv(tmp_path / "remit.csv", ["Supplier No", "Payment Ref", "Value", "Date Paid"],
                      REMITTANCE)
    maps = ["--map", "payee=Supplier No", "--map", "reference=Payment Ref", "--map", "amount=Value"]
    first = json.loads(cli("remittance", "import", str(remit), *maps, "--json").stdout)
    assert first == {"lines": 7, "recorded": 7, "already_recorded": 0}
    again = json.loads(cli("remittance", "import", str(remit), *maps, "--json").stdout)
    assert again == {"lines": 7, "recorded": 0, "already_recorded": 7}

    found = json.loads(cli("reconcile", "paid-vs-remitted", "--json", "--out",
                           str(tmp_path / "rec")).stdout)
    rows = [(r["run_id"], r["payee"], r["released_pence"], r["remitted_pence"],
             r["difference_pence"], r["payments"], r["state"]) for r in found["rows"]]
    assert rows == [
        (AUTUMN, OAK, 133333, 133333, 0, 1, "matched"),
        (AUTUMN, ELM, 233333, 200000, -33333, 1, "short"),
        (AUTUMN, ASH, 133333, 266666, 133333, 2, "duplicate"),
        (AUTUMN, "100009", 0, 25000, 25000, 1, "unexpected"),
        (SPRING, OAK, 100000, 100001, 1, 1, "over"),
        (SPRING, ELM, 175000, 0, -175000, 0, "missing"),
        (SPRING, ASH, 100000, 100000, 0, 1, "matched"),
    ]
    assert found["states"] == {"unexpected": 1, "matched": 2, "short": 1, "duplicate": 1,
                               "over": 1, "missing": 1}
    assert found["rows"][2]["sources"] == "remit.csv:4; remit.csv:5"
    written = pq.read_table(tmp_path / "rec" / "paid-vs-remitted.parquet").to_pylist()
    assert [(r["run_id"], r["payee"], r["state"]) for r in written] == [r[:2] + r[-1:] for r in rows]
    only = json.loads(cli("reconcile", "paid-vs-remitted", "--run", SPRING, "--json").stdout)
    assert [r["state"] for r in only["rows"]] == ["over", "missing", "matched"]
    text = cli("reconcile", "paid-vs-remitted").output
    assert "duplicate" in text and "−£333.33" in text


def test_a_withdrawn_or_held_run_is_not_expected_to_be_paid(cli: Invoke, tmp_path: Path) -> None:
    """Under two-person release, a prepared run is not released: nothing is missing for it,
    and a payment reported against it is unexpected."""
    setup_runs(cli, tmp_path)
    cli("policy", "set", "--release", "two-person")
    cli("plan", "band", "P1", "--band", "D", "--from", "2026-01-01", "--reason", "annual-review")
    cli("pay", "2025-26/spring", "--out", str(tmp_path / "d"))  # held: £750.00 more to Oak
    remit = write_csv(tmp_path / "r.csv", ["urn", "run", "amount", "date"],
                      [[OAK, "2025-26-spring-r2", "750.00", "2026-03-25"]])
    cli("remittance", "import", str(remit))
    found = json.loads(cli("reconcile", "paid-vs-remitted", "--run", "2025-26-spring-r2",
                           "--json").stdout)
    assert [(r["payee"], r["released_pence"], r["state"]) for r in found["rows"]] == [
        (OAK, 0, "unexpected")]


def test_a_bad_line_refuses_the_file_naming_line_and_column(cli: Invoke, tmp_path: Path) -> None:
    setup_runs(cli, tmp_path)
    bad = write_csv(tmp_path / "bad.csv", ["payee", "reference", "amount", "paid_on"],
                    [[OAK, AUTUMN, "1333.33", "2025-12-12"], [ELM, AUTUMN, "lots", "2025-12-12"]])
    result = cli("remittance", "import", str(bad), ok=False)
    assert result.exit_code == 2
    assert f"{bad}, line 3, column 'amount'" in result.output and "'lots'" in result.output
    assert json.loads(cli("reconcile", "paid-vs-remitted", "--json").stdout)["states"] == {
        "missing": 6}  # nothing recorded: every released payment is still missing
    missing = write_csv(tmp_path / "m.csv", ["payee", "amount", "paid_on"], [[OAK, "1", "2025-12-12"]])
    result = cli("remittance", "import", str(missing), ok=False)
    assert result.exit_code == 6 and "no column for reference" in result.output
    odd = cli("reconcile", "paid-vs-remitted", "--run", "../autumn", "--out", str(tmp_path / "o"),
              ok=False)
    assert odd.exit_code == 2 and "'../autumn' is not a run id" in odd.output
