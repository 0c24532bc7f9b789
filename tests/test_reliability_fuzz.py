"""Bad input (issue 9): property-based fuzzing of every import format and every command's
options. Whatever the input, `topup` never ends in a traceback; every row of an import is
recorded, already recorded or rejected with its line and a reason (and the rejects file
holds exactly the rejected rows); a refused command records nothing. Absurd values (a
million hours, a date in 1850, a negative tariff) and oversized files are refused.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import uuid
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability_support import (
    AUTUMN,
    SCALE,
    batch,
    count_events,
    import_all,
    record_figure,
    reference_files,
    topup,
    write_la,
)
from topup_ledger.cli import main

EXAMPLES = 40 * SCALE
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=SCALE == 1,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ran: Counter[str] = Counter()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A paid SQLite ledger of a small generated LA, and the LA's files."""
    folder = tmp_path_factory.mktemp("fuzz")
    la = write_la(folder / "la")
    ledger = folder / "base.sqlite"
    topup(str(ledger), "init")
    import_all(str(ledger), [*reference_files(la), batch(la, 1) / "plans.csv"])
    topup(str(ledger), "pay", AUTUMN, "--out", str(folder / "paid"))
    return ledger, la


@pytest.fixture(scope="module", autouse=True)
def figures() -> object:
    yield
    record_figure("fuzz", examples=dict(ran))


def scratch(base: tuple[Path, Path], tmp_path: Path) -> tuple[str, Path]:
    work = tmp_path / uuid.uuid4().hex[:8]
    work.mkdir()
    ledger = work / "ledger.sqlite"
    shutil.copy(base[0], ledger)
    return str(ledger), work


def invoke(location: str, args: list[str]) -> Result:
    result = CliRunner().invoke(main, ["--ledger", location, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"topup {args!r} raised {result.exception!r}")
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2, 3, 4, 5), (args, result.exit_code, result.output)
    if result.exit_code not in (0, 1):
        assert result.output.strip(), "a refusal must say why"
    return result


