"""Paying through the council's finance system (issue 22): schools as payees, the finance
mapping, the payment date and the finance files of a run, on SQLite and PostgreSQL.

The LA used here (default termly calendar: autumn is 1 Sep to 31 Dec 2025, share 4/12;
tariff 2025-26 A = £1,600, B = £3,100 a year; every plan from 1 Sep 2025, so paid its whole
autumn share):

- 100001 Oak Primary, maintained, cost centre CC100, one plan on B: 3100 × 4/12 = 1033.333…
  → £1,033.33
- 100002 Upton Academy, academy of Upton Learning Trust, supplier S01234, one plan on A:
  1600 × 4/12 = 533.333… → £533.33
- 100003 Hill House (independent), supplier S05555, plans on A and B: 533.33 + 1033.33
  = £1,566.66
- 100004 Far Special, another LA's (874), one plan on A: £533.33

Run total: 1033.33 + 533.33 + 1566.66 + 533.33 = £3,666.65.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import Result

from topup_ledger.audit.files import file_digest
from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.payees import first_working_day, payee_on
from topup_ledger.domain.recoveries import cash, owed_after, run_recoveries
from topup_ledger.io.finance_mapping import read_mapping
from topup_ledger.io.payment_files import write_files_for_run
from topup_ledger.storage.store import EventStore

Invoke = Callable[..., Result]
OAK, UPTON, HILL, FAR = "100001", "100002", "100003", "100004"
AUTUMN = "2025-26/autumn"
R1 = "2025-26-autumn-r1"


def set_up(cli: Invoke, *, payees: bool = True) -> None:
    cli("school", "add", OAK, "--name", "Oak Primary", "--setting", "mainstream")
    cli("school", "add", UPTON, "--name", "Upton Academy", "--setting", "mainstream")
    cli("school", "add", HILL, "--name", "=Hill House", "--setting", "independent")
    cli("school", "add", FAR, "--name", "Far Special", "--setting", "special")
    cli("rate", "set", "--fy", "2025-26", "--hourly", "11.81", "--weeks", "38")
    cli("tariff", "set", "--fy", "2025-26", "--band", "A=1600", "--band", "B=3100")
    for plan, pupil, school, band in (("P1", "PR-1", OAK, "B"), ("P2", "PR-2", UPTON, "A"),
                                      ("P3", "PR-3", HILL, "A"), ("P4", "PR-4", HILL, "B"),
                                      ("P5", "PR-5", FAR, "A")):
        cli("plan", "issue", plan, "--pupil", pupil, "--school", school, "--from", "2025-09-01",
            "--band", band)
    if payees:
        cli("school", "set", OAK, "--route", "maintained", "--cost-centre", "CC100",
            "--laestab", "8732001")
        cli("school", "set", UPTON, "--route", "academy", "--trust", "Upton Learning Trust",
            "--trust-ref", "TR4410", "--supplier", "S01234", "--laestab", "8734001")
        cli("school", "set", HILL, "--route", "independent", "--supplier", "S05555")
        cli("school", "set", FAR, "--route", "other-la", "--recoupment-la", "874")


def pay(cli: Invoke, out: Path, *more: str, ok: bool = True) -> Result:
    return cli("pay", AUTUMN, "--out", str(out), "--json", *more, ok=ok)


def rows_of(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), f"{path.name} has no byte-order mark"
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.reader(handle))


def runs(location: str) -> int:
    store = EventStore(location)
    try:
        return store.version("payments")
    finally:
        store.close()


def test_a_school_with_no_route_or_no_reference_is_refused_with_the_whole_list(
        cli: Invoke, location: str, tmp_path: Path) -> None:
    set_up(cli, payees=False)
    cli("school", "set", OAK, "--route", "maintained")  # no cost centre
    cli("school", "set", UPTON, "--route", "academy", "--trust", "Upton Learning Trust")
    cli("school", "set", FAR, "--route", "other-la", "--recoupment-la", "874")
    result = pay(cli, tmp_path / "out", ok=False)
    assert result.exit_code == 2
    assert result.output == (
        "error: the ledger is missing what this needs; nothing was recorded:\n"
        "  school 100001 (Oak Primary): route maintained but no cost centre (--cost-centre)\n"
        "  school 100002 (Upton Academy): route academy but no supplier reference (--supplier)\n"
        "  school 100003 (=Hill House): no funding route (`topup school set URN --route ...`)\n")
    assert runs(location) == 0
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_mixed_la_s_journal_ap_and_recoupment_files_hold_the_right_schools_and_amounts(
        cli: Invoke, tmp_path: Path) -> None:
    set_up(cli)
    out = tmp_path / "out"
    report = json.loads(pay(cli, out).output)
    assert report["total_pence"] == 366665  # 103333 + 53333 + 156666 + 53333
    assert report["finance"] == {
        "pay_on": "2025-09-01", "carried_pence": 0, "recovered_pence": 0,
        "by_route": {"maintained": {"schools": 1, "pence": 103333},
                     "academy": {"schools": 1, "pence": 53333},
                     "independent": {"schools": 1, "pence": 156666},
                     "other-la": {"schools": 1, "pence": 53333}}}
    today = "01/09/2025"  # 1 Sep 2025 is a Monday: the period's first working day
    about = f"SEND top-up {AUTUMN} (01/09/2025 to 31/12/2025), run {R1}"

    journal = rows_of(out / f"finance-journal-{R1}.csv")
    assert journal[0] == ["date", "cost_centre", "subjective", "cfr_code", "budget_line", "amount",
                          "description", "school_urn", "school_name", "laestab", "period",
                          "period_start", "period_end", "run_id", "run_date", "net", "recovered"]
    run_date = journal[1][14]
    assert journal[1:] == [[today, "CC100", "TOPUP", "I03", "1.2.1", "1033.33",
                            f"{about}, URN {OAK}", OAK, "Oak Primary", "8732001", AUTUMN,
                            "01/09/2025", "31/12/2025", R1, run_date, "1033.33", "0.00"]]

    ap = rows_of(out / f"finance-ap-{R1}.csv")
    assert ap[0][:6] == ["supplier_ref", "payee", "payment_reference", "amount", "payment_date",
                         "remittance"]
    assert [row[:6] for row in ap[1:]] == [
        ["S01234", "Upton Learning Trust", f"TOPUP-{R1}-{UPTON}", "533.33", today,
         f"{about}: Upton Academy (URN {UPTON})"],
        # a name a spreadsheet would run as a formula is shown as text
        ["S05555", "'=Hill House", f"TOPUP-{R1}-{HILL}", "1566.66", today,
         f"{about}: =Hill House (URN {HILL})"],
    ]
    assert [row[8] for row in ap[1:]] == ["academy", "independent"]
    assert [row[7] for row in ap[1:]] == ["1.2.2", "1.2.3"]

    recoupment = rows_of(out / f"finance-recoupment-{R1}.csv")
    assert [row[:6] for row in recoupment[1:]] == [
        ["874", FAR, "Far Special", "", "533.33", today]]

    # every file's total ties to the run's: 1033.33 + (533.33 + 1566.66) + 533.33 = 3666.65
    totals = {name: sum(Decimal(row[rows[0].index("amount")]) for row in rows[1:])
              for name, rows in (("journal", journal), ("ap", ap), ("recoupment", recoupment))}
    assert totals == {"journal": Decimal("1033.33"), "ap": Decimal("2099.99"),
                      "recoupment": Decimal("533.33")}
    assert sum(totals.values()) == Decimal("3666.65")

    # Parquet: every field of the spec, pounds as decimal128(12,2), URNs as text
    table = pq.read_table(out / f"finance-ap-{R1}.parquet")
    assert table.schema.field("amount").type == pa.decimal128(12, 2)
    assert table.schema.field("school_urn").type == pa.string()
    assert table.column("amount").to_pylist() == [Decimal("533.33"), Decimal("1566.66")]
    spec = json.loads((Path(__file__).resolve().parents[1] / "projections" /
                       "finance-ap.json").read_text(encoding="utf-8"))
    assert table.column_names == [c["name"] for c in spec["columns"]]

    # the workbook opens with openpyxl: one sheet per file and totals that match
    book = openpyxl.load_workbook(out / f"finance-{R1}.xlsx")
    assert book.sheetnames == ["journal", "ap", "recoupment", "recoveries", "totals"]
    sheet_ap = list(book["ap"].iter_rows(values_only=True))
    assert [r[1] for r in sheet_ap[1:]] == ["Upton Learning Trust", "=Hill House"]
    assert book["ap"].cell(3, 2).data_type == "s"  # text, not a formula
    assert [Decimal(str(r[3])) for r in sheet_ap[1:]] == [Decimal("533.33"), Decimal("1566.66")]
    totals_sheet = list(book["totals"].iter_rows(values_only=True))
    assert [(r[0], r[1], Decimal(str(r[2]))) for r in totals_sheet[1:8]] == [
        ("journal", 1, Decimal("1033.33")), ("ap", 2, Decimal("2099.99")),
        ("recoupment", 1, Decimal("533.33")), ("paid in the files", 4, Decimal("3666.65")),
        (f"run {R1} net", 4, Decimal("3666.65")),
        ("carried forward (paid nothing)", 0, Decimal("0")),
        ("recovered from earlier runs", 0, Decimal("0"))]
    assert totals_sheet[8] == ("payment date", today, None)


def test_a_supplementary_run_s_files_hold_only_its_differences_and_tie(
        cli: Invoke, tmp_path: Path) -> None:
    set_up(cli)
    out = tmp_path / "out"
    pay(cli, out)
    # Upton's plan was on B all along: due 1033.33, paid 533.33 → +500.00 to the trust
    cli("plan", "band", "P2", "--band", "B", "--from", "2025-09-01", "--reason", "tribunal")
    report = json.loads(pay(cli, out).output)
    assert (report["run_id"], report["total_pence"]) == ("2025-26-autumn-r2", 50000)
    stem = "2025-26-autumn-r2-supplementary"
    ap = rows_of(out / f"finance-ap-{stem}.csv")
    assert [row[:4] for row in ap[1:]] == [
        ["S01234", "Upton Learning Trust", f"TOPUP-2025-26-autumn-r2-{UPTON}", "500.00"]]
    assert "(supplementary: differences only)" in ap[1][5]
    assert rows_of(out / f"finance-journal-{stem}.csv")[1:] == []
    assert rows_of(out / f"finance-recoupment-{stem}.csv")[1:] == []
    totals = list(openpyxl.load_workbook(out / f"finance-{stem}.xlsx")["totals"]
                  .iter_rows(values_only=True))
    assert [(r[0], Decimal(str(r[2]))) for r in totals[1:6]] == [
        ("journal", Decimal("0")), ("ap", Decimal("500.00")), ("recoupment", Decimal("0")),
        ("paid in the files", Decimal("500.00")), ("run 2025-26-autumn-r2 net", Decimal("500.00"))]


def test_the_payment_date_is_recorded_on_the_run_and_written_in_every_file(
        cli: Invoke, location: str, tmp_path: Path) -> None:
    set_up(cli)
    refused = pay(cli, tmp_path / "out", "--pay-on", "2025-09-06", ok=False)
    assert refused.output == ("error: pay-on: 2025-09-06 is a Saturday: payments go on a working "
                              "day, Monday to Friday; nothing was recorded\n")
    assert runs(location) == 0
    out = tmp_path / "out"
    pay(cli, out, "--pay-on", "2025-09-05")
    assert [row[0] for row in rows_of(out / f"finance-journal-{R1}.csv")[1:]] == ["05/09/2025"]
    assert [row[4] for row in rows_of(out / f"finance-ap-{R1}.csv")[1:]] == ["05/09/2025"] * 2
    assert [row[5] for row in rows_of(out / f"finance-recoupment-{R1}.csv")[1:]] == ["05/09/2025"]
    store = EventStore(location)
    try:
        finance = store.stream(f"finance:{R1}")[0].fact
    finally:
        store.close()
    assert isinstance(finance, ev.RunFinance)
    assert (finance.pay_on, finance.period_start, finance.period_end) == (
        date(2025, 9, 5), date(2025, 9, 1), date(2025, 12, 31))


def test_the_mapping_changes_column_names_order_and_codes_without_code_changes(
        cli: Invoke, tmp_path: Path) -> None:
    set_up(cli)
    toml = tmp_path / "finance.toml"
    toml.write_text('subjective = "E1301"\ncfr_code = "I03"\ndate_format = "%Y-%m-%d"\n'
                    '[budget_lines]\n"academy/mainstream" = "1.2.2a"\n'
                    '[journal.columns]\ndate = "Posting Date"\ncost_centre = "Cost Centre"\n'
                    'subjective = "Account"\namount = "Value"\ndescription = "Narrative"\n'
                    '[ap.columns]\nsupplier = "Supplier No"\namount = "Net"\n'
                    'reference = "Invoice No"\nbudget_line = "S251"\n', encoding="utf-8")
    assert "recorded finance-mapping/1" in cli("finance", "mapping", "set", str(toml)).output
    out = tmp_path / "out"
    pay(cli, out)
    assert rows_of(out / f"finance-journal-{R1}.csv") == [
        ["Posting Date", "Cost Centre", "Account", "Value", "Narrative"],
        ["2025-09-01", "CC100", "E1301", "1033.33",
         f"SEND top-up {AUTUMN} (2025-09-01 to 2025-12-31), run {R1}, URN {OAK}"]]
    assert rows_of(out / f"finance-ap-{R1}.csv") == [
        ["Supplier No", "Net", "Invoice No", "S251"],
        ["S01234", "533.33", f"TOPUP-{R1}-{UPTON}", "1.2.2a"],  # academy/mainstream's own
        ["S05555", "1566.66", f"TOPUP-{R1}-{HILL}", "1.2.3"]]  # independent: the default
    shown = cli("finance", "mapping", "show").output
    assert '[journal.columns]\ndate = "Posting Date"\n' in shown


@pytest.mark.parametrize(("text", "message"), [
    ('subjective = "E1301"\ncolour = "red"\n',
     "finance.toml: colour: is not a key of the finance mapping"),
    ('[journal.columns]\ndate = "Date"\nbank_account = "Acct"\namount = "Value"\n',
     "finance.toml: [journal.columns]: 'bank_account' is not a field of the journal file"),
    ('[ap.columns]\nsupplier = "Supplier"\n', "finance.toml: [ap.columns]: must include amount"),
    ('date_format = "dd/mm/yyyy"\n', "finance.toml: date_format: 'dd/mm/yyyy' does not show"),
    ('[budget_lines]\nacademies = "1.2.2"\n', "finance.toml: budget_lines: 'academies': "
     "'academies' is not one of"),
    ('subjective = \n', "finance.toml: is not TOML"),
])
def test_a_bad_mapping_is_refused_naming_the_file_and_key(text: str, message: str,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "finance.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as refused:
        read_mapping(path)
    assert f"{refused.value.field}: {refused.value.problem}".startswith(message), refused.value


def test_verify_checks_the_finance_files_and_they_rebuild_byte_for_byte(
        cli: Invoke, location: str, tmp_path: Path) -> None:
    set_up(cli)
    out = tmp_path / "out"
    pay(cli, out)
    rebuilt = tmp_path / "rebuilt"
    store = EventStore(location)
    try:
        again = {p.name: file_digest(p)[0] for p in write_files_for_run(store, R1, rebuilt)}
    finally:
        store.close()
    finance = sorted(n for n in again if n.startswith("finance-"))
    assert len(finance) == 7  # three CSVs, three Parquet files, one workbook
    for name in finance:
        assert again[name] == file_digest(out / name)[0], name
    assert cli("verify", "--files", str(out)).exit_code == 0
    replayed = tmp_path / "replayed"  # as known after the run: the same finance files
    cli("replay", "--as-of", "2025-12-31", "--out", str(replayed))
    for name in finance:
        assert file_digest(replayed / name)[0] == again[name], name
    journal = out / f"finance-journal-{R1}.csv"
    journal.write_bytes(journal.read_bytes().replace(b"1033.33", b"1933.33"))
    result = cli("verify", "--files", str(out), ok=False)
    assert result.exit_code == 1
    assert f"finance-journal-{R1}.csv was changed after it was written" in result.output


def test_a_ledger_without_payees_pays_as_before_and_writes_no_finance_files(
        cli: Invoke, tmp_path: Path) -> None:
    set_up(cli, payees=False)
    out = tmp_path / "out"
    report: dict[str, Any] = json.loads(pay(cli, out).output)
    assert not any("finance-" in f for f in report["files"])
    refused = cli("pay", "2025-26/spring", "--out", str(out), "--pay-on", "2026-01-05", ok=False)
    assert "pay-on: no school has a funding route or payee yet" in refused.output


def test_a_school_s_payee_changes_from_its_effective_date_and_is_never_edited(
        cli: Invoke, tmp_path: Path) -> None:
    set_up(cli)
    # Oak converts to an academy from 1 October: a new fact from that date; September's stands
    cli("school", "set", OAK, "--route", "academy", "--supplier", "S07777",
        "--trust", "Oak Trust", "--from", "2025-10-01", "--reason", "academy conversion")
    again = cli("school", "set", OAK, "--route", "academy", "--supplier", "S07777",
                "--trust", "Oak Trust", "--from", "2025-10-01", "--reason", "academy conversion")
    assert again.output.startswith("already recorded as payee:100001/2, nothing new")
    on_sept = json.loads(cli("finance", "payees", "--on", "2025-09-30", "--json").output)
    on_oct = json.loads(cli("finance", "payees", "--on", "2025-10-01", "--json").output)
    assert (on_sept[0]["route"], on_sept[0]["reference"]) == ("maintained", "CC100")
    assert (on_oct[0]["route"], on_oct[0]["reference"], on_oct[0]["laestab"]) == (
        "academy", "S07777", "8732001")  # the LAESTAB not given is kept
    out = tmp_path / "out"
    pay(cli, out, "--pay-on", "2025-10-01")
    assert [row[0] for row in rows_of(out / f"finance-ap-{R1}.csv")[1:]] == [
        "S07777", "S01234", "S05555"]
    assert rows_of(out / f"finance-journal-{R1}.csv")[1:] == []


def test_payee_on_takes_the_latest_effective_and_the_later_recorded_of_two_alike() -> None:
    first = ev.SchoolPayeeSet(OAK, "maintained", None, cost_centre="CC1")
    convert = ev.SchoolPayeeSet(OAK, "academy", date(2025, 10, 1), supplier="S1")
    fixed = ev.SchoolPayeeSet(OAK, "academy", date(2025, 10, 1), supplier="S2")
    facts = [first, convert, fixed]
    assert payee_on(facts, date(2025, 9, 30)) == first
    assert payee_on(facts, date(2025, 10, 1)) == fixed
    assert payee_on([], date(2025, 10, 1)) is None
    assert first_working_day(date(2026, 8, 1)) == date(2026, 8, 3)  # a Saturday → Monday
    assert first_working_day(date(2026, 1, 1)) == date(2026, 1, 1)  # a Thursday (bank holidays: --pay-on)


def test_schools_csv_takes_the_payee_columns_and_a_bad_row_stages_nothing(
        cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "schools.csv"
    path.write_text(
        "urn,name,setting,route,laestab,trust,supplier,cost_centre,recoupment_la\n"
        "100001,Oak Primary,mainstream,maintained,8732001,,,CC100,\n"
        "100002,Upton Academy,mainstream,Academy,8734001,Upton Learning Trust,S01234,,\n"
        "100009,Bad School,mainstream,academy,12,,S1,,\n", encoding="utf-8")
    result = cli("import", str(path), "--partial", "--json", ok=False)
    report = json.loads(result.output)
    assert (report["recorded"], report["rejected"], report["events_recorded"]) == (2, 1, 4)
    assert report["rejects"][0]["line"] == 4 and report["rejects"][0]["field"] == "laestab"
    schools = json.loads(cli("schools", "--json").output)
    assert [(s["urn"], s["route"], s["paid_by"], s["laestab"], s["trust"]) for s in schools] == [
        (OAK, "maintained", "CC100", "8732001", ""),
        (UPTON, "academy", "S01234", "8734001", "Upton Learning Trust")]  # no Bad School


def upton_paid_for_autumn(cli: Invoke, out: Path) -> None:
    """The worked recovery below, up to its spring run (also used by the finance report's,
    statements' and run controls' tests): Upton Academy (supplier S01234), P2 on A (£1,600)
    from 1 Sep 2025 paid its autumn 1600 × 4/12 = £533.33, then ceased from 1 Sep 2025 (never
    attended); P6 on A from 1 Jan 2026."""
    cli("school", "add", UPTON, "--name", "Upton Academy", "--setting", "mainstream")
    for year in ("2025-26", "2026-27"):
        cli("tariff", "set", "--fy", year, "--band", "A=1600")
    cli("school", "set", UPTON, "--route", "academy", "--supplier", "S01234")
    cli("plan", "issue", "P2", "--pupil", "PR-2", "--school", UPTON, "--from", "2025-09-01",
        "--band", "A")
    cli("plan", "issue", "P6", "--pupil", "PR-6", "--school", UPTON, "--from", "2026-01-01",
        "--band", "A")
    assert json.loads(pay(cli, out).output)["total_pence"] == 53333
    cli("plan", "cease", "P2", "--from", "2025-09-01", "--reason", "never attended")


def test_a_school_clawed_back_beyond_its_due_is_paid_nothing_and_the_recovery_is_netted_next(
        cli: Invoke, location: str, tmp_path: Path) -> None:
    """Upton Academy: P2 on A from 1 Sep 2025, paid its autumn share 1600 × 4/12 = £533.33.
    P2 then ceases from 1 Sep 2025 (never attended), and P6 on A starts 1 Jan 2026.

    Spring run: P6's spring 1600 × 3/12 = £400.00, P2's autumn clawed back −£533.33: net
    400.00 − 533.33 = −£133.33 → paid £0.00, £133.33 carried forward.
    Summer run: P6's summer 1600 × 5/12 = 666.666… → £666.67; less the £133.33 owed:
    paid 666.67 − 133.33 = £533.34, owed £0.00. The lines (due and paid per plan) are
    untouched: the payment files show −133.33 and 666.67.
    """
    out = tmp_path / "out"
    upton_paid_for_autumn(cli, out)

    spring = json.loads(cli("pay", "2025-26/spring", "--out", str(out), "--json").output)
    assert spring["total_pence"] == -13333  # the payment file: the lines, as before
    assert rows_of(out / "finance-ap-2025-26-spring-r1.csv")[1:] == []  # nothing is sent
    book = openpyxl.load_workbook(out / "finance-2025-26-spring-r1.xlsx")
    assert [tuple(str(v) for v in r) for r in book["recoveries"].iter_rows(values_only=True)][1:] == [
        (UPTON, "Upton Academy", "academy", "-133.33", "133.33", "0", "0")]
    owed = json.loads(cli("recoveries", "--json").output)
    assert [(o["school_urn"], o["owed_pence"], o["since_run"]) for o in owed] == [
        (UPTON, 13333, "2025-26-spring-r1")]

    summer = json.loads(cli("pay", "2025-26/summer", "--out", str(out), "--json").output)
    assert summer["total_pence"] == 66667
    ap = rows_of(out / "finance-ap-2025-26-summer-r1.csv")
    header = ap[0]
    row = dict(zip(header, ap[1], strict=True))
    assert (row["amount"], row["net"], row["recovered"]) == ("533.34", "666.67", "133.33")
    assert json.loads(cli("recoveries", "--json").output) == []
    # as known before the summer run, Upton still owed it
    store = EventStore(location)
    try:
        before = next(r.recorded_at for r in store.stream_recorded("payments")
                      if r.fact.run_id == "2025-26-summer-r1")  # type: ignore[attr-defined]
    finally:
        store.close()
    earlier = (before - timedelta(microseconds=1)).isoformat()
    assert [o["owed_pence"] for o in json.loads(
        cli("recoveries", "--as-of", earlier, "--json").output)] == [13333]


def test_recoveries_are_carried_and_netted_oldest_first_to_the_penny() -> None:
    """Owing nothing, −£10.00 → pay 0, owe 10.00; −£2.50 → pay 0, owe 12.50; +£5.00 →
    recover 5.00, pay 0, owe 7.50; +£20.01 → recover 7.50, pay 12.51, owe 0."""
    owed: dict[str, int] = {}
    paid = []
    for net in (-1000, -250, 500, 2001):
        recoveries = run_recoveries([(OAK, net)], owed)
        paid.append(cash(recoveries[0]) if recoveries else net)
        owed = owed_after(owed, recoveries)
        paid.append(owed.get(OAK, 0))
    assert paid == [0, 1000, 0, 1250, 0, 750, 1251, 0]
    assert run_recoveries([(OAK, 300), (UPTON, 0)], {}) == ()  # nothing owed: paid its net
