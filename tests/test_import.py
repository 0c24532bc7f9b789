"""Bulk import from CSV (issue 7): every row recorded, already recorded or rejected."""

from __future__ import annotations

import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from topup_ledger.cli import main
from topup_ledger.cli.imports import import_cmd
from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError
from topup_ledger.io.import_csv import FileRefused, parse_table
from topup_ledger.services.importer import ALREADY, RECORDED, REJECTED, Import, import_file, import_table
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.pages import StoredPages
from topup_ledger.storage.store import ConflictError, EventStore

if "import" not in main.commands:  # cli.py registers it; tests must not depend on the order
    main.add_command(import_cmd, "import")


def write(tmp_path: Path, name: str, text: str, *, bom: bool = False, crlf: bool = False) -> Path:
    path = tmp_path / name
    data = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


SCHOOLS = """urn,name,setting,la_code
100001,Oakfield Primary,mainstream,OAK
100002,Beacon Special School,Special,
100003,Hillside Resource Base,resourced,
"""
RATES = """year,hourly_rate,weeks,threshold,reason
2025-26,£18.50,39,"£6,000.00",Schools Forum January
"""
TARIFFS = """year,setting,reason,A,B,Band C,band_d
2025-26,,Schools Forum,"£2,000",4000,"£6,500.00",9500
2025-26,special,Schools Forum,"£5,000",8000,12000,16000
"""
PLANS = """plan,pupil,school,from,hours,band,kind
P1,PR-1,100001,01/09/2025,20,,ehcp
P2,PR-2,100002,2025-09-01,,C,
P3,PR-3,100003,1/9/2025,32.5,,non-statutory
"""


def load_reference(ledger: Ledger, tmp_path: Path) -> None:
    for name, text in (("schools.csv", SCHOOLS), ("rates.csv", RATES), ("tariffs.csv", TARIFFS)):
        result = import_file(ledger, write(tmp_path, name, text))
        assert result.rejected == 0, result.rejects()


def load_plans(ledger: Ledger, tmp_path: Path) -> None:
    load_reference(ledger, tmp_path)
    result = import_file(ledger, write(tmp_path, "plans.csv", PLANS))
    assert result.rejected == 0, result.rejects()


def test_a_real_world_export_is_read_bom_crlf_dates_pounds_and_blank_lines(
        ledger: Ledger, tmp_path: Path) -> None:
    load_reference(ledger, tmp_path)
    path = write(tmp_path, "plans.csv", PLANS + "\n\n \n", bom=True, crlf=True)
    result = import_file(ledger, path)
    assert (result.kind, result.rows, result.recorded, result.rejected) == ("plans", 3, 3, 0)
    assert result.blank_lines == 3
    assert ledger.plan("P1").issued == ev.PlanIssued("P1", "PR-1", "100001", date(2025, 9, 1),
                                                      "ehcp", Decimal(20), None)
    assert ledger.plan("P3").issued.kind == "non-statutory"
    terms = ledger.terms()
    assert terms.rates["2025-26"].hourly_rate == 1850
    assert terms.rates["2025-26"].threshold == 600_000
    assert terms.band_rate("2025-26", "mainstream", "A") == 200_000
    assert terms.band_rate("2025-26", "mainstream", "C") == 650_000
    assert terms.band_rate("2025-26", "special", "D") == 1_600_000
    assert terms.setting_of("100002") == "special"


def test_a_column_carrying_a_pupils_name_or_date_of_birth_refuses_the_file(
        ledger: Ledger, tmp_path: Path) -> None:
    load_reference(ledger, tmp_path)
    before = ledger.store.max_position()
    for header in ("name", "First Name", "Surname", "pupil_name", "DOB", "Date of Birth"):
        path = write(tmp_path, "plans.csv", f"plan,pupil,school,from,hours,{header}\n"
                                            "P1,PR-1,100001,2025-09-01,20,Alex\n")
        with pytest.raises(FileRefused, match="pseudonymous") as refused:
            import_file(ledger, path)
        assert header in str(refused.value)
    assert ledger.store.max_position() == before
    # A school's name is not a pupil's: schools files carry one.
    assert import_file(ledger, write(tmp_path, "schools.csv", SCHOOLS)).already == 3


