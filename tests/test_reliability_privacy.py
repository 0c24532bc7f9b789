"""Private data (issue 9): payloads encrypted at rest with a key from the environment, files
readable only by their owner, a school's statement naming only its own children, and no
secret (PostgreSQL password, cipher key) printed, logged or written anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from eventsourcing.cipher import AESCipher

from conftest import new_location, postgres_url
from reliability_support import (
    AUTUMN,
    SPRING,
    batch,
    child_env,
    import_all,
    record_figure,
    reference_files,
    topup,
    write_la,
)
from topup_ledger.domain import events as ev
from topup_ledger.storage.store import EventStore, environment, postgres_schema

SUMMER = "2025-26/summer"


def pupils_and_names(la: Path) -> tuple[list[str], list[str]]:
    plans = (batch(la, 1) / "plans.csv").read_text(encoding="utf-8").splitlines()[1:]
    schools = (batch(la, 1) / "schools.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [r.split(",")[1] for r in plans], [r.split(",")[1] for r in schools]


def stored_bytes(location: str) -> bytes:
    """Everything the ledger holds on disk (SQLite) or in its table (PostgreSQL)."""
    if not location.startswith("postgresql://"):
        return b"".join(Path(p).read_bytes() for p in (location, f"{location}-wal")
                        if Path(p).exists())
    env = environment(location)
    with psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                         port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"]) as conn:
        rows = conn.execute(f'SELECT originator_id, topic, state FROM "{postgres_schema(location)}"'
                            ".topup_events").fetchall()
    return b"\n".join(f"{o} {t} ".encode() + bytes(s) for o, t, s in rows)


@pytest.fixture
def cipher_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = AESCipher.create_key(32)
    monkeypatch.setenv("TOPUP_CIPHER_KEY", key)
    return key


def test_encrypted_ledger_works_end_to_end_and_stores_no_plaintext(
        backend: str, tmp_path: Path, la: Path, cipher_key: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPUP_PROJECTIONS", str(tmp_path / "projections.sqlite"))
    location = new_location(backend, tmp_path)
    outputs = [topup(location, "init").output]
    for number in (1, 2):
        for path in sorted(batch(la, number).glob("*.csv"),
                           key=lambda p: ["schools", "rates", "tariffs", "plans", "changes"].index(p.stem)):
            outputs.append(topup(location, "import", str(path)).output)
        period = (AUTUMN, SPRING)[number - 1]
        outputs.append(topup(location, "pay", period, "--out", str(tmp_path / "pay")).output)
    outputs.append(topup(location, "statements", SPRING, "--format", "html", "--format", "csv",
                         "--out", str(tmp_path / "statements")).output)
    outputs.append(topup(location, "funding", "--out", str(tmp_path / "reports")).output)
    verified = topup(location, "verify", "--files", str(tmp_path / "pay"), "--json")
    assert json.loads(verified.output)["ok"] is True
    outputs.append(verified.output)
    history = topup(location, "history", "EHCP-00002", "--json")
    pupils, names = pupils_and_names(la)
    assert f"plan issued for pupil {pupils[1]} at school" in json.loads(history.output)[0]["what"]
    stored = stored_bytes(location)
    assert b"EHCP-00002" in stored  # stream names are not payloads: they stay readable
    for secret in [*pupils, *names]:
        assert secret.encode() not in stored, f"{secret} is stored in plain text"
    statements = b"".join(p.read_bytes() for p in (tmp_path / "statements").iterdir())
    assert pupils[1].encode() in statements or pupils[0].encode() in statements
    for text in [*outputs, *(p.read_text(errors="replace") for p in tmp_path.rglob("*.csv"))]:
        assert cipher_key not in text

    # Without the key, or with another one, the ledger is refused plainly.
    monkeypatch.delenv("TOPUP_CIPHER_KEY")
    refused = topup(location, "history", "EHCP-00002", ok=False)
    assert refused.exit_code == 4 and "(encrypted? set TOPUP_CIPHER_KEY)" in refused.output
    monkeypatch.setenv("TOPUP_CIPHER_KEY", AESCipher.create_key(32))
    for args in (["history", "EHCP-00002"], ["pay", SUMMER, "--out", str(tmp_path / "no")]):
        refused = topup(location, *args, ok=False)
        assert refused.exit_code == 4, refused.output
        assert "TOPUP_CIPHER_KEY is not the key they were written with" in refused.output
    assert not (tmp_path / "no").exists()
    monkeypatch.setenv("TOPUP_CIPHER_KEY", "not-a-key")
    refused = topup(location, "history", "EHCP-00002", ok=False)
    assert refused.exit_code == 4 and "not-a-key" not in refused.output
    assert "TOPUP_CIPHER_KEY is not a valid key" in refused.output


def test_without_a_key_the_same_facts_are_stored_readably(tmp_path: Path, la: Path) -> None:
    """The control for the test above: its plaintext checks can fail."""
    location = str(tmp_path / "plain.sqlite")
    topup(location, "init")
    import_all(location, [*reference_files(la), batch(la, 1) / "plans.csv"])
    pupils, names = pupils_and_names(la)
    stored = stored_bytes(location)
    assert pupils[0].encode() in stored and names[0].encode() in stored


def modes(root: Path) -> Iterator[tuple[Path, int]]:
    for path in [root, *root.rglob("*")]:
        yield path, stat.S_IMODE(path.stat().st_mode)


def test_every_file_the_commands_write_is_readable_only_by_its_owner(
        tmp_path: Path, la: Path) -> None:
    """In-process, under a permissive umask: the writers themselves make files private."""
    old = os.umask(0o022)
    try:
        location = str(tmp_path / "ledger.sqlite")
        out = tmp_path / "out"
        topup(location, "init")
        import_all(location, [*reference_files(la), batch(la, 1) / "plans.csv"])
        bad = tmp_path / "bad-plans.csv"
        bad.write_text("plan,pupil,school,from,hours\nX-1,PR-1,100001,2025-09-01,5\n")
        topup(location, "import", str(bad), "--rejects", str(out / "rejects" / "bad.csv"), ok=False)
        topup(location, "pay", AUTUMN, "--out", str(out / "payments" / "autumn"))
        topup(location, "funding", "--out", str(out / "reports"))
        topup(location, "reconcile", "paid-vs-due", "--out", str(out / "reports"))
        topup(location, "reconcile", "hours-vs-band", "--out", str(out / "reports"))
        topup(location, "rebuild")
        topup(location, "statement", batch_school(la), AUTUMN, "--format", "pdf", "--out",
              str(out / "statement"))
        topup(location, "statements", AUTUMN, "--format", "html", "--format", "csv", "--out",
              str(out / "statements"))
        topup(location, "replay", "--as-of", "2100-01-01", "--out", str(out / "replay"))
        topup(location, "export", "events", "--out", str(out / "export" / "events.parquet"))
    finally:
        os.umask(old)
    checked = 0
    for path, mode in modes(out):
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, f"{path} is {mode:o}"
        checked += 1
    for path in tmp_path.glob("ledger*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert checked > 30
    record_figure("private-files", files=checked)


def batch_school(la: Path) -> str:
    plans = (batch(la, 1) / "plans.csv").read_text(encoding="utf-8").splitlines()[1:]
    return plans[0].split(",")[2]


def test_a_real_topup_process_writes_nothing_others_can_read(tmp_path: Path, la: Path) -> None:
    """The console entry point sets umask 077, so files the writers do not create themselves
    (SQLite journals, a projection cache folder, the demo's summaries) are private too."""
    env = child_env({"TOPUP_PROJECTIONS_DIR": str(tmp_path / "cache" / "topup")})
    demo = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-c", "from topup_ledger.cli import run; run()",
                             "demo", "--plans", "30", "--out", str(demo), "--json"],
                            env=env, capture_output=True, text=True, timeout=600,
                            preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stderr
    loose = [(p, f"{m:o}") for p, m in modes(demo) if m & 0o077]
    assert loose == []
    assert len(list(demo.rglob("*"))) > 50


