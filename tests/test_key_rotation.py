"""Key rotation (issue 21): a new ledger key takes over from a recorded event onward.

`topup key rotate` records a ``ledger.key_rotated`` event, authenticated by the key it
replaces, naming the new key's id; every later event is authenticated by the new key. Old
events still verify with the old key, which is kept; verify names the key of each stretch
and fails on an event authenticated by a key that is not its stretch's, however genuine that
key (a replaced key that leaked is why keys are rotated). Forgeries are made as an attacker
would, straight in the database. Every case runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner, Result

from conftest import KEY_DIR, FakeClock
from reliability_support import record_figure
from test_audit_support import Raw
from test_trust import insert_row
from topup_ledger.cli import main
from topup_ledger.storage import keys
from topup_ledger.storage.store import EventStore, is_postgres

OAK, ELM = "100001", "100002"


def topup(location: str, clock: FakeClock, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), obj={"location": location, "clock": clock},
                              env=env, catch_exceptions=False)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def ledger_id(location: str) -> str:
    store = EventStore(location)
    try:
        return (store.info or {})["ledger_id"]
    finally:
        store.close()


def backend(location: str) -> str:
    return "postgres" if is_postgres(location) else "sqlite"


def rotated(location: str, clock: FakeClock, tmp_path: Path) -> dict[str, Any]:
    """Two schools and a plan under the first key, a rotation, then a plan under the new key;
    what the rotation answered, and the stored rows."""
    ok(topup(location, clock, "school", "add", OAK, "--name", "Oak", "--setting", "mainstream"))
    ok(topup(location, clock, "school", "add", ELM, "--name", "Elm", "--setting", "special"))
    ok(topup(location, clock, "plan", "issue", "P1", "--pupil", "PR-1", "--school", ELM,
             "--from", "2025-09-01", "--hours", "20"))
    answer = json.loads(ok(topup(location, clock, "key", "rotate", "--reason", "yearly rotation",
                                 "--json")).output)
    ok(topup(location, clock, "plan", "issue", "P2", "--pupil", "PR-2", "--school", OAK,
             "--from", "2025-09-01", "--hours", "20"))
    return answer


def named_keys(location: str) -> list[tuple[str, str]]:
    return [(r.topic, orjson.loads(r.state).get("key")) for r in Raw(location).rows()]


def verify(location: str, clock: FakeClock, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    result = topup(location, clock, "verify", "--no-rebuild", "--json", env=env)
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.output)


def test_a_new_key_takes_over_from_the_rotation_and_old_events_still_verify(
        location: str, tmp_path: Path) -> None:
    clock = FakeClock()
    before = ledger_id(location)
    old_path = Path(KEY_DIR) / f"{before}.key"
    old = keys.read_key_file(old_path)
    answer = rotated(location, clock, tmp_path)
    assert answer["previous_key_id"] == old.id and answer["key_id"] != old.id
    assert answer["event"] == "keys/1" and answer["position"] == 4 and answer["default_replaced"]
    # the default key file now holds the new key; the old one is kept by its id
    assert keys.read_key_file(old_path).id == answer["key_id"]
    assert keys.read_key_file(Path(answer["old_key_file"])).id == old.id
    assert Path(answer["old_key_file"]).name == f"{before}.{old.id}.key"
    # three events and the rotation itself by the old key, the plan after it by the new
    assert named_keys(location) == [
        ("school.added", old.id), ("school.added", old.id), ("plan.issued", old.id),
        ("ledger.key_rotated", old.id), ("plan.issued", answer["key_id"])]
    code, report = verify(location, clock)
    assert code == 0 and report["problems"] == [], report["problems"]
    assert [(k["key_id"], k["from_position"], k["to_position"], k["events"], k["started_by"])
            for k in report["keys"]] == [(old.id, 1, 4, 4, None), (answer["key_id"], 5, None, 1, "keys/1")]
    text = topup(location, clock, "verify", "--no-rebuild").output
    assert f"{old.id}  1 to 4" in text and f"{answer['key_id']}  5 to the end" in text
    # a second rotation: three stretches, each verified with its own key
    ok(topup(location, clock, "key", "rotate", "--reason", "officer left"))
    ok(topup(location, clock, "school", "add", "100003", "--name", "Ash", "--setting", "special"))
    code, report = verify(location, clock)
    assert code == 0 and [k["events"] for k in report["keys"]] == [4, 2, 1]
    record_figure("trust", probe="key rotation: events before and after two rotations",
                  backend=backend(location),
                  result="verify exit 0; 3 stretches named, each by its own key")


def test_the_old_key_is_refused_for_writes_after_a_rotation(location: str, tmp_path: Path) -> None:
    clock = FakeClock()
    old_text = (Path(KEY_DIR) / f"{ledger_id(location)}.key").read_text()
    answer = rotated(location, clock, tmp_path)
    rows = len(Raw(location).rows())
    refused = topup(location, clock, "school", "add", "100009", "--name", "Yew", "--setting",
                    "special", env={"TOPUP_LEDGER_KEY": old_text.strip()})
    assert refused.exit_code == 4
    assert "the ledger key is an old one" in refused.output
    assert f"replaced by key {answer['key_id']} at position 4" in refused.output
    assert len(Raw(location).rows()) == rows


def test_an_old_key_used_after_its_rotation_is_named_and_not_paid(location: str, tmp_path: Path) -> None:
    """An attacker holds the old key (it leaked: the reason for rotating) and writes a row,
    properly authenticated with that key, after the rotation."""
    clock = FakeClock()
    ok(topup(location, clock, "calendar", "set", "--ay", "2025-26"))
    ok(topup(location, clock, "rate", "set", "--fy", "2025-26", "--hourly", "11.81", "--weeks", "38"))
    old = keys.read_key_file(Path(KEY_DIR) / f"{ledger_id(location)}.key")
    answer = rotated(location, clock, tmp_path)
    state = orjson.dumps({"v": 1, "at": "2025-09-01T09:10:00+00:00", "by": "mallory", "key": old.id,
                          "data": {"plan": "P1", "effective": "2025-09-01", "hours": "40",
                                   "reason": "", "approved_by": None}})
    position = insert_row(location, "plan:P1", 2, "plan.hours_changed",
                          keys.seal_state(old.key, "plan:P1", 2, "plan.hours_changed", state))
    code, report = verify(location, clock)
    assert code == 1
    auth = [p for p in report["problems"] if p["kind"] == "auth"]
    assert [(p["position"], p["event"]) for p in auth] == [(position, "P1/2")]
    assert f"authenticated by key {old.id}, an old key: key {answer['key_id']}" in auth[0]["message"]
    assert report["keys"][-1]["not_authenticated"] == 1
    paid = topup(location, clock, "pay", "2025-26/autumn", "--out", str(tmp_path / "out"))
    assert paid.exit_code == 4 and "refusing to pay" in paid.output and "P1/2" in paid.output
    assert not (tmp_path / "out").exists()
    record_figure("trust", probe="row written with the replaced (leaked) key after a rotation",
                  backend=backend(location),
                  result=f"verify exit 1 naming P1/2; pay exit {paid.exit_code}, nothing written")


def test_a_forged_rotation_is_not_honoured_and_is_named(location: str, tmp_path: Path) -> None:
    """An attacker without the key inserts a rotation to a key of their own, then an event
    authenticated by it: the ledger keeps its own key, and verify names both rows."""
    clock = FakeClock()
    answer = rotated(location, clock, tmp_path)
    mine = keys.LedgerKey(os.urandom(32), "mallory")
    rotation = orjson.dumps({"v": 1, "at": "2025-09-01T09:10:00+00:00", "by": "mallory",
                             "key": answer["key_id"], "data": {
                                 "key_id": mine.id, "previous_key_id": answer["key_id"], "reason": ""}})
    first = insert_row(location, "keys", 2, "ledger.key_rotated",
                       keys.seal_state(mine.key, "keys", 2, "ledger.key_rotated", rotation))
    school = orjson.dumps({"v": 1, "at": "2025-09-01T09:10:01+00:00", "by": "mallory",
                           "key": mine.id, "data": {"urn": "100666", "name": "Fake",
                                                    "setting": "mainstream", "la_code": None}})
    second = insert_row(location, "school:100666", 1, "school.added",
                        keys.seal_state(mine.key, "school:100666", 1, "school.added", school))
    code, report = verify(location, clock)
    assert code == 1
    assert sorted(p["position"] for p in report["problems"] if p["kind"] == "auth") == [first, second]
    assert [k["key_id"] for k in report["keys"]] == [answer["previous_key_id"], answer["key_id"]]
    # the operator's key is still the ledger's: it records, and the attacker's key is refused
    ok(topup(location, clock, "school", "add", "100004", "--name", "Yew", "--setting", "special"))
    theirs = topup(location, clock, "school", "add", "100005", "--name", "Fir", "--setting", "special",
                   env={"TOPUP_LEDGER_KEY": base64.b64encode(mine.key).decode()})
    assert theirs.exit_code == 4 and "the ledger key is wrong" in theirs.output
    record_figure("trust", probe="forged rotation to an attacker's key, then a row by it",
                  backend=backend(location),
                  result="not honoured; verify exit 1 naming both rows; the attacker's key refused")


def test_verify_says_when_an_old_key_is_not_at_hand(location: str, tmp_path: Path) -> None:
    clock = FakeClock()
    answer = rotated(location, clock, tmp_path)
    # an auditor's machine with only the current key: the old events cannot be checked
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    current = (Path(KEY_DIR) / f"{ledger_id(location)}.key").read_text().strip()
    env = {"TOPUP_KEY_DIR": str(elsewhere), "TOPUP_LEDGER_KEY": current}
    code, report = verify(location, clock, env)
    assert code == 1
    [problem] = report["problems"]
    assert problem["kind"] == "key" and answer["previous_key_id"] in problem["message"]
    assert "positions 1 to 4 (4 events), is not at hand" in problem["message"]
    assert report["first_mismatch"] is None
    # given its file, as a secret store would, they verify
    code, report = verify(location, clock, {**env, "TOPUP_LEDGER_OLD_KEY_FILES": answer["old_key_file"]})
    assert code == 0, report["problems"]


def test_a_key_from_a_secret_store_is_rotated_to_a_key_made_there(location: str, tmp_path: Path) -> None:
    clock = FakeClock()
    default = Path(KEY_DIR) / f"{ledger_id(location)}.key"
    store_dir = tmp_path / "vault"
    store_dir.mkdir()
    old_file, new_file = store_dir / "old.key", store_dir / "new.key"
    old_file.write_text(default.read_text())
    new = keys.LedgerKey(os.urandom(32), "vault")
    new_file.write_text(base64.b64encode(new.key).decode() + "\n")
    before = default.read_text()
    answer = json.loads(ok(topup(location, clock, "--key-file", str(old_file), "key", "rotate",
                                 "--reason", "moved to the vault", "--new-key-file", str(new_file),
                                 "--json")).output)
    assert answer["key_id"] == new.id and answer["default_replaced"] is False
    assert default.read_text() == before  # the default file is not the one in use: untouched
    ok(topup(location, clock, "--key-file", str(new_file), "school", "add", OAK, "--name", "Oak",
             "--setting", "mainstream"))
    assert named_keys(location)[-1] == ("school.added", new.id)
    refused = topup(location, clock, "--key-file", str(old_file), "school", "add", ELM, "--name",
                    "Elm", "--setting", "special")
    assert refused.exit_code == 4 and "an old one" in refused.output
    again = topup(location, clock, "--key-file", str(new_file), "key", "rotate", "--reason", "again",
                  "--new-key-file", str(old_file))
    assert again.exit_code == 4 and "has been this ledger's key already" in again.output
    code, report = verify(location, clock, {"TOPUP_LEDGER_KEY_FILE": str(new_file)})
    assert code == 0 and [k["key_id"] for k in report["keys"]] == [answer["previous_key_id"], new.id]