def test_any_rejected_row_records_nothing_unless_partial(ledger: Ledger, tmp_path: Path) -> None:
    load_reference(ledger, tmp_path)
    before = ledger.store.max_position()
    path = write(tmp_path, "plans.csv", PLANS + "P4,PR-4,999999,2025-09-01,,C,\n"
                                                "P5,PR-5,100001,31/02/2025,10,,\n"
                                                "P6,PR 6,100001,2025-09-01,10,,\n")
    result = import_file(ledger, path)
    assert not result.committed and result.recorded == 0 and result.not_recorded == 3
    assert [(o.line, o.field) for o in result.rejects()] == [(5, "school"), (6, "from"), (7, "pupil")]
    assert "not in the ledger" in result.rejects()[0].reason
    assert ledger.store.max_position() == before

    partial = import_file(ledger, path, partial=True)
    assert partial.committed and (partial.recorded, partial.rejected) == (3, 3)
    assert ledger.store.max_position() == before + 3
    assert partial.as_json()["events_recorded"] == 3


def test_rows_are_checked_against_earlier_rows_of_the_same_file(ledger: Ledger, tmp_path: Path) -> None:
    load_plans(ledger, tmp_path)
    changes = write(tmp_path, "changes.csv", """plan,change,from,hours,band,school,protect_until,event,reason
P1,hours,2025-10-01,25,,,,,review
P1,transfer,03/11/2025,,B,,31/08/2026,,
P1,band,2026-01-05,,C,,,,Annual review
P2,move,2025-10-06,,,100003,,,
P2,correct,2025-10-13,,,,,P2/2,the move was a week later
P3,cease,2026-03-01,,,,,,needs met without top-up
P1,hours,2026-02-01,30,,,,,too late: P1 is on a band by then
""")
    result = import_file(ledger, changes)
    assert [o.status for o in result.outcomes] == [RECORDED] * 6 + [REJECTED]
    assert result.rejects()[0].line == 8 and "change its band instead" in result.rejects()[0].reason
    result = import_file(ledger, changes, partial=True)
    assert result.recorded == 6
    plan = ledger.plan("P1")
    transfer = plan.facts[2].fact
    assert isinstance(transfer, ev.TransferredToBand)
    # The prior amount is worked out from the hours set by the row before it: 25h, not 20h.
    assert transfer.prior_annual == 25 * 1850 * 39 - 600_000
    assert plan.facts[3].fact == ev.BandChanged("P1", date(2026, 1, 5), "C", "annual-review")
    assert ledger.plan("P2").facts[-1].fact.effective == date(2025, 10, 13)  # type: ignore[attr-defined]
    assert ledger.plan("P3").ceased_from == date(2026, 3, 1)


def test_importing_the_same_files_twice_records_nothing_the_second_time(
        ledger: Ledger, tmp_path: Path) -> None:
    load_plans(ledger, tmp_path)
    changes = write(tmp_path, "changes.csv", """plan,change,from,hours,band,school,protect_until,event,reason
P1,transfer,2025-11-03,,B,,2026-08-31,,
P1,band,2026-01-05,,C,,,,annual-review
P2,move,2025-10-06,,,100003,,,
P3,hours,2025-10-01,30,,,,,review
P3,cease,2026-03-01,,,,,,left the LA
P1,correct,,,D,,,3,the review set band D
""")
    assert import_file(ledger, changes).recorded == 6
    position = ledger.store.max_position()
    for name, text in (("schools.csv", SCHOOLS), ("rates.csv", RATES), ("tariffs.csv", TARIFFS),
                       ("plans.csv", PLANS)):
        again = import_file(ledger, write(tmp_path, name, text))
        assert again.already == again.rows and again.rejected == 0 and not again.committed
    again = import_file(ledger, changes)
    assert (again.already, again.rejected, again.recorded) == (6, 0, 0)
    assert again.outcomes[0].reason == "already in the ledger as P1/2"
    assert ledger.store.max_position() == position