def placed_at(location: str) -> dict[str, set[str]]:
    """Every school a plan was ever placed at (as issued, moved, or corrected to)."""
    store = EventStore(location)
    try:
        schools: dict[str, set[str]] = {}
        for _, r in store.recorded():
            fact = r.fact
            school = getattr(fact, "school", None)
            if isinstance(fact, ev.PlanIssued | ev.PlacementMoved | ev.Corrected) and school:
                schools.setdefault(fact.plan, set()).add(school)
        return schools
    finally:
        store.close()


def pupil_of(location: str) -> dict[str, str]:
    store = EventStore(location)
    try:
        return {r.fact.plan: r.fact.pupil for _, r in store.recorded(types=(ev.PlanIssued.TYPE,))}  # type: ignore[attr-defined]
    finally:
        store.close()


def test_no_statement_of_a_generated_la_names_another_schools_child(
        tmp_path: Path) -> None:
    la = write_la(tmp_path / "la", plans=80, schools=8, seed=11)
    location = str(tmp_path / "ledger.sqlite")
    topup(location, "init")
    periods = [AUTUMN, SPRING, SUMMER]
    for number, period in enumerate(periods, start=1):
        order = ["schools", "rates", "tariffs", "plans", "changes"]
        import_all(location, sorted(batch(la, number).glob("*.csv"), key=lambda p: order.index(p.stem)))
        topup(location, "pay", period, "--out", str(tmp_path / "pay"))
    where = placed_at(location)
    pupils = pupil_of(location)
    assert any(len(s) > 1 for s in where.values())  # some children moved school
    checked = 0
    for period in periods:
        folder = tmp_path / period.replace("/", "-")
        topup(location, "statements", period, "--format", "html", "--format", "csv",
              "--out", str(folder))
        for path in folder.glob("statement-*"):
            urn = path.name.split("-")[1]
            text = path.read_text(encoding="utf-8")
            mine = {plan for plan, schools in where.items() if urn in schools}
            assert mine & {p for p in pupils if p in text}, f"{path.name} names no child"
            for plan, pupil in pupils.items():
                if plan not in mine:
                    assert pupil not in text, f"{path.name} names {pupil} of another school"
                    assert f"{plan}<" not in text and f"{plan}," not in text, (path.name, plan)
            checked += 1
    assert checked >= 2 * 3 * 6
    record_figure("statement-isolation", statements=checked, schools=8, plans=80)


