"""Everyday use (issue 25): install, --version/-h/bare topup, no traceback from a bad path
or PostgreSQL URL, years that say what they are, and the read commands."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conftest import Invoke, postgres_url
from topup_ledger.cli import main
from topup_ledger.cli.output import plural, table
from topup_ledger.storage.store import StoreError, check_postgres_url

ROOT = Path(__file__).resolve().parent.parent
OAK, ELM = "100001", "100002"


def topup(location: str, *args: str) -> Result:
    """``topup`` in-process on ``location``; an exception (a traceback) fails the test."""
    return CliRunner().invoke(main, ["--ledger", location, *args], catch_exceptions=False)


# Install, version, help.


@pytest.mark.install
def test_the_readme_install_works_in_a_fresh_virtual_environment(tmp_path: Path) -> None:
    """The README's first command, without the demo: a new venv, `pip install -e .`, then
    `topup --version`. The venv sees this interpreter's packages (no download), and
    --no-deps keeps it to the project itself."""
    first = (ROOT / "README.md").read_text().split("```")[1]
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/topup demo" in first
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import site; print(site.getsitepackages()[0])"],
        check=True, capture_output=True, text=True).stdout.strip()
    # this test run's packages (click, rich, ...), wherever they were installed
    here = [p for p in sys.path if p.endswith("site-packages")]
    (Path(found) / "topup-test-deps.pth").write_text("\n".join(here) + "\n")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_ROOT_USER_ACTION": "ignore"}
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "-e", str(ROOT)],
                   check=True, env=env, cwd=tmp_path)
    version = subprocess.run([str(venv / "bin" / "topup"), "--version"], check=True,
                             capture_output=True, text=True, cwd=tmp_path)
    assert version.stdout.startswith("topup 0.") and version.stderr == ""


def test_version_short_help_and_bare_topup() -> None:
    runner = CliRunner()
    version = runner.invoke(main, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("topup ")
    short, long = runner.invoke(main, ["-h"]), runner.invoke(main, ["--help"])
    assert short.exit_code == 0 and short.output == long.output and "Usage:" in short.output
    bare = runner.invoke(main, [])
    assert bare.exit_code == 0 and bare.output.strip() == long.output.strip()
    sub = runner.invoke(main, ["rate", "set", "-h"])
    assert sub.exit_code == 0 and "--fy" in sub.output


def test_completion_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "_TOPUP_COMPLETE=bash_source topup" in readme and "_TOPUP_COMPLETE=zsh_source" in readme


def test_counts_say_one_or_many() -> None:
    assert [plural(1, "school"), plural(2, "school"), plural(1234, "change")] == [
        "1 school", "2 schools", "1,234 changes"]


# Paths given as a ledger, an output folder or an input file.


def test_a_folder_as_the_ledger_is_refused_plainly(tmp_path: Path) -> None:
    for command in (["funding", "--out", str(tmp_path / "r")], ["init"]):
        result = topup(str(tmp_path), *command)
        assert result.exit_code == 4
        assert f"error: {tmp_path} is a folder, not a ledger file" in result.output
        assert "Traceback" not in result.output


def test_a_ledger_whose_folder_cannot_be_made_is_refused_plainly() -> None:
    result = topup("/proc/nope/x.sqlite", "init")
    assert result.exit_code == 4
    assert ("cannot make a ledger at /proc/nope/x.sqlite: the folder /proc/nope cannot be made"
            in result.output)
    missing = topup("/proc/nope/x.sqlite", "schools")
    assert missing.exit_code == 4
    assert "no ledger at /proc/nope/x.sqlite: run `topup init` first" in missing.output


def test_an_unreadable_ledger_is_refused_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ledger.sqlite"
    assert topup(str(path), "init").exit_code == 0
    if os.geteuid() == 0:  # root reads any file: make this one unreadable for the check
        real_open = Path.open

        def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", refuse)
    else:
        path.chmod(0)
    result = topup(str(path), "schools")
    assert result.exit_code == 4
    assert f"error: cannot read the ledger file {path} (permission denied)" in result.output


def test_a_file_that_is_not_a_ledger_is_refused_plainly(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a ledger\n")
    result = topup(str(path), "funding", "--out", str(tmp_path / "r"))
    assert result.exit_code == 4 and "is not a SQLite ledger" in result.output


def test_an_output_folder_that_cannot_be_made_is_refused_plainly(cli: Invoke, tmp_path: Path) -> None:
    cli("init")
    result = cli("funding", "--out", "/proc/nope/reports", ok=False)
    assert result.exit_code == 6 and "error: cannot use /proc/nope" in result.output
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli("pay", "2025-26/autumn", "--out", str(blocker / "payments"), ok=False)
    assert result.exit_code == 6 and f"error: cannot use {blocker}" in result.output
    assert "not a folder" in result.output


def test_an_input_file_that_is_a_folder_is_refused_plainly(cli: Invoke, tmp_path: Path) -> None:
    cli("init")
    result = cli("import", str(tmp_path), ok=False)
    assert result.exit_code == 2 and "is a directory" in result.output


# PostgreSQL URLs, checked before connecting.


@pytest.mark.parametrize(("url", "says"), [
    ("postgresql://user:pa:ss@host:notaport/db?schema=la_1", "is not valid"),
    ("postgresql://u@h/db?scheme=typo", "unknown parameter(s) 'scheme'"),
    ("postgresql://u@h/db?schema=la_1&sslmode=off", "unknown parameter(s) 'sslmode'"),
    ("postgresql://u@h/db?schema=", "names an empty schema"),
    ("postgresql://u@h/db", "names no schema: add ?schema=NAME"),
    ("postgresql://u@h/db?schema=a&schema=b", "gives schema more than once"),
    ("postgresql://u@h/db?schema=Bad-Name", "schema 'Bad-Name' is not a valid name"),
    ("postgresql://u@h/db?schema=pg_catalog", "is not a valid name"),
    ("postgresql:///db?schema=la_1", "names no host"),
])
def test_a_bad_postgresql_url_is_refused_before_connecting(url: str, says: str) -> None:
    with pytest.raises(StoreError) as refused:
        check_postgres_url(url)
    assert says in str(refused.value)
    assert "pa:ss" not in str(refused.value)
    result = topup(url, "schools")
    assert result.exit_code == 4 and says in result.output and "Traceback" not in result.output
    assert "TOPUP_CIPHER_KEY" not in result.output


def test_public_only_when_asked_for() -> None:
    check_postgres_url("postgresql://u@h/db?schema=public")
    check_postgres_url("postgresql://u:p%40ss@h:5433/db?schema=la_926")


def test_an_uninitialised_postgresql_schema_says_run_init() -> None:
    url = postgres_url()
    if not url:
        pytest.skip("no PostgreSQL server (set TOPUP_TEST_POSTGRES_URL)")
    location = f"{url}{'&' if '?' in url else '?'}schema=t_{uuid.uuid4().hex[:12]}"
    result = topup(location, "schools")
    assert result.exit_code == 4 and "run `topup init`" in result.output


# Years and replacements.


def reference(cli: Invoke) -> None:
    cli("init")
    cli("school", "add", OAK, "--name", "Oakfield College (independent specialist)", "--setting",
        "independent")
    cli("school", "add", ELM, "--name", "Elm Special", "--setting", "special")
    cli("calendar", "set", "--ay", "2025-26")
    cli("rate", "set", "--fy", "2025-26", "--hourly", "11.81", "--weeks", "38")
    cli("tariff", "set", "--fy", "2025-26", "--band", "B=3100", "--band", "C=4000")


def test_years_say_what_they_are_and_replacements_what_they_replace(cli: Invoke) -> None:
    cli("init")
    out = cli("calendar", "set", "--ay", "2025-26").output
    assert "academic year 2025-26 (1 Sep 2025 to 31 Aug 2026)" in out
    assert "2025-26/autumn 2025-09-01 to 2025-12-31" in out and "replacing" not in out
    out = cli("rate", "set", "--fy", "2025-26", "--hourly", "18.90", "--weeks", "38",
              "--threshold", "9600.13").output
    assert "financial year 2025-26 (1 Apr 2025 to 31 Mar 2026) hourly rate £18.90" in out
    assert "threshold £9,600.13" in out and "replacing" not in out
    out = cli("rate", "set", "--year", "2025-26", "--hourly", "19.05", "--weeks", "38").output
    assert "hourly rate £19.05" in out
    assert "replacing £18.90 an hour × 38 weeks, threshold £9,600.13" in out
    out = cli("tariff", "set", "--fy", "2025-26", "--band", "B=3100").output
    assert "financial year 2025-26 (1 Apr 2025 to 31 Mar 2026) B=£3,100.00" in out
    out = cli("tariff", "set", "--fy", "2025-26", "--band", "B=3200").output
    assert "replacing B=£3,100.00" in out
    again = cli("tariff", "set", "--fy", "2025-26", "--band", "B=3200").output
    assert "nothing new" in again and "replacing" not in again


# The read commands.


def test_the_read_commands_list_what_the_ledger_holds(cli: Invoke, tmp_path: Path) -> None:
    reference(cli)
    cli("plan", "issue", "P1", "--pupil", "PR-1", "--school", OAK, "--from", "2025-09-01", "--hours", "20")
    cli("plan", "issue", "P2", "--pupil", "PR-2", "--school", ELM, "--from", "2025-09-01", "--band", "C")
    cli("plan", "move", "P2", "--school", OAK, "--from", "2025-11-01")
    cli("plan", "issue", "P3", "--pupil", "PR-3", "--school", ELM, "--from", "2025-09-01", "--band", "B")
    cli("plan", "cease", "P3", "--from", "2025-10-01", "--reason", "left the area")

    schools = json.loads(cli("schools", "--json").stdout)
    assert [(s["urn"], s["setting"]) for s in schools] == [(OAK, "independent"), (ELM, "special")]
    text = cli("schools").output
    assert text.startswith("2 schools\n") and "Oakfield College (independent specialist)" in text
    shorter = cli("schools", "--limit", "1").output
    assert "Elm Special" not in shorter and "… 1 more school (--limit 0 shows all" in shorter

    plans = json.loads(cli("plans", "--json").stdout)
    assert [(p["plan"], p["school"], p["basis"], p["ceased_from"]) for p in plans] == [
        ("P1", OAK, "hours", None), ("P2", OAK, "band", None), ("P3", ELM, "band", "2025-10-01")]
    assert [p["plan"] for p in json.loads(cli("plans", "--school", OAK, "--json").stdout)] == ["P1", "P2"]
    assert [p["plan"] for p in json.loads(cli("plans", "--band", "C", "--json").stdout)] == ["P2"]
    assert [p["plan"] for p in json.loads(cli("plans", "--basis", "hours", "--json").stdout)] == ["P1"]
    assert cli("plans").output.startswith("3 plans (1 ceased)\n")

    rates = json.loads(cli("rates", "--json").stdout)
    assert rates == [{"financial_year": "2025-26", "from": "2025-04-01", "to": "2026-03-31",
                      "hourly_rate_pence": 1181, "hourly_rate_gbp": "11.81", "weeks": "38",
                      "threshold_pence": 600000, "threshold_gbp": "6000.00", "reason": ""}]
    assert "£11.81" in cli("rates").output and "£6,000.00" in cli("rates").output
    tariffs = json.loads(cli("tariffs", "--json").stdout)
    assert tariffs[0]["bands_pence"] == {"B": 310000, "C": 400000} and tariffs[0]["setting"] is None
    assert "£3,100.00" in cli("tariffs").output
    calendars = json.loads(cli("calendars", "--json").stdout)
    assert calendars[0]["academic_year"] == "2025-26" and calendars[0]["from"] == "2025-09-01"
    assert [p["period"] for p in calendars[0]["periods"]] == [
        "2025-26/autumn", "2025-26/spring", "2025-26/summer"]

    assert json.loads(cli("runs", "--json").stdout) == []
    assert "no payment runs in the ledger yet" in cli("runs").output
    pay = cli("pay", "2025-26/autumn", "--out", str(tmp_path / "pay")).output
    assert "1 school, total £" in pay or "2 schools, total £" in pay
    runs = json.loads(cli("runs", "--json").stdout)
    assert [(r["run_id"], r["period"], r["supplementary"]) for r in runs] == [
        ("2025-26-autumn-r1", "2025-26/autumn", False)]
    assert "2025-26-autumn-r1" in cli("runs").output

    status = json.loads(cli("status", "--json").stdout)
    assert status["events"] > 0 and status["last_event"]["position"] == status["events"]
    assert status["last_seal"] is not None and status["encrypted"] is False
    text = cli("status").output
    assert "events" in text and "last seal" in text and "projections  none built yet" in text
    cli("funding", "--out", str(tmp_path / "r"))
    assert json.loads(cli("status", "--json").stdout)["projections"]


def test_money_in_pay_and_due_is_in_one_format(cli: Invoke, tmp_path: Path) -> None:
    reference(cli)
    cli("plan", "issue", "P1", "--pupil", "PR-1", "--school", ELM, "--from", "2025-09-01", "--band", "C")
    due = cli("due", "P1", "--period", "2025-26/autumn").output
    assert "total due: £1,333.33" in due and "£4,000.00 a year" in due
    pay = cli("pay", "2025-26/autumn", "--out", str(tmp_path / "pay")).output
    assert "recorded payment run 2025-26-autumn-r1 for 2025-26/autumn: 1 school, total £1,333.33" in pay


def test_tables_fit_80_columns_and_cut_names_with_an_ellipsis(cli: Invoke,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    reference(cli)
    monkeypatch.setenv("COLUMNS", "40")
    out = cli("schools").output
    assert all(len(line) <= 40 for line in out.splitlines())
    assert "Oakfield College (independent specialist)" not in out and "…" in out
    assert OAK in out and "independent" in out  # the URN and setting are never cut


# Paid vs due and the funding total.


def test_unpriced_terms_are_never_settled_and_a_moved_plan_counts_once(
        cli: Invoke, clock: Any, tmp_path: Path) -> None:
    reference(cli)  # a tariff for financial year 2025-26 only
    cli("plan", "issue", "P1", "--pupil", "PR-1", "--school", OAK, "--from", "2025-09-01", "--band", "C")
    cli("plan", "issue", "P2", "--pupil", "PR-2", "--school", ELM, "--from", "2025-09-01", "--band", "B")
    cli("plan", "move", "P2", "--school", OAK, "--from", "2025-10-01")
    out = str(tmp_path / "r")
    autumn = json.loads(cli("funding", "--period", "2025-26/autumn", "--json", "--out", out).stdout)
    assert sorted((r["school_urn"], r["plans"]) for r in autumn["rows"]) == [(OAK, 2), (ELM, 1)]
    assert autumn["totals"]["plans"] == 2  # P2 moved in the term: one plan, not two
    text = cli("funding", "--period", "2025-26/autumn", "--out", out).output
    assert [line.split()[1] for line in text.splitlines() if line.startswith("total")] == ["2"]

    clock.advance(days=220)  # April 2026: financial year 2026-27 has no tariff
    cli("school", "add", "100003", "--name", "Ash Academy", "--setting", "mainstream")
    found = json.loads(cli("reconcile", "paid-vs-due", "--period", "2025-26/summer", "--json",
                           "--out", out).stdout)
    assert [(r["school_urn"], r["status"], r["due_pence"], r["paid_pence"]) for r in found["rows"]] == [
        (OAK, "cannot price: no tariff for band B in financial year 2026-27; "
              "no tariff for band C in financial year 2026-27", 0, 0)]
    assert found["totals"]["unsettled"] == 1
    text = cli("reconcile", "paid-vs-due", "--period", "2025-26/summer", "--out", out).output
    assert "cannot price: no tariff for band" in text and "settled" not in text.replace("unsettled", "")


def test_a_summer_term_names_the_financial_year_it_needs(cli: Invoke, tmp_path: Path) -> None:
    reference(cli)  # calendar 2025-26 (academic), rate and tariff 2025-26 (financial)
    cli("plan", "issue", "P1", "--pupil", "PR-1", "--school", ELM, "--from", "2025-09-01", "--band", "C")
    result = cli("pay", "2025-26/summer", "--out", str(tmp_path / "pay"), ok=False)
    assert result.exit_code == 2
    assert "no tariff for band C in financial year 2026-27" in result.output
    assert "1 April to 31 March" in result.output and "`topup tariff set --fy 2026-27 ...`" in result.output
    bad = cli("calendar", "set", "--ay", "2025-27", ok=False)
    assert bad.exit_code == 2 and "year: '2025-27': the second part must be the year after 2025" in bad.output


def test_output_that_is_not_a_terminal_has_no_colour(cli: Invoke) -> None:
    reference(cli)
    cli("school", "add", "100003", "--name", "Ash [bold]annexe[/bold]", "--setting", "mainstream")
    assert "Ash [bold]annexe[/bold]" in cli("schools").output  # words, never markup
    for command in (["schools"], ["rates"], ["tariffs"], ["calendars"], ["status"]):
        assert "\x1b[" not in cli(*command).output


def test_the_funding_table_fits_80_columns(cli: Invoke, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    reference(cli)
    cli("plan", "issue", "P1", "--pupil", "PR-1", "--school", OAK, "--from", "2025-09-01", "--band", "C")
    monkeypatch.setenv("COLUMNS", "80")
    for command in (["funding"], ["reconcile", "paid-vs-due"], ["reconcile", "hours-vs-band"]):
        out = cli(*command, "--out", str(tmp_path / "r")).output
        table_lines = [line for line in out.splitlines() if not line.startswith(("wrote", "cost"))]
        assert all(len(line) <= 80 for line in table_lines), out
    out = cli("funding", "--out", str(tmp_path / "r")).output
    assert "£1,333.33" in out and "total" in out
    monkeypatch.setenv("COLUMNS", "160")
    wide = cli("funding", "--out", str(tmp_path / "r")).output
    assert "Oakfield College (independent specialist)" in wide  # room enough: nothing cut


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_styles_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("NO_COLOR", raising=False)
    for no_color, styled in ((None, True), ("1", False)):
        if no_color:
            monkeypatch.setenv("NO_COLOR", no_color)
        screen = Terminal()
        monkeypatch.setattr(sys, "stdout", screen)
        table(["URN", "name"], [["100001", "Oak"]])
        assert ("\x1b[" in screen.getvalue()) is styled
        assert "100001" in screen.getvalue()