def urns(la: Path) -> list[str]:
    rows = (batch(la, 1) / "schools.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [r.split(",")[0] for r in rows]


def plans(la: Path) -> list[str]:
    rows = (batch(la, 1) / "plans.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [r.split(",")[0] for r in rows]


ANY = st.one_of(st.text(max_size=24), st.just(""),
                st.sampled_from(["-1", "0", "1e9", "NaN", "∞", "null", "=1+1", "\"", ",", "\n",
                                 "\x00", "  ", "1,000,000", "£-5", "9" * 40]))
DATES = st.sampled_from(["2025-09-01", "01/09/2025", "1/9/2025", "2025-10-15", "2026-02-30",
                         "1850-01-01", "31/12/2099", "2101-01-01", "0001-01-01", "yesterday",
                         "2025-9-1", "2025-12-31T00:00", ""])
MONEY = st.sampled_from(["£18.50", "1,234.50", "-5", "0", "1000000000", "£1,000,000.01", "12.345",
                         "abc", "£", "1e3", "3100", "£7,500.00", "99999999999999999999"])
HOURS = st.sampled_from(["12.5", "0", "1000000", "-3", "40", "40.01", "32.555", "abc", "5", ""])
YEARS = st.sampled_from(["2025-26", "2026-27", "1850-51", "2025-27", "2099-00", "25-26", "2025"])
BANDS = st.sampled_from(["A", "D", "G", "Z", "a", "C+", "AAAAA", "", "Band D"])
SETTINGS = st.sampled_from(["mainstream", "special", "Resourced", " post16 ", "unknown", ""])


def cells(column: str, la: Path) -> st.SearchStrategy[str]:
    known = {
        "urn": st.sampled_from([*urns(la), "12345", "999999999", "100001"]),
        "school": st.sampled_from([*urns(la), "12345", "100001"]),
        "name": st.text(max_size=30), "setting": SETTINGS, "la_code": ANY,
        "year": YEARS, "hourly_rate": MONEY, "weeks": st.sampled_from(["38", "52", "53", "0", "-1",
                                                                       "38.5", "1e2"]),
        "threshold": MONEY, "reason": ANY,
        "plan": st.sampled_from([*plans(la)[:5], "NEW-1", "NEW-2", "bad ref!", "x" * 41]),
        "pupil": st.sampled_from(["PR-1", "PR-2", "PR-0918F2C41C", "John Smith", ""]),
        "from": DATES, "protect_until": DATES, "hours": HOURS, "band": BANDS,
        "kind": st.sampled_from(["ehcp", "non-statutory", "EHCP", "other", ""]),
        "change": st.sampled_from(["hours", "transfer", "band", "move", "cease", "correct",
                                   "delete", ""]),
        "event": st.sampled_from(["1", "2", "99", "EHCP-00001/1", "x", ""]),
    }
    band_column = len(column) == 1 and column.isupper()
    return st.one_of(MONEY if band_column else known.get(column, ANY), ANY)


HEADERS = {
    "schools": ["urn", "name", "setting", "la_code"],
    "rates": ["year", "hourly_rate", "weeks", "threshold", "reason"],
    "tariffs": ["year", "setting", "reason", "A", "B", "C", "D"],
    "plans": ["plan", "pupil", "school", "from", "hours", "band", "kind"],
    "changes": ["plan", "change", "from", "hours", "band", "school", "protect_until", "event",
                "reason"],
}


@st.composite
def import_file(draw: st.DrawFn, kind: str, la: Path) -> tuple[list[str], list[list[str]]]:
    headers = list(HEADERS[kind])
    if draw(st.booleans()):  # a column missing, or one the kind does not read
        headers = draw(st.lists(st.sampled_from(headers), min_size=1, unique=True))
    if draw(st.integers(0, 9)) == 0:
        headers.append(draw(st.sampled_from(["notes", "surname", "date_of_birth", "Plan"])))
    rows = [[draw(cells(h, la)) for h in headers] for _ in range(draw(st.integers(0, 6)))]
    return headers, rows


def to_csv(headers: list[str], rows: list[list[str]], bom: bool, crlf: bool) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return ("\ufeff" if bom else "").encode() + buffer.getvalue().encode("utf-8")


def check_import(location: str, work: Path, path: Path, kind: str | None, partial: bool) -> None:
    before = count_events(location)
    args = ["import", str(path), "--json", "--rejects", str(work / "rejects.csv")]
    args += ["--kind", kind] if kind else []
    args += ["--partial"] if partial else []
    result = invoke(location, args)
    if result.output.startswith("error: ") or result.output.startswith("Usage:"):
        assert result.exit_code == 2  # the file refused whole: nothing recorded
        assert count_events(location) == before
        return
    report = json.loads(result.output)
    # No row dropped silently.
    assert report["rows"] == (report["recorded"] + report["already_recorded"] + report["rejected"]
                              + report["not_recorded_because_of_rejects"])
    assert count_events(location) == before + report["events_recorded"]
    if report["rejected"]:
        assert result.exit_code == (1 if report["committed"] or partial else 2)
        for reject in report["rejects"]:
            assert reject["line"] >= 2 and reject["reason"].strip()
        with (work / "rejects.csv").open(encoding="utf-8-sig", newline="") as handle:
            rejected = list(csv.reader(handle))[1:]
        assert [int(r[0]) for r in rejected] == [r["line"] for r in report["rejects"]]
        if not partial:
            assert count_events(location) == before  # any reject: nothing recorded
    else:
        assert result.exit_code == 0


@pytest.mark.parametrize("kind", sorted(HEADERS))
def test_fuzzed_import_files_are_recorded_or_rejected_row_by_row(
        kind: str, base: tuple[Path, Path], tmp_path: Path) -> None:
    la = base[1]

    @FUZZ
    @given(data=import_file(kind, la), bom=st.booleans(), crlf=st.booleans(),
           partial=st.booleans(), named=st.booleans())
    def fuzz(data: tuple[list[str], list[list[str]]], bom: bool, crlf: bool, partial: bool,
             named: bool) -> None:
        location, work = scratch(base, tmp_path)
        path = work / f"{kind}.csv"
        path.write_bytes(to_csv(*data, bom, crlf))
        check_import(location, work, path, kind if named else None, partial)
        ran[f"import {kind}"] += 1

    fuzz()


def test_fuzzed_bytes_are_refused_or_read_row_by_row(base: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    @FUZZ
    @given(prefix=st.sampled_from([b"", b"plan,pupil,school,from,hours\n", b"urn,name,setting\n"]),
           body=st.binary(max_size=300))
    def fuzz(prefix: bytes, body: bytes) -> None:
        location, work = scratch(base, tmp_path)
        path = work / "export.csv"
        path.write_bytes(prefix + body)
        check_import(location, work, path, None, False)
        ran["import raw bytes"] += 1

    fuzz()


# Every command, with the options it takes; values drawn from plausible and absurd ones.
VALUES = st.one_of(ANY, DATES, MONEY, HOURS, YEARS, BANDS, SETTINGS, st.sampled_from(
    ["2025-26/autumn", "2025-26/spring", "2025-26/bogus", "2025-26-autumn-r1", "EHCP-00002",
     "100001", "D=7000", "D=-5", "A=1,000", "=", "50", "0", "101", "annual-review", "tribunal",
     "2026-01-10T09:00:00Z", "2026-01-10", "not a time", "0" * 64 + "@1", "html", "csv"]))

COMMANDS: dict[str, tuple[list[str], list[str], list[str]]] = {
    # name: (command words, positional arguments, options)
    "school add": (["school", "add"], ["urn"], ["--name", "--setting", "--la"]),
    "school cushion": (["school", "cushion"], ["urn"], ["--from", "--until", "--share", "--reason"]),
    "calendar set": (["calendar", "set"], [], ["--year", "--reason"]),
    "rate set": (["rate", "set"], [], ["--year", "--hourly", "--weeks", "--threshold", "--reason"]),
    "tariff set": (["tariff", "set"], [], ["--year", "--band", "--band", "--setting", "--reason"]),
    "plan issue": (["plan", "issue"], ["ref"], ["--pupil", "--school", "--from", "--hours",
                                               "--band", "--kind"]),
    "plan hours": (["plan", "hours"], ["ref"], ["--hours", "--from", "--reason"]),
    "plan transfer": (["plan", "transfer"], ["ref"], ["--band", "--from", "--protect-until"]),
    "plan band": (["plan", "band"], ["ref"], ["--band", "--from", "--reason"]),
    "plan move": (["plan", "move"], ["ref"], ["--school", "--from"]),
    "plan cease": (["plan", "cease"], ["ref"], ["--from", "--reason"]),
    "plan correct": (["plan", "correct"], ["ref"], ["--event", "--band", "--hours", "--from",
                                                   "--school", "--note"]),
    "history": (["history"], ["ref"], ["--json"]),
    "due": (["due"], ["ref"], ["--period", "--json"]),
    "pay": (["pay"], ["period"], ["--json", "--preview", "--catch-up"]),
    "funding": (["funding"], [], ["--period", "--school", "--as-of", "--json"]),
    "reconcile hours-vs-band": (["reconcile", "hours-vs-band"], [], ["--school", "--as-of"]),
    "reconcile paid-vs-due": (["reconcile", "paid-vs-due"], [], ["--period", "--school",
                                                                "--as-of"]),
    "rebuild": (["rebuild"], [], ["--projection", "--json"]),
    "statement": (["statement"], ["urn", "period"], ["--format", "--as-of", "--json"]),
    "statements": (["statements"], ["period"], ["--format", "--as-of"]),
    "replay": (["replay"], [], ["--as-of", "--json"]),
    "seal": (["seal"], [], ["--reason", "--json"]),
    "verify": (["verify"], [], ["--digest", "--no-rebuild", "--json"]),
    "export events": (["export", "events"], [], ["--as-of", "--json"]),
    "policy set": (["policy", "set"], [], ["--release", "--reason"]),
    "release": (["release"], ["run"], ["--json"]),
    "withdraw": (["withdraw"], ["run"], ["--reason", "--json"]),
    "reconcile paid-vs-remitted": (["reconcile", "paid-vs-remitted"], [], ["--run", "--json"]),
}
FLAGS = {"--json", "--no-rebuild", "--preview", "--catch-up"}
RECORDS = {"school add", "school cushion", "calendar set", "rate set", "tariff set", "plan issue",
           "plan hours", "plan transfer", "plan band", "plan move", "plan cease", "plan correct",
           "pay", "seal", "policy set", "release", "withdraw"}
WRITES = {"pay", "funding", "reconcile hours-vs-band", "reconcile paid-vs-due", "statement",
          "statements", "replay", "export events", "release", "reconcile paid-vs-remitted"}


@st.composite
def command_line(draw: st.DrawFn, name: str, la: Path, out: Path) -> list[str]:
    words, positional, options = COMMANDS[name]
    args = list(words)
    for what in positional:
        pick = {"urn": st.sampled_from(urns(la)), "ref": st.sampled_from(plans(la)[:5]),
                "period": st.sampled_from([AUTUMN, "2025-26/spring"]),
                "run": st.sampled_from(["2025-26-autumn-r1", "2025-26-spring-r1"])}[what]
        args.append(draw(st.one_of(pick, VALUES)))
    for option in options:
        if not draw(st.booleans()):
            continue
        if option in FLAGS:
            args.append(option)
        elif option == "--format":
            args += [option, draw(st.sampled_from(["html", "csv", "docx"]))]
        else:
            args += [option, draw(VALUES)]
    if name in WRITES:
        args += ["--out", str(out / ("events.parquet" if name == "export events" else "out"))]
    return args


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_fuzzed_command_options_never_crash_and_refusals_record_nothing(
        name: str, base: tuple[Path, Path], tmp_path: Path) -> None:
    la = base[1]

    @settings(FUZZ, max_examples=25 * SCALE)
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        location, work = scratch(base, tmp_path)
        args = data.draw(command_line(name, la, work))
        before = count_events(location)
        result = invoke(location, args)
        if result.exit_code != 0 and name in RECORDS:
            assert count_events(location) == before, "a refused command recorded something"
        if result.exit_code not in (0, 1) and name in WRITES - {"verify"}:
            written = [p for p in work.rglob("*") if p.is_file() and p.name != "ledger.sqlite"
                       and not p.name.startswith("ledger.")]
            assert not written, f"a refused {name} wrote {written}"
        ran[f"options {name}"] += 1

    fuzz()


@pytest.mark.parametrize(("args", "says"), [
    (["plan", "issue", "NEW-1", "--pupil", "PR-9", "--school", "{urn}", "--from", "2025-09-01",
      "--hours", "1000000"], "1000000 hours a week is implausible"),
    (["plan", "hours", "{plan}", "--hours", "1000000", "--from", "2025-10-01"],
     "1000000 hours a week is implausible"),
    (["plan", "issue", "NEW-1", "--pupil", "PR-9", "--school", "{urn}", "--from", "1850-01-01",
      "--hours", "5"], "1850-01-01 is outside 2000-2099"),
    (["tariff", "set", "--year", "2025-26", "--band", "A=-1500"], "is not a plausible value"),
    (["tariff", "set", "--year", "2025-26", "--band", "A=1000000000"], "is not a plausible value"),
    (["rate", "set", "--year", "1850-51", "--hourly", "12", "--weeks", "38"], "outside 2000-2099"),
    (["rate", "set", "--year", "2025-26", "--hourly", "-12", "--weeks", "38"], "not plausible"),
    (["rate", "set", "--year", "2025-26", "--hourly", "12", "--weeks", "1000000"],
     "not a number of weeks"),
    (["school", "cushion", "{urn}", "--from", "2025-09-01", "--until", "2026-08-31", "--share",
      "1000000"], "at most 100"),
])
def test_absurd_values_are_refused_and_record_nothing(
        args: list[str], says: str, base: tuple[Path, Path], tmp_path: Path) -> None:
    location, _ = scratch(base, tmp_path)
    la = base[1]
    args = [a.format(urn=urns(la)[1], plan=plans(la)[1]) for a in args]
    before = count_events(location)
    result = invoke(location, args)
    assert result.exit_code == 2 and says in result.output, result.output
    assert count_events(location) == before


def test_absurd_rows_in_an_import_are_rejected_with_their_line(
        base: tuple[Path, Path], tmp_path: Path) -> None:
    location, work = scratch(base, tmp_path)
    urn = urns(base[1])[0]
    path = work / "plans.csv"
    path.write_text("plan,pupil,school,from,hours,band\n"
                    f"NEW-1,PR-1,{urn},2025-09-01,1000000,\n"
                    f"NEW-2,PR-2,{urn},1850-01-01,5,\n"
                    f"NEW-3,PR-3,{urn},2025-09-01,5,\n", encoding="utf-8")
    result = invoke(location, ["import", str(path)])
    assert result.exit_code == 2
    assert "line 2, hours: 1000000 hours a week is implausible" in result.output
    assert "line 3, from: 1850-01-01 is outside 2000-2099" in result.output
    tariffs = work / "tariffs.csv"
    tariffs.write_text("year,A,B\n2025-26,-1500,3000\n", encoding="utf-8")
    result = invoke(location, ["import", str(tariffs)])
    assert result.exit_code == 2 and "line 2" in result.output and "not a plausible" in result.output


def test_an_oversized_file_is_refused_before_it_is_read(base: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    location, work = scratch(base, tmp_path)
    path = work / "plans.csv"
    with path.open("wb") as handle:  # sparse: 600 MB on paper, nothing on disk
        handle.write(b"plan,pupil,school,from,hours\n")
        handle.truncate(600 * 1024 * 1024)
    result = invoke(location, ["import", str(path)])
    assert result.exit_code == 2
    assert result.output == (f"error: {path} is {os.path.getsize(path):,} bytes: larger than any "
                             "export this reads\n")
    huge_cell = work / "schools.csv"
    huge_cell.write_text("urn,name,setting\n100001," + "x" * 200_000 + ",special\n")
    result = invoke(location, ["import", str(huge_cell)])
    assert result.exit_code == 2 and "field larger than field limit" in result.output
