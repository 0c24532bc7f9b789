"""Damaged storage (issue 9): a truncated or corrupted SQLite file, a missing table, an
event whose stored bytes were damaged, a PostgreSQL server that is down or goes away in the
middle of a command.

Every command then says what is wrong with which ledger, exits with the exit code named for
it (``DAMAGED_EXIT``) and the message named for that kind of damage, without a traceback,
and writes nothing: the ledger's bytes are as they were and no output file appears. Nothing
is counted and passed over: any other outcome fails.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from conftest import new_location, postgres_url
from reliability_support import (
    AUTUMN,
    SCALE,
    batch,
    import_all,
    record_figure,
    reference_files,
    run_child,
    spawn,
    topup,
)
from topup_ledger.cli import main
from topup_ledger.storage.store import EventStore, environment, postgres_schema
from topup_ledger.storage.streams import PAYMENTS_STREAM

# The exit code of every refusal below: the ledger's storage is missing or damaged (as for
# any StoreError; 2 is a refused input, 3 a conflict, 5 an unknown schema version).
DAMAGED_EXIT = 4

# Each kind of damage to the file: what every command then says, whatever it was asked.
DAMAGE = {
    "truncated": "is damaged (it is ",  # "... bytes shorter than its header says: truncated)"
    "corrupted": "is damaged (database disk image is malformed)",
    "not-sqlite": "is not a SQLite ledger (the file is damaged)",
    "missing-table": "has lost its event table (no such table: stored_events)",
}


@pytest.fixture(scope="module")
def good_sqlite(tmp_path_factory: pytest.TempPathFactory, la: Path) -> Path:
    """A paid SQLite ledger, checkpointed into its one file."""
    folder = tmp_path_factory.mktemp("good")
    path = folder / "ledger.sqlite"
    topup(str(path), "init")
    import_all(str(path), [*reference_files(la), batch(la, 1) / "plans.csv"])
    topup(str(path), "pay", AUTUMN, "--out", str(folder / "paid"))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def commands(la: Path, out: Path) -> list[list[str]]:
    """Commands that record (first four) and that only read, each with its own output."""
    return [
        ["school", "add", "100999", "--name", "New School", "--setting", "mainstream"],
        ["import", str(batch(la, 2) / "plans.csv")],
        ["pay", "2025-26/spring", "--out", str(out / "pay")],
        ["seal", "--reason", "check"],
        ["history", "EHCP-00002"],
        ["funding", "--out", str(out / "funding")],
        ["verify", "--no-rebuild"],
        ["export", "events", "--out", str(out / "export" / "events.parquet")],
    ]


def damaged_copy(good: Path, target: Path, damage: str, rng: random.Random) -> Path:
    shutil.copy(good, target)
    size = target.stat().st_size
    if damage == "truncated":
        os.truncate(target, rng.randrange(100, size - 1))
    elif damage == "corrupted":
        # Garbage over every page after the first (a disk that returns noise for the file's
        # body): the header still opens, and whatever a command reads is malformed. Garbage
        # over a few pages only is no kind of damage a test can name an outcome for: where
        # it lands decides whether a command notices (an index it uses, a row's bytes) or
        # not (free space), and what it then says.
        with target.open("r+b") as handle:
            handle.seek(4096)
            handle.write(rng.randbytes(size - 4096))
    elif damage == "not-sqlite":
        target.write_bytes(b"PK\x03\x04 a zip file saved over the ledger" * 100)
    elif damage == "missing-table":
        conn = sqlite3.connect(target)
        conn.execute("DROP TABLE stored_events")
        conn.commit()
        conn.close()  # the last connection checkpoints the change into the file
    return target


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_sqlite_ledger_is_refused_plainly_and_left_as_it_was(
        damage: str, good_sqlite: Path, la: Path, tmp_path: Path) -> None:
    """Every command, recording or reading, exits DAMAGED_EXIT with the damage's own message
    naming the ledger, writes nothing into it and no output file."""
    rng = random.Random(damage)
    tried = 0
    for trial in range(2 * SCALE):
        path = damaged_copy(good_sqlite, tmp_path / f"ledger-{trial}.sqlite", damage, rng)
        before = path.read_bytes()
        out = tmp_path / f"out-{trial}"
        for args in commands(la, out):
            tried += 1
            result = CliRunner().invoke(main, ["--ledger", str(path), *args])
            assert isinstance(result.exception, SystemExit), (args, result.exception)
            message = result.output.strip()
            assert result.exit_code == DAMAGED_EXIT, (args, result.output)
            assert message.startswith("error: ") and str(path) in message, message
            assert DAMAGE[damage] in message, (args, message)
            assert "Traceback" not in message
            assert path.read_bytes() == before, f"{args[0]} wrote into a damaged ledger"
            assert not out.exists() or not any(out.rglob("*.*")), f"{args[0]} wrote files"
    # One real process too: what the user sees on the terminal.
    rc, _, err, _ = run_child(str(path), "pay", "2025-26/spring", "--out",
                              str(tmp_path / "child"))
    assert rc == DAMAGED_EXIT and "Traceback" not in err and err.startswith("error: "), err
    assert DAMAGE[damage] in err, err
    record_figure("damaged-sqlite", damage=damage, commands=tried)


def test_a_missing_ledger_file_is_not_created_by_accident(tmp_path: Path) -> None:
    path = tmp_path / "typo.sqlite"
    result = topup(str(path), "plan", "hours", "P1", "--hours", "5", "--from", "2025-10-01",
                   ok=False)
    assert result.exit_code == 4
    assert result.output == f"error: no ledger at {path}: run `topup init` first\n"
    assert not path.exists()


def with_password(url: str, password: str) -> str:
    return url.replace("://postgres@", f"://postgres:{password}@", 1)


def test_a_postgresql_server_that_is_down_is_named_without_its_password(tmp_path: Path) -> None:
    password = "Sekr1t-" + uuid.uuid4().hex[:6]
    location = f"postgresql://postgres:{password}@127.0.0.1:1/topup?schema=la_1"
    for args in (["init"], ["funding", "--out", str(tmp_path / "f")]):
        result = topup(location, *args, ok=False)
        assert result.exit_code == 4, result.output
        assert "postgresql://postgres:***@127.0.0.1:1/topup?schema=la_1" in result.output
        assert password not in result.output
    assert not (tmp_path / "f").exists()


def admin(location: str) -> psycopg.Connection:
    env = environment(location)
    return psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                           port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                           password=env["POSTGRES_PASSWORD"], autocommit=True)


@pytest.fixture
def pg_ledger(tmp_path: Path, la: Path) -> str:
    if not postgres_url():
        pytest.skip("no PostgreSQL server (set TOPUP_TEST_POSTGRES_URL)")
    location = new_location("postgres", tmp_path)
    topup(location, "init")
    import_all(location, [*reference_files(la), batch(la, 1) / "plans.csv"])
    return location


def test_a_missing_postgresql_table_is_named(pg_ledger: str, tmp_path: Path) -> None:
    with admin(pg_ledger) as conn:
        conn.execute(f'DROP TABLE "{postgres_schema(pg_ledger)}".topup_events')
    result = topup(pg_ledger, "pay", AUTUMN, "--out", str(tmp_path / "p"), ok=False)
    assert result.exit_code == 4
    assert "topup_events" in result.output and "does not exist" in result.output
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("moment", ["append:before:1", "append:inside:1"])
def test_a_postgresql_server_that_goes_away_mid_command_records_nothing(
        pg_ledger: str, tmp_path: Path, moment: str) -> None:
    """The payment run's connection is terminated by the server (pg_terminate_backend) just
    before it appends, or after it inserted its rows but before it committed."""
    name = f"topup-reliability-{uuid.uuid4().hex[:8]}"
    go = tmp_path / "go"
    child = spawn(pg_ledger, "pay", AUTUMN, "--out", str(tmp_path / "p"),
                  env={"TOPUP_TEST_PAUSE_AT": moment, "TOPUP_TEST_PAUSE_FILE": str(go),
                       "PGAPPNAME": name})
    deadline = time.monotonic() + 60
    while not go.with_suffix(".waiting").exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with admin(pg_ledger) as conn:
        ended = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE application_name = %s", (name,)).fetchall()
    assert ended and all(row[0] for row in ended)
    go.touch()
    _, err = child.communicate(timeout=60)
    assert "Traceback" not in err
    store = EventStore(pg_ledger)
    try:
        runs = store.stream_recorded(PAYMENTS_STREAM)
    finally:
        store.close()
    if child.returncode == 0:  # the library reconnected and the run went through whole
        assert len(runs) == 1
    else:
        assert child.returncode == 4, err
        assert err.startswith("error: lost the connection to the ledger at postgresql://"), err
        assert runs == []
        assert not (tmp_path / "p").exists()
    topup(pg_ledger, "pay", AUTUMN, "--out", str(tmp_path / "p"))  # the same again: paid once
    store = EventStore(pg_ledger)
    try:
        assert len(store.stream_recorded(PAYMENTS_STREAM)) == 1
    finally:
        store.close()


def damage_one_event(location: str, topic: str, state: bytes) -> tuple[str, int]:
    """Overwrite the stored bytes of the first event of ``topic`` (as a bad disk sector, or
    a hand edit, would); returns its stream and version."""
    conn = sqlite3.connect(location)
    try:
        rowid, stream, version = conn.execute(
            "SELECT rowid, originator_id, originator_version FROM stored_events WHERE topic = ? "
            "ORDER BY rowid LIMIT 1", (topic,)).fetchone()
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (state, rowid))
        conn.commit()
    finally:
        conn.close()
    return stream, version


AT = '"at":"2025-09-01T09:00:00+00:00"'
NOT_STATE = "is not an event's state (a version number, a recorded time and its data)"
# Damage inside one event, each with what the payment run says of it: the bytes are no JSON
# object, or an object that is not an event's state, or an event's state whose data is not
# the event its type names. Before known.py checked the last two, each raised a TypeError
# (or a KeyError) from deep in the fold instead.
EVENT_DAMAGE = {
    "a payment's bytes destroyed": ("payment.school_paid", b"\x00\xff\x00", "is not a JSON object"),
    "a payment that is a JSON list": ("payment.school_paid", b"[1, 2]", "is not a JSON object"),
    "a payment whose version is text": (
        "payment.school_paid", b'{"v":"1",' + AT.encode() + b',"data":{"lines":[]}}', NOT_STATE),
    "a payment without its data": ("payment.school_paid", b'{"v":1,' + AT.encode() + b"}", NOT_STATE),
    "a payment whose data is a list": (
        "payment.school_paid", b'{"v":1,' + AT.encode() + b',"data":[]}', NOT_STATE),
    "a rate without its fields": (
        "rate.set", b'{"v":1,' + AT.encode() + b',"data":{"year":"2025-26"}}',
        "is not a rate.set event as the ledger records one"),
    "a plan's first event whose version is text": (
        "plan.issued", b'{"v":"2",' + AT.encode() + b',"data":{}}', NOT_STATE),
}


@pytest.mark.parametrize("damage", list(EVENT_DAMAGE))
def test_an_event_whose_bytes_were_damaged_is_refused_plainly_by_the_payment_run(
        damage: str, good_sqlite: Path, tmp_path: Path) -> None:
    topic, state, said = EVENT_DAMAGE[damage]
    path = tmp_path / "ledger.sqlite"
    shutil.copy(good_sqlite, path)
    stream, version = damage_one_event(str(path), topic, state)
    before = path.read_bytes()
    result = CliRunner().invoke(main, ["--ledger", str(path), "pay", "2025-26/spring", "--out",
                                       str(tmp_path / "p")])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == DAMAGED_EXIT, result.output
    message = result.output.strip()
    assert message.startswith("error: ") and said in message, message
    named = (f"{stream}/{version}", f"{stream.removeprefix('plan:')}/{version}")  # as the ledger names it
    assert any(name in message for name in named), message
    assert "the ledger is damaged: run `topup verify`" in message, message
    assert path.read_bytes() == before and not (tmp_path / "p").exists()


def test_verify_names_a_payment_event_whose_bytes_were_destroyed(
        good_sqlite: Path, tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    shutil.copy(good_sqlite, path)
    damage_one_event(str(path), "payment.school_paid", b"\x00\xff\x00")
    result = topup(str(path), "verify", "--no-rebuild", ok=False)
    assert result.exit_code == 1
    assert "payment.school_paid" in result.output or "run:" in result.output, result.output
