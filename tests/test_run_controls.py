"""Run controls (issue 23): preview, no silent catch-up, two-person release, withdrawal.

Every case runs on SQLite and PostgreSQL. A second officer is a second authenticated actor:
on PostgreSQL a second role granted what recording needs (as an LA would set one up); on
SQLite, whose actor is the operating-system login, the login is replaced in the test only
(``keys.os_login``) — there is no option that lets a user claim to be someone else.

The figures are worked by hand: band C £4,000 and band D £7,000 a year; the default terms
pay autumn 4/12 (122 days, 1 Sep–31 Dec), spring 3/12 (90 days) and summer 5/12.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from conftest import FakeClock
from topup_ledger.cli import main
from topup_ledger.domain import events as ev
from topup_ledger.storage import keys
from topup_ledger.storage.releases import control_stream
from topup_ledger.storage.runs import run_payments
from topup_ledger.storage.store import EventStore, is_postgres
from topup_ledger.storage.streams import files_stream

OAK, ELM = "100001", "100002"
SECOND_ROLE = "topup_second_officer"


class Officers:
    """Runs ``topup`` as the first officer or, with ``second=True``, as another actor."""

    def __init__(self, location: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.location, self.clock, self.monkeypatch = location, clock, monkeypatch
        self.first = keys.os_login()

    def __call__(self, *args: str, ok: bool = True, second: bool = False) -> Result:
        location = self.location
        if second:
            location = self.second_location()
        else:
            self.monkeypatch.setattr(keys, "os_login", lambda: self.first)
        result = CliRunner().invoke(main, list(args), obj={"location": location, "clock": self.clock},
                                    catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(f"topup {' '.join(args)} failed ({result.exit_code}):\n{result.output}")
        return result

    def second_location(self) -> str:
        if not is_postgres(self.location):
            self.monkeypatch.setattr(keys, "os_login", lambda: "second.officer")
            return self.location
        schema = re.search(r"schema=([a-z0-9_]+)", self.location).group(1)  # type: ignore[union-attr]
        admin = re.sub(r"[?&]schema=[a-z0-9_]+", "", self.location)
        with psycopg.connect(admin, autocommit=True) as conn:
            # roles are the server's, not the schema's: made once, by whichever test is first
            with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                conn.execute(f"CREATE ROLE {SECOND_ROLE} LOGIN")
            conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {SECOND_ROLE}")
            # UPDATE only so the role may take the write lock (LOCK TABLE ... IN EXCLUSIVE
            # MODE needs it); the triggers `topup init` installs refuse any UPDATE itself
            conn.execute(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {schema} "
                         f"TO {SECOND_ROLE}")
            conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {SECOND_ROLE}")
        return re.sub(r"//[^@/]+@", f"//{SECOND_ROLE}@", self.location)

    @property
    def second(self) -> str:
        return "second.officer" if not is_postgres(self.location) else SECOND_ROLE

    def actor(self) -> str:
        if not is_postgres(self.location):
            return self.first
        store = EventStore(self.location)
        try:
            return store.actor()
        finally:
            store.close()

    def json(self, *args: str, second: bool = False) -> Any:
        return json.loads(self(*args, "--json", second=second).stdout)

    def stored(self, stream: str) -> list[Any]:
        store = EventStore(self.location)
        try:
            return store.stream_recorded(stream)
        finally:
            store.close()

    def payments(self, run_id: str) -> list[ev.SchoolPaid]:
        store = EventStore(self.location)
        try:
            return list(run_payments(store, run_id))
        finally:
            store.close()

    def position(self) -> int:
        store = EventStore(self.location)
        try:
            return store.max_position()
        finally:
            store.close()


@pytest.fixture
def topup(location: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Officers]:
    officers = Officers(location, clock, monkeypatch)
    officers("school", "add", OAK, "--name", "Oak Primary", "--setting", "mainstream")
    officers("school", "add", ELM, "--name", "Elm Special", "--setting", "special")
    officers("calendar", "set", "--ay", "2025-26")
    for fy in ("2025-26", "2026-27"):
        officers("tariff", "set", "--fy", fy, "--band", "C=4000", "--band", "D=7000")
    officers("plan", "issue", "P1", "--pupil", "PR-1", "--school", OAK, "--from", "2025-09-01",
             "--band", "C")
    officers("plan", "issue", "P2", "--pupil", "PR-2", "--school", ELM, "--from", "2025-09-01",
             "--band", "D")
    yield officers


def lines_of(payments: list[ev.SchoolPaid]) -> list[tuple[str, str, str, str, int, list[str]]]:
    return sorted((p.school, line.plan, line.kind, line.for_period, line.amount,
                   list(line.caused_by)) for p in payments for line in p.lines)


# 1. Preview


def test_preview_records_nothing_and_equals_the_run_then_recorded(topup: Officers,
                                                                   tmp_path: Path) -> None:
    """Autumn pays P1 £4,000 × 4/12 = £1,333.33 at Oak and P2 £7,000 × 4/12 = £2,333.33 at Elm.
    P1 then moves to band D from 1 Oct (recorded late). Autumn as due now at Oak:
    £4,000/3 × 30/122 + £7,000/3 × 92/122 = £327.87 + £1,759.56 = £2,087.43, so arrears
    £2,087.43 − £1,333.33 = £754.10; spring regular £7,000 × 3/12 = £1,750.00; Oak's spring
    total £2,504.10, £1,170.77 more than its autumn £1,333.33. Elm: £7,000 × 3/12 = £1,750.00,
    £583.33 less than its autumn £2,333.33."""
    topup("pay", "2025-26/autumn", "--out", str(tmp_path / "autumn"))
    event = topup("plan", "band", "P1", "--band", "D", "--from", "2025-10-01",
                  "--reason", "annual-review").output.split()[1].rstrip(":")
    before = topup.position()
    shown = topup.json("pay", "2025-26/spring", "--preview")
    assert topup.position() == before  # nothing recorded
    assert shown["recorded"] is False and shown["would_refuse"] is False
    assert shown["run_id"] == "2025-26-spring-r1" and shown["last_run"] == "2025-26-autumn-r1"
    assert shown["reaches_back_into"] == ["2025-26/autumn"]
    by_school = {s["school_urn"]: s for s in shown["schools"]}
    assert {u: (s["total_pence"], s["last_run_pence"], s["difference_pence"])
            for u, s in by_school.items()} == {OAK: (250410, 133333, 117077),
                                                ELM: (175000, 233333, -58333)}
    assert [(a["plan"], a["kind"], a["for_period"], a["amount_pence"], a["caused_by"])
            for a in by_school[OAK]["arrears_and_clawback"]] == [
        ("P1", "arrears", "2025-26/autumn", 75410, [event])]
    assert by_school[OAK]["arrears_and_clawback"][0]["reason"].startswith(
        "2025-26/autumn: due now £2087.43")
    text = topup("pay", "2025-26/spring", "--preview").output
    assert "PREVIEW (nothing recorded)" in text and "£754.10" in text and event in text

    paid = topup.json("pay", "2025-26/spring", "--out", str(tmp_path / "spring"))
    assert {s["school_urn"]: s["total_pence"] for s in paid["schools"]} == {
        u: s["total_pence"] for u, s in by_school.items()}
    assert paid["total_pence"] == shown["total_pence"] == 425410
    recorded = lines_of(topup.payments("2025-26-spring-r1"))
    back = [line for line in recorded if line[2] in ("arrears", "clawback")]
    assert back == [(OAK, a["plan"], a["kind"], a["for_period"], a["amount_pence"], a["caused_by"])
                    for a in by_school[OAK]["arrears_and_clawback"]]
    assert sum(line[4] for line in recorded) == shown["total_pence"]


def test_preview_lists_what_pay_would_refuse_and_exits_non_zero(topup: Officers) -> None:
    """2026-27/summer (from 1 Apr 2027) needs tariffs for financial year 2027-28, which the
    ledger lacks; it would also catch up five periods no run paid, and 2026-27 has no
    recorded calendar. Everything is listed; nothing is recorded; the exit code is 1."""
    before = topup.position()
    result = topup("pay", "2026-27/summer", "--preview", "--json", ok=False)
    assert result.exit_code == 1 and topup.position() == before
    shown = json.loads(result.stdout)
    assert shown["would_refuse"] is True and shown["schools"] == [] and shown["run_id"] is None
    assert shown["catch_up"] == {"never_run": [
        "2025-26/autumn", "2025-26/spring", "2025-26/summer", "2026-27/autumn", "2026-27/spring"],
        "default_terms": ["2026-27"]}
    assert "no tariff for band C in financial year 2027-28 (plan P1, 2026-27/summer)" in shown["refusals"]
    assert "no tariff for band D in financial year 2027-28 (plan P2, 2026-27/summer)" in shown["refusals"]
    text = topup("pay", "2026-27/summer", "--preview", ok=False).output
    assert "pay would refuse:" in text and "2025-26/autumn: no run has paid" in text


# 2. No silent catch-up


def test_a_catch_up_is_refused_without_catch_up_and_recorded_with_it(topup: Officers,
                                                                      tmp_path: Path) -> None:
    """Spring with autumn never run pays autumn as arrears: refused, nothing recorded.
    With --catch-up: Oak £1,333.33 + £1,000.00 = £2,333.33, Elm £2,333.33 + £1,750.00 =
    £4,083.33, and the run records that it caught up autumn."""
    before = topup.position()
    refused = topup("pay", "2025-26/spring", "--out", str(tmp_path / "p"), ok=False)
    assert refused.exit_code == 2 and topup.position() == before
    assert "2025-26/autumn: no run has paid this earlier period" in refused.output
    assert "--catch-up" in refused.output and "nothing was recorded" in refused.output
    paid = topup.json("pay", "2025-26/spring", "--catch-up", "--out", str(tmp_path / "p"))
    assert paid["total_pence"] == 233333 + 408333
    assert paid["caught_up"] == ["2025-26/autumn"]
    prepared = [r.fact for r in topup.stored(control_stream("2025-26-spring-r1"))]
    assert prepared == [ev.RunPrepared("2025-26-spring-r1", "one-person", ("2025-26/autumn",), ())]
    assert "caught up 2025-26/autumn" in topup("verify").output


def test_a_year_without_its_calendar_is_a_catch_up(topup: Officers, tmp_path: Path) -> None:
    """The LA records its calendar for 2025-26 only: a run for 2026-27/autumn after summer was
    never run lists summer and the year on default terms."""
    out = str(tmp_path / "p")
    topup("pay", "2025-26/autumn", "--out", out)
    topup("pay", "2025-26/spring", "--out", out)
    refused = topup("pay", "2026-27/autumn", "--out", out, ok=False)
    assert refused.exit_code == 2
    assert "2025-26/summer: no run has paid this earlier period" in refused.output
    assert "2026-27: no payment calendar recorded" in refused.output
    paid = topup.json("pay", "2026-27/autumn", "--out", out, "--catch-up")
    assert (paid["caught_up"], paid["default_terms"]) == (["2025-26/summer"], ["2026-27"])


# 3. Two-person release


def test_two_person_release_drafts_then_releases_by_another_actor(topup: Officers,
                                                                   tmp_path: Path) -> None:
    """Autumn: £1,333.33 to Oak and £2,333.33 to Elm, £3,666.66 in all."""
    topup("policy", "set", "--release", "two-person", "--reason", "segregation of duties")
    drafts, final = tmp_path / "drafts", tmp_path / "final"
    paid = topup.json("pay", "2025-26/autumn", "--out", str(drafts))
    assert (paid["state"], paid["release"], paid["total_pence"]) == ("prepared", "two-person", 366666)
    names = sorted(p.name for p in drafts.iterdir())
    assert names == ["DRAFT-NOT-FOR-PAYMENT-2025-26-autumn-r1.txt",
                     "DRAFT-payment-lines-2025-26-autumn-r1.csv",
                     "DRAFT-payment-lines-2025-26-autumn-r1.parquet",
                     "DRAFT-payments-2025-26-autumn-r1.csv", "DRAFT-payments-2025-26-autumn-r1.parquet"]
    assert "NOT FOR PAYMENT" in (drafts / names[0]).read_text()
    assert topup.stored(files_stream("2025-26-autumn-r1")) == []  # drafts are not a release
    # asking again writes drafts again: nothing is released by paying twice
    again = topup.json("pay", "2025-26/autumn", "--out", str(tmp_path / "again"))
    assert again["recorded"] is False and again["state"] == "prepared"
    said = topup("pay", "2025-26/autumn", "--out", str(tmp_path / "again")).output
    assert "nothing new to pay" in said and "PREPARED, NOT RELEASED" in said
    assert [(r["run_id"], r["state"], r["released_by"]) for r in topup.json("runs")] == [
        ("2025-26-autumn-r1", "prepared", None)]
    assert all(p.name.startswith("DRAFT-") for p in (tmp_path / "again").iterdir())

    refused = topup("release", "2025-26-autumn-r1", "--out", str(final), ok=False)
    assert refused.exit_code == 2
    assert f"prepared by {topup.actor()}" in refused.output and "someone else" in refused.output
    assert len(topup.stored(control_stream("2025-26-autumn-r1"))) == 1

    released = topup.json("release", "2025-26-autumn-r1", "--out", str(final), second=True)
    assert (released["state"], released["prepared_by"], released["released_by"]) == (
        "released", topup.actor(), topup.second)
    assert sorted(p.name for p in final.iterdir()) == [
        "payment-lines-2025-26-autumn-r1.csv", "payment-lines-2025-26-autumn-r1.parquet",
        "payments-2025-26-autumn-r1.csv", "payments-2025-26-autumn-r1.parquet"]
    assert len(topup.stored(files_stream("2025-26-autumn-r1"))) == 1
    twice = topup("release", "2025-26-autumn-r1", "--out", str(final), ok=False, second=True)
    assert twice.exit_code == 2 and f"released by {topup.second}" in twice.output
    verified = topup("verify").output
    assert (f"run 2025-26-autumn-r1: prepared by {topup.actor()}, released by {topup.second} "
            "(two-person)") in verified
    assert topup.json("verify")["releases"][0]["released_by"] == topup.second
    assert [(r["state"], r["prepared_by"], r["released_by"]) for r in topup.json("runs")] == [
        ("released", topup.actor(), topup.second)]


def test_statement_data_names_who_prepared_and_released(topup: Officers, tmp_path: Path) -> None:
    from topup_ledger.statements.build import build_statement
    from topup_ledger.statements.source import read_view

    topup("policy", "set", "--release", "two-person")
    topup("pay", "2025-26/autumn", "--out", str(tmp_path / "d"))
    topup("release", "2025-26-autumn-r1", "--out", str(tmp_path / "f"), second=True)
    store = EventStore(topup.location)
    try:
        statement = build_statement(read_view(store), OAK, "2025-26/autumn")
    finally:
        store.close()
    runs = [getattr(r, "run", r) for r in vars(statement).values() if hasattr(r, "released_by")]
    found = runs or [r for v in vars(statement).values() if isinstance(v, list)
                     for r in v if hasattr(r, "released_by")]
    assert [(r.run_id, r.prepared_by, r.released_by, r.state) for r in found] == [
        ("2025-26-autumn-r1", topup.actor(), topup.second, "released")]


def test_a_withdrawn_run_was_never_paid_and_its_money_is_due_again(topup: Officers,
                                                                    tmp_path: Path) -> None:
    """Two-person: autumn r1 (£1,333.33 Oak, £2,333.33 Elm) is prepared, then withdrawn before
    release. Its lines are reversed, so nothing stands paid; the next autumn run, r2, pays the
    same £3,666.66 again, and spring then pays only spring: £1,000.00 + £1,750.00 = £2,750.00."""
    topup("policy", "set", "--release", "two-person")
    topup("pay", "2025-26/autumn", "--out", str(tmp_path / "d1"))
    refused = topup("withdraw", "2025-26-autumn-r1", "--reason", " ", ok=False)
    assert refused.exit_code == 2 and "reason" in refused.output
    withdrawn = topup.json("withdraw", "2025-26-autumn-r1", "--reason",
                           "Elm's band under appeal")
    assert (withdrawn["state"], withdrawn["withdrawn_by"]) == ("withdrawn", topup.actor())
    paid = topup.payments("2025-26-autumn-r1")
    assert sum(line.amount for p in paid for line in p.lines) == 0
    assert sorted(line.amount for p in paid for line in p.lines) == [
        -233333, -133333, 133333, 233333]
    late = topup("release", "2025-26-autumn-r1", "--out", str(tmp_path / "f"), ok=False,
                 second=True)
    assert late.exit_code == 2 and "withdrawn" in late.output
    owed = topup.json("reconcile", "paid-vs-due", "--period", "2025-26/autumn",
                      "--out", str(tmp_path / "owed"))
    assert {(r["school_urn"], r["due_pence"], r["paid_pence"]) for r in owed["rows"]} == {
        (OAK, 133333, 0), (ELM, 233333, 0)}
    replayed = tmp_path / "replay"
    topup("replay", "--as-of", "2030-01-01T00:00:00+00:00", "--out", str(replayed))
    rows = (replayed / "payments-2025-26-autumn-r1.csv").read_text(encoding="utf-8-sig")
    assert len(rows.splitlines()) == 3  # the run as prepared: a header and its two schools

    again = topup.json("pay", "2025-26/autumn", "--out", str(tmp_path / "d2"))
    assert (again["run_id"], again["total_pence"], again["state"]) == (
        "2025-26-autumn-r2", 366666, "prepared")
    # the same lines as r1's, naming the same causes: it is their first payment that stands
    r1 = [line for line in lines_of(topup.payments("2025-26-autumn-r1")) if line[4] > 0]
    assert lines_of(topup.payments("2025-26-autumn-r2")) == r1
    assert [line[5] for line in r1] == [["P1/1"], ["P2/1"]]
    topup("release", "2025-26-autumn-r2", "--out", str(tmp_path / "f2"), second=True)
    spring = topup.json("pay", "2025-26/spring", "--out", str(tmp_path / "d3"))
    assert spring["total_pence"] == 275000 and spring["caught_up"] == []
    due = topup.json("reconcile", "paid-vs-due", "--period", "2025-26/autumn",
                     "--out", str(tmp_path / "r"))
    assert {(r["school_urn"], r["due_pence"], r["paid_pence"]) for r in due["rows"]} == {
        (OAK, 133333, 133333), (ELM, 233333, 233333)}


def test_a_one_person_run_cannot_be_withdrawn_or_released_again(topup: Officers,
                                                                 tmp_path: Path) -> None:
    topup("pay", "2025-26/autumn", "--out", str(tmp_path / "p"))
    for args in (["withdraw", "2025-26-autumn-r1", "--reason", "late"],
                 ["release", "2025-26-autumn-r1", "--out", str(tmp_path / "f")]):
        result = topup(*args, ok=False, second=True)
        assert result.exit_code == 2
        assert "released as it was recorded (one-person release)" in result.output
    assert topup("release", "2025-26-nope-r1", ok=False).exit_code == 2


def test_a_run_recorded_without_the_command_is_held_under_two_person_release(
        topup: Officers, clock: FakeClock, tmp_path: Path) -> None:
    """The service's own path (no catch-up check) still honours the release policy: the run
    is prepared, only drafts are written, and its preparer cannot release it."""
    from topup_ledger.services.payment_run import pay_and_write
    from topup_ledger.services.recording import Ledger

    topup("policy", "set", "--release", "two-person")
    store = EventStore(topup.location)
    try:
        result, files = pay_and_write(Ledger(store, clock=clock), "2025-26/autumn", tmp_path / "d")
    finally:
        store.close()
    assert result.total == 366666 and all(f.name.startswith("DRAFT-") for f in files)
    assert [r.fact for r in topup.stored(control_stream("2025-26-autumn-r1"))] == [
        ev.RunPrepared("2025-26-autumn-r1", "two-person")]
    assert topup("release", "2025-26-autumn-r1", "--out", str(tmp_path / "f"), ok=False).exit_code == 2
    topup("release", "2025-26-autumn-r1", "--out", str(tmp_path / "f"), second=True)
