"""What a person reads (issue 25): `history` in the one money format, the audit commands'
answers through the shared tables at 80 columns, and the pager only on a terminal."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import pytest
from rich.console import Console

from conftest import Invoke
from topup_ledger.cli.output import table

OAK = "100001"
DIGEST = r"[0-9a-f]{64}@[0-9]+"


def transferred(cli: Invoke) -> None:
    """A plan on 27.5 hours moved to band C: its prior hours-based amount is
    27.5 h × 1181p × 38 weeks = 1,234,145p, less the £6,000.00 threshold = 634,145p."""
    cli("init")
    cli("school", "add", OAK, "--name", "Oakfield College (independent specialist)",
        "--setting", "mainstream")
    cli("calendar", "set", "--ay", "2025-26")
    cli("rate", "set", "--fy", "2025-26", "--hourly", "11.81", "--weeks", "38")
    cli("tariff", "set", "--fy", "2025-26", "--band", "C=4000")
    cli("plan", "issue", "EHCP-000000123", "--pupil", "PR-0001", "--school", OAK,
        "--from", "2025-09-01", "--hours", "27.5")
    cli("plan", "transfer", "EHCP-000000123", "--band", "C", "--from", "2026-01-01",
        "--protect-until", "2026-01-31")
    cli("plan", "correct", "EHCP-000000123", "--event", "2", "--band", "C", "--note",
        "the panel confirmed band C after a long review of the hours the school had provided")


def fits(text: str, width: int = 80) -> None:
    """Every line within ``width``, but for a path that is longer on its own (prose is
    wrapped between words, never inside a path or a digest someone will copy)."""
    too_wide = [line for line in text.splitlines() if len(line) > width and " " in line.strip()]
    assert not too_wide, "\n".join(too_wide)


def test_history_prints_money_in_the_one_format_and_fits_80_columns(
        cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    transferred(cli)
    monkeypatch.setenv("COLUMNS", "80")
    text = cli("history", "EHCP-000000123").output
    fits(text)
    flat = " ".join(text.split())  # the what column wraps onto more lines
    assert "prior hours-based amount £6,341.45 a year" in flat
    assert "£6341.45" not in flat
    assert "[corrected by EHCP-000000123/3]" in flat
    # the event ids (14 characters) are never cut
    assert all(f"EHCP-000000123/{n}" in text for n in (1, 2, 3))
    # --json keeps its words as scripts have read them
    rows = json.loads(cli("history", "EHCP-000000123", "--json").output)
    assert "prior hours-based amount £6341.45 a year" in rows[1]["what"]


def test_the_audit_commands_answer_in_tables_that_fit_80_columns(
        cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    transferred(cli)
    cli("pay", "2025-26/autumn", "--out", str(tmp_path / "pay"))
    monkeypatch.setenv("COLUMNS", "80")
    sealed = cli("seal").output
    fits(sealed)
    assert sealed.startswith("sealed ") and "`topup verify --digest`" in " ".join(sealed.split())

    verified = cli("verify").output
    fits(verified)
    lines = verified.splitlines()
    report = json.loads(cli("verify", "--json").output)
    assert lines[:2] == [f"ledger: {report['events']} events; chain head:", report["head"]]
    assert any(line.split() == ["seals", "2", "of", "2", "match"] for line in lines)
    assert "OK: every event matches" in verified

    replayed = cli("replay", "--as-of", "2030-01-01", "--out", str(tmp_path / "then")).output
    fits(replayed)
    assert "1 payment run known then: 2025-26-autumn-r1" in replayed
    assert "files written" in replayed and "replay.json" in replayed

    exported = cli("export", "events", "--out", str(tmp_path / "events.parquet")).output
    wrote = f"wrote {report['events']} events to {tmp_path / 'events.parquet'}"
    assert wrote in exported.replace("\n", " ")


def test_verify_lists_its_problems_as_a_table(cli: Invoke, tmp_path: Path, location: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    transferred(cli)
    out = tmp_path / "pay"
    cli("pay", "2025-26/autumn", "--out", str(out))
    for path in out.glob("payments-*.csv"):
        path.write_bytes(path.read_bytes().replace(b"Oakfield", b"Oakfielt"))
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("verify", ok=False)
    assert result.exit_code == 1
    fits(result.output)
    assert "FAILED: 1 problem\n" in result.output
    header = next(line for line in result.output.splitlines() if line.startswith("kind"))
    assert header.split() == ["kind", "position", "event", "problem"]
    assert "changed after it was written" in " ".join(result.output.split())


# The pager: only on a terminal.


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def pagers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every time rich's pager is asked for; it pages nothing (what it would show is kept)."""
    asked: list[str] = []

    @contextmanager
    def pager(self: Console, *args: Any, **kwargs: Any) -> Iterator[None]:
        asked.append("pager")
        yield

    monkeypatch.setattr(Console, "pager", pager)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "10")
    return asked


def show(rows: int, pager: bool | None, *, terminal: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    screen: io.StringIO = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stdout", screen)
    with click.Context(click.Command("topup"), obj={"pager": pager}):
        table(["URN", "name"], [[str(100000 + n), f"school {n}"] for n in range(rows)])
    return screen.getvalue()


def test_a_long_table_is_paged_on_a_terminal_only(pagers: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # 30 rows and a header on a terminal of 10 lines: paged
    assert "100029" in show(30, None, terminal=True, monkeypatch=monkeypatch)
    assert pagers == ["pager"]
    # fits the terminal: not paged; asked for with --pager: paged
    show(5, None, terminal=True, monkeypatch=monkeypatch)
    assert pagers == ["pager"]
    show(5, True, terminal=True, monkeypatch=monkeypatch)
    assert pagers == ["pager", "pager"]
    # --no-pager, or output that is not a terminal (a pipe, a file, a test): never
    show(30, False, terminal=True, monkeypatch=monkeypatch)
    text = show(30, True, terminal=False, monkeypatch=monkeypatch)
    assert pagers == ["pager", "pager"] and "100029" in text


def test_no_pager_for_a_command_whose_output_is_not_a_terminal(cli: Invoke, pagers: list[str]) -> None:
    transferred(cli)
    for n in range(30):
        cli("school", "add", str(200000 + n), "--name", f"School {n}", "--setting", "special")
    text = cli("--pager", "schools", "--limit", "0").output
    assert "200029" in text and pagers == []