def test_a_row_repeated_in_a_file_is_already_recorded_and_a_conflicting_one_rejected(
        ledger: Ledger, tmp_path: Path) -> None:
    load_reference(ledger, tmp_path)
    path = write(tmp_path, "plans.csv", PLANS + "P1,PR-1,100001,2025-09-01,20,,\n"
                                                "P2,PR-2,100002,2025-09-01,,D,\n")
    result = import_file(ledger, path, partial=True)
    assert [o.status for o in result.outcomes] == [RECORDED] * 3 + [ALREADY, REJECTED]
    assert result.outcomes[3].reason == "the same as line 2"
    assert "already issued" in result.outcomes[4].reason
    assert result.events == 3


def test_rows_obey_the_same_rules_as_the_single_commands(ledger: Ledger, tmp_path: Path) -> None:
    load_plans(ledger, tmp_path)
    path = write(tmp_path, "changes.csv", """plan,change,from,band,reason
P1,band,2025-10-01,C,annual-review
P2,band,2025-10-01,Z,annual-review
P2,band,2025-08-01,D,annual-review
P2,band,2025-10-01,D,because
""")
    result = import_file(ledger, path)
    expected = []
    for ref, band, when, why in (("P1", "C", date(2025, 10, 1), "annual-review"),
                                 ("P2", "Z", date(2025, 10, 1), "annual-review"),
                                 ("P2", "D", date(2025, 8, 1), "annual-review"),
                                 ("P2", "D", date(2025, 10, 1), "because")):
        with pytest.raises(RuleError) as error:
            ledger.change_band(ref, band, when, why)
        expected.append((error.value.field, error.value.problem))
    assert [(o.field, o.reason) for o in result.rejects()] == expected


def test_change_rows_refuse_columns_that_do_not_apply_and_reasons_that_would_be_lost(
        ledger: Ledger, tmp_path: Path) -> None:
    load_plans(ledger, tmp_path)
    path = write(tmp_path, "changes.csv", """plan,change,from,hours,band,school,reason
P1,move,2025-10-01,,,100003,moved to the resource base
P1,transfer,2025-10-01,20,B,,
P1,swap,2025-10-01,,,,
P2,cease,2026-01-01,,,,
P1,hours,,25,,,
""")
    result = import_file(ledger, path)
    assert [(o.line, o.field) for o in result.rejects()] == [
        (2, "reason"), (3, "hours"), (4, "change"), (5, "reason"), (6, "from")]
    assert "would be lost" in result.rejects()[0].reason