def test_no_password_or_key_is_printed_logged_or_written(
        tmp_path: Path, la: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = postgres_url()
    if not url:
        pytest.skip("no PostgreSQL server (set TOPUP_TEST_POSTGRES_URL)")
    key = AESCipher.create_key(16)
    monkeypatch.setenv("TOPUP_CIPHER_KEY", key)
    monkeypatch.setenv("TOPUP_PROJECTIONS_DIR", str(tmp_path / "cache"))
    caplog.set_level(logging.DEBUG)
    password = "pw-" + uuid.uuid4().hex[:10]
    plain = urlsplit(new_location("postgres", tmp_path))
    user, host = plain.username or "postgres", plain.hostname or "127.0.0.1"
    location = plain._replace(netloc=f"{user}:{password}@{host}:{plain.port or 5432}").geturl()
    init = topup(location, "init")  # the test server trusts loopback: the password is unused
    assert init.output.startswith(f"ledger ready at postgresql://{user}:***@")
    outputs = [init.output]
    import_all(location, [*reference_files(la), batch(la, 1) / "plans.csv"])
    outputs.append(topup(location, "pay", AUTUMN, "--out", str(tmp_path / "pay")).output)
    outputs.append(topup(location, "funding", "--out", str(tmp_path / "reports")).output)
    outputs.append(topup(location, "verify").output)
    outputs.append(topup(location, "plan", "hours", "NOPE", "--hours", "5", "--from",
                         "2025-10-01", ok=False).output)
    wrong_port = plain._replace(netloc=f"{user}:{password}@{host}:1").geturl()
    refused = topup(wrong_port, "history", "X", ok=False)
    assert refused.exit_code == 4 and f"{user}:***@{host}:1" in refused.output
    outputs.append(refused.output)
    written = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    for secret in (password, key):
        assert not any(secret in text for text in outputs), secret
        assert secret not in caplog.text
        assert not any(secret.encode() in data for data in written)
