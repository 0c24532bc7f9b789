"""`topup replay --as-of`: payment files and projections as known at a moment (issue 6).

On SQLite and PostgreSQL: a history with three runs and backdated changes recorded between
them (test_audit_support). Replayed as of each run's recorded time, every payment file of that
run and of the runs before it is byte-identical to the file written then; what was known and
paid at a moment is not changed by anything recorded later; replay records nothing and writes
only into --out. Versioned schemas: an event stored in an old version replays (upcast on read,
its bytes never rewritten) to the same amounts; an unknown version fails closed.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from conftest import FakeClock, new_location
from schema_check import validate_stored
from test_audit_support import History, Raw, at, build_history, topup
from topup_ledger.domain.calendar import parse_moment as parse_as_of
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.chain import chain_head, digest
from topup_ledger.storage.store import EventStore


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def replay(history: History, clock: Any, when: str, out: Path) -> Any:
    result = topup(history.location, clock, "replay", "--as-of", when, "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_each_run_replayed_as_of_its_time_gives_its_files_byte_for_byte(
        location: str, clock: FakeClock, tmp_path: Path) -> None:
    history = build_history(location, clock, tmp_path / "payments")
    written = files_in(history.out)
    assert len(written) == 12  # 3 runs × (school file, line file) × (CSV, Parquet)
    store = EventStore(location)
    try:
        for k, (run_id, when) in enumerate(history.runs.items()):
            out = tmp_path / f"as-of-{run_id}"
            report = replay(history, clock, when.isoformat(), out)
            replayed = files_in(out)
            assert report["runs"] == list(history.runs)[:k + 1]
            for earlier in list(history.runs)[:k + 1]:
                mine = [name for name in written if earlier in name]
                assert len(mine) == 4
                for name in mine:
                    assert replayed[name] == written[name], f"{name} as of {when} differs"
            later = [name for name in replayed if any(r in name for r in list(history.runs)[k + 1:])]
            assert later == []
            # the digest the replay stands on is the chain head at its position
            head, position = chain_head(store, upto=report["position"])
            assert report["seal"] == digest(head, position)
            manifest = json.loads((out / "replay.json").read_text())
            assert manifest["position"] == report["position"]
            assert {f["name"] for f in manifest["files"]} == set(replayed) - {"replay.json"}
    finally:
        store.close()


def test_what_was_known_and_paid_then_is_not_changed_by_what_was_recorded_later(
        location: str, clock: FakeClock, tmp_path: Path) -> None:
    before: dict[str, dict[str, bytes]] = {}

    def replay_now(history: History) -> None:  # right after the autumn run, before what follows
        replay(history, clock, history.runs["2025-26-autumn-r1"].isoformat(), tmp_path / "then")
        before["autumn"] = files_in(tmp_path / "then")

    history = build_history(location, clock, tmp_path / "payments", after_autumn=replay_now)
    when = history.runs["2025-26-autumn-r1"].isoformat()
    report = replay(history, clock, when, tmp_path / "now")
    after = files_in(tmp_path / "now")
    assert report["projections"], report["projections_note"]  # the projections were replayed too
    assert set(after) == set(before["autumn"])
    for name, content in before["autumn"].items():
        if name != "replay.json":
            assert after[name] == content, f"{name} as of the autumn run changed later"
    then = json.loads(before["autumn"]["replay.json"])
    now = json.loads(after["replay.json"])
    assert (then["position"], then["seal"], then["files"]) == (now["position"], now["seal"], now["files"])
    # …while the ledger as known now does pay the backdated changes as arrears and claw-back
    latest = replay(history, clock, "2100-01-01", tmp_path / "latest")
    assert latest["position"] > now["position"]
    lines = (tmp_path / "latest" / "payment-lines-2025-26-spring-r1.csv").read_text()
    assert "arrears" in lines


def test_replay_records_nothing_and_writes_only_into_out(
        location: str, clock: FakeClock, tmp_path: Path) -> None:
    history = build_history(location, clock, tmp_path / "payments")
    rows = Raw(location).rows()
    around = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "replayed"
    replay(history, clock, "2026-01-15", out)
    assert Raw(location).rows() == rows
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*around, "replayed"])
    assert (out / "replay.json").is_file()


def test_as_of_dates_and_times(location: str, clock: FakeClock, tmp_path: Path) -> None:
    history = build_history(location, clock, tmp_path / "payments")
    nothing = replay(history, clock, "2025-08-01", tmp_path / "a")
    assert (nothing["position"], nothing["runs"]) == (0, [])
    assert nothing["seal"] == "0" * 64 + "@0"
    autumn = history.runs["2025-26-autumn-r1"]
    a_second_before = replay(history, clock, (autumn - timedelta(seconds=1)).isoformat(), tmp_path / "b")
    assert a_second_before["runs"] == []
    # a date is the end of that day (UTC); a time without an offset is UTC
    day = replay(history, clock, "2025-09-01", tmp_path / "c")
    assert day["runs"] == ["2025-26-autumn-r1"]
    assert day["position"] == int(history.digests["autumn"].split("@")[1])  # and its files record
    naive = replay(history, clock, autumn.replace(tzinfo=None).isoformat(), tmp_path / "d")
    assert naive["position"] == day["position"] - 1  # the files were recorded a second later
    assert parse_as_of("2025-09-01T09:00:00+01:00") == parse_as_of("2025-09-01T08:00:00Z")
    bad = topup(location, clock, "replay", "--as-of", "next tuesday", "--out", str(tmp_path / "e"))
    assert bad.exit_code == 2 and "not a time" in bad.output


# Versioned schemas.

PLAN_V1 = {"plan": "P1", "pupil": "PR-0001", "school": "100001", "effective": "2025-09-01",
           "hours": "27.5", "band": None}  # version 1 of plan.issued: no kind


def reference(ledger: Ledger) -> None:
    ledger.add_school("100001", "St Mary's, Oakfield", "mainstream")
    ledger.set_rate("2025-26", 1181, Decimal(38), 600000)
    ledger.set_tariff("2025-26", {"B": 400000, "C": 700000})


def test_an_event_stored_in_an_old_version_replays_to_the_same_amounts(
        backend: str, location: str, tmp_path: Path) -> None:
    old_clock, new_clock = FakeClock(), FakeClock()
    other = new_location(backend, tmp_path)
    EventStore(other, create=True).close()
    Raw(location).made_before_keys()  # the old ledger, from before ledger keys
    old, new = EventStore(location), EventStore(other)
    try:
        old_ledger, new_ledger = Ledger(old, clock=old_clock), Ledger(new, clock=new_clock)
        reference(old_ledger)
        reference(new_ledger)
        # an older program wrote plan.issued version 1; this one writes version 2
        stored = orjson.dumps({"v": 1, "at": old_clock().isoformat(), "data": PLAN_V1})
        old.recorder.insert_events([StoredEvent("plan:P1", 1, "plan.issued", stored)])
        new_ledger.issue_plan("P1", "PR-0001", "100001", date(2025, 9, 1), hours=Decimal("27.5"))
        assert validate_stored(old) == 4  # the old event matches its own (version 1) schema
        assert old.stream("plan:P1")[0].fact == new.stream("plan:P1")[0].fact  # upcast: kind ehcp
        for c in (old_clock, new_clock):
            at(c, "2025-09-01T08:00:00")
        paid_old, paid_new = pay(old_ledger, "2025-26/autumn"), pay(new_ledger, "2025-26/autumn")
        assert paid_old.total == paid_new.total > 0
        assert [p.lines for p in paid_old.school_paid] == [p.lines for p in paid_new.school_paid]
        when = old.stream_recorded("payments")[0].recorded_at.isoformat()
    finally:
        old.close()
        new.close()
    for loc, c, out in ((location, old_clock, "old"), (other, new_clock, "new")):
        result = topup(loc, c, "replay", "--as-of", when, "--out", str(tmp_path / out))
        assert result.exit_code == 0, result.output

    def amounts(folder: str) -> list[list[str]]:
        rows = (tmp_path / folder / "payment-lines-2025-26-autumn-r1.csv").read_text().splitlines()
        return [row.split(",")[:-1] for row in rows]  # all but caused_by

    assert amounts("old") == amounts("new")
    school_old = (tmp_path / "old" / "payments-2025-26-autumn-r1.csv").read_text()
    school_new = (tmp_path / "new" / "payments-2025-26-autumn-r1.csv").read_text()
    assert school_old.rsplit(",", 1)[0] == school_new.rsplit(",", 1)[0]  # the seals differ: other bytes
    # the stored bytes were never rewritten
    assert Raw(location).where("plan.issued")[0].state == stored
    assert topup(location, old_clock, "verify").exit_code == 0


def test_an_unknown_schema_version_fails_closed(location: str, clock: FakeClock, tmp_path: Path) -> None:
    history = build_history(location, clock, tmp_path / "payments")
    at(clock, "2026-05-01T10:00:00")
    store = EventStore(location)
    try:
        # a newer program, holding the ledger's key, wrote this version 99 event
        future = store.mapper.authenticated("plan:P1", 4, "plan.hours_changed", orjson.dumps(
            store.mapper.envelope(99, clock().isoformat(), {
                "plan": "P1", "effective": "2026-05-01", "hours": "30", "reason": "",
                "approved_by": "x"})))
        store.recorder.insert_events([StoredEvent("plan:P1", 4, "plan.hours_changed", future)])
    finally:
        store.close()
    out = tmp_path / "replayed"
    result = topup(location, clock, "replay", "--as-of", "2026-06-01", "--out", str(out))
    assert result.exit_code != 0
    assert "version 99" in result.output and "upgrade" in result.output
    assert "P1/4" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())
    # as of a moment before it was recorded, the ledger replays as it did
    earlier = replay(history, clock, "2026-04-30", tmp_path / "earlier")
    assert earlier["runs"] == list(history.runs)
    # the chain is unaffected: the event is intact, only too new for this program to read
    assert topup(location, clock, "verify").exit_code == 0


@pytest.mark.parametrize("when", ["2025-13-01", "yesterday", ""])
def test_a_bad_time_is_refused(location: str, clock: FakeClock, tmp_path: Path, when: str) -> None:
    result = topup(location, clock, "replay", "--as-of", when, "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_a_damaged_event_stops_replay_with_a_message(location: str, clock: FakeClock, tmp_path: Path) -> None:
    history = build_history(location, clock, tmp_path / "payments")
    raw = Raw(location)
    run = raw.where("payment.run_recorded")[0]
    raw.set_state(run.position, run.state.replace(b'"run_id"', b'"run_i!"'))
    result = topup(location, clock, "replay", "--as-of", "2026-06-01", "--out", str(tmp_path / "x"))
    assert result.exit_code == 5 and "Traceback" not in result.output
    assert f"payments/1 at position {run.position}" in result.output
    raw.set_state(run.position, b"\x00garbage")
    result = topup(location, clock, "replay", "--as-of", "2026-06-01", "--out", str(tmp_path / "x"))
    assert result.exit_code == 5 and "not a readable event" in result.output
    # its recorded time is unreadable, so no moment can be replayed without it: fail closed
    result = topup(location, clock, "replay", "--as-of", "2025-08-31", "--out", str(tmp_path / "y"))
    assert result.exit_code == 5 and "not a readable event" in result.output
    assert history.runs  # (the history had runs to replay)