def test_the_file_is_recorded_in_one_append_without_reading_the_store_per_row(
        ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_reference(ledger, tmp_path)
    rows = "".join(f"Q{i},PR-{i},100001,2025-09-01,{10 + i % 20},,\n" for i in range(300))
    path = write(tmp_path, "plans.csv", "plan,pupil,school,from,hours,band,kind\n" + rows)
    store = ledger.store
    appends: list[int] = []
    original = store.append_many

    def counting_append(batch):  # type: ignore[no-untyped-def]
        appends.append(len(batch))
        return original(batch)

    def no_reads(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the import read the store for a row")

    monkeypatch.setattr(store, "append_many", counting_append)
    monkeypatch.setattr(store, "stream", no_reads)
    monkeypatch.setattr(store, "version", no_reads)
    result = import_file(ledger, path)
    assert result.recorded == 300 and appends == [300]
    assert len(result.positions) == 300


def test_every_fact_of_one_import_has_one_recorded_time(ledger: Ledger, tmp_path: Path) -> None:
    load_plans(ledger, tmp_path)
    times = {r.recorded_at for r in (ledger.store.stream_recorded(f"plan:P{i}")[0] for i in (1, 2, 3))}
    assert len(times) == 1


def test_a_writer_between_reading_and_recording_is_a_conflict(location: str, tmp_path: Path) -> None:
    store = EventStore(location)
    try:
        ledger = Ledger(store)
        job = Import(ledger)
        job.stage_table(parse_table(SCHOOLS.encode(), "schools.csv"))
        ledger.add_school("100001", "Oakfield Primary", "mainstream", "OAK")  # someone else
        with pytest.raises(ConflictError):
            job.commit()
        assert store.max_position() == 1
    finally:
        store.close()


def test_files_that_cannot_be_read_are_refused_whole(ledger: Ledger, tmp_path: Path) -> None:
    bad = tmp_path / "plans.csv"
    bad.write_bytes(b"plan,pupil,school,from,hours\nP1,Zo\xe9,100001,2025-09-01,20\n")
    with pytest.raises(FileRefused, match="line 2: the file is not UTF-8"):
        import_file(ledger, bad)
    with pytest.raises(FileRefused, match="needs column"):
        import_file(ledger, write(tmp_path, "plans.csv", "plan,pupil,from\nP1,X,2025-09-01\n"))
    with pytest.raises(FileRefused, match="appears twice"):
        import_file(ledger, write(tmp_path, "plans.csv", "plan,Plan,pupil\n"))
    with pytest.raises(FileRefused, match="cannot tell"):
        import_file(ledger, write(tmp_path, "export.csv", "a,b\n1,2\n"))
    with pytest.raises(FileRefused, match="empty"):
        import_file(ledger, write(tmp_path, "plans.csv", ""))


def test_stray_cells_reject_the_row_and_unknown_columns_are_reported(
        ledger: Ledger, tmp_path: Path) -> None:
    load_reference(ledger, tmp_path)
    path = write(tmp_path, "plans.csv", "plan,pupil,school,from,hours,Notes\n"
                                        "P1,PR-1,100001,2025-09-01,20,new to the LA\n"
                                        "P2,PR-2,100001,2025-09-01,20,,oops\n")
    result = import_file(ledger, path)
    assert result.ignored_columns == ["Notes"]
    assert [(o.line, o.status) for o in result.outcomes] == [(2, RECORDED), (3, REJECTED)]
    assert "stray comma" in result.rejects()[0].reason


def test_a_multi_line_cell_keeps_the_line_number_of_its_row(ledger: Ledger, tmp_path: Path) -> None:
    load_plans(ledger, tmp_path)
    path = write(tmp_path, "changes.csv", 'plan,change,from,reason\n'
                                          'P3,cease,2026-03-01,"left the LA\nin March"\n'
                                          'P9,cease,2026-03-01,no such plan\n')
    result = import_table(ledger, parse_table(path.read_bytes(), str(path)))
    assert [(o.line, o.status) for o in result.outcomes] == [(2, RECORDED), (4, REJECTED)]


# The command line.


def test_topup_import_writes_rejects_and_exits_by_outcome(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name, text in (("schools.csv", SCHOOLS), ("rates.csv", RATES), ("tariffs.csv", TARIFFS)):
        out = cli("import", str(write(tmp_path, name, text)))
        assert "0 rejected" in out.output
    plans = write(tmp_path, "plans.csv", PLANS + "P4,PR-4,999999,2025-09-01,,C,\n")
    refused = cli("import", str(plans), ok=False)
    assert refused.exit_code == 2
    assert "line 5, school: school 999999 is not in the ledger" in refused.output
    assert "nothing was recorded" in refused.output and "--partial" in refused.output
    rejects = tmp_path / "plans.rejects.csv"
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{"rejected_line": "5", "rejected_field": "school",
                     "rejected_because": "school 999999 is not in the ledger (add it first)",
                     "plan": "P4", "pupil": "PR-4", "school": "999999", "from": "2025-09-01",
                     "hours": "", "band": "C", "kind": ""}]

    partial = cli("import", str(plans), "--partial", "--json", "--rejects",
                  str(tmp_path / "out.csv"), ok=False)
    assert partial.exit_code == 1
    report = json.loads(partial.output)
    assert (report["recorded"], report["rejected"], report["committed"]) == (3, 1, True)
    assert report["rejects_file"] == str(tmp_path / "out.csv")

    # The rejects file, fixed, imports as it is: its three extra columns are not read.
    fixed = rejects.read_text(encoding="utf-8-sig").replace("999999", "100001")
    rejects.write_text(fixed, encoding="utf-8")
    done = cli("import", str(rejects), "--kind", "plans", "--json")
    report = json.loads(done.output)
    assert report["recorded"] == 1 and report["ignored_columns"] == [
        "rejected_line", "rejected_field", "rejected_because"]
    again = json.loads(cli("import", str(plans), "--json", ok=False).output)
    assert (again["already_recorded"], again["rejected"]) == (3, 1)  # P4 is at 100001 now


def test_topup_import_refuses_personal_columns_with_a_clear_message(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "plans.csv", "plan,pupil,pupil_name,school,from,hours\n")
    result = cli("import", str(path), ok=False)
    assert result.exit_code == 2
    assert "pseudonymous pupil references" in result.output and "nothing was recorded" in result.output


def test_the_examples_in_schemas_imports_md_import_cleanly(ledger: Ledger, tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[1] / "schemas" / "imports.md").read_text()
    blocks = [b.split("```", 1)[0] for b in doc.split("```csv\n")[1:]]
    assert len(blocks) == 5
    for n, block in enumerate(blocks):
        result = import_table(ledger, parse_table(block.encode(), f"example {n + 1}"))
        assert result.rejected == 0 and result.recorded == result.rows, result.rejects()
    assert ledger.plan("EHCP-00002").state_on(date(2026, 2, 5)).school == "100002"  # type: ignore[union-attr]


def test_long_files_report_progress(ledger: Ledger, tmp_path: Path) -> None:
    load_reference(ledger, tmp_path)
    rows = "".join(f"R{i},PR-{i},100001,2025-09-01,20,,\n" for i in range(2500))
    table = parse_table(("plan,pupil,school,from,hours,band,kind\n" + rows).encode(), "plans.csv")
    heard: list[int] = []
    result = import_table(ledger, table, progress=heard.append)
    assert result.recorded == 2500 and heard == [1000, 1000]


def test_an_import_reads_only_the_plans_its_rows_name_in_one_select(
        ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_plans(ledger, tmp_path)
    read: list[list[str]] = []
    original = StoredPages.streams

    def recording(self: StoredPages, names: list[str], upto: int):  # type: ignore[no-untyped-def]
        read.append(list(names))
        return original(self, names, upto)

    monkeypatch.setattr(StoredPages, "streams", recording)
    changes = ("plan,change,from,hours,band,school,reason\n"
               "P1,hours,2025-11-01,25,,,annual review\n"
               "P3,move,2025-11-01,,,100001,\n")
    result = import_file(ledger, write(tmp_path, "changes.csv", changes))
    assert result.recorded == 2, result.rejects()
    assert read == [["plan:P1", "plan:P3"]]  # not P2, and not a SELECT per row


def test_a_plan_changed_by_another_writer_after_the_import_began_is_a_conflict(
        location: str, tmp_path: Path) -> None:
    store = EventStore(location)
    try:
        ledger = Ledger(store)
        load_plans(ledger, tmp_path)
        before = store.max_position()
        job = Import(ledger)
        ledger.change_hours("P1", Decimal(22), date(2025, 10, 1), "interim review")  # someone else
        # The import reads P1 as of when it began, so it judges the row without the change
        # above and its append clashes with it: nothing of the import is recorded.
        result = job.stage_table(parse_table(
            b"plan,change,from,hours,reason\nP1,hours,2025-11-01,25,annual review\n", "changes.csv"))
        assert result.rejected == 0, result.rejects()
        with pytest.raises(ConflictError, match="plan:P1"):
            job.commit()
        assert store.max_position() == before + 1
        assert [r.fact.hours for r in store.stream_recorded("plan:P1")[1:]] == [Decimal(22)]
    finally:
        store.close()
