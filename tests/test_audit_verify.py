"""`topup verify` against a real ledger tampered with by raw SQL (issue 6), on SQLite and PostgreSQL.

Each test builds the same small history (see test_audit_support), changes the stored events
directly in the database table as someone with its password could, and reads the report:
which checks fail, and which event it names as the first that does not match. The auditor's
digests ("autumn": the chain head after the autumn run, "spring", "end") play the copies kept
outside the ledger; an in-ledger seal alone cannot see a cut-off tail or a rewritten chain.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from test_audit_support import History, Raw, build_history, topup
from topup_ledger.audit.files import file_digest
from topup_ledger.io.payment_files import write_files_for_run
from topup_ledger.storage.chain import GENESIS, envelope_of, next_link
from topup_ledger.storage.store import EventStore


@pytest.fixture
def history(location: str, clock: Any, tmp_path: Path) -> History:
    # A ledger without a key (made before ledger keys, or rewritten by someone who holds its
    # key): what the chain, the seals and the digests catch on their own. On a keyed ledger
    # every raw edit below is also named by its failed authentication (tests/test_trust.py).
    Raw(location).made_before_keys()
    return build_history(location, clock, tmp_path / "payments")


def verify(history: History, clock: Any, *digests: str, files: Path | None = None) -> tuple[int, Any]:
    args = ["verify", "--json", *(f"--digest={d}" for d in digests)]
    if files is not None:
        args.append(f"--files={files}")
    result = topup(history.location, clock, *args)
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.output)


def position_of(digest: str) -> int:
    return int(digest.split("@")[1])


def kinds(report: Any) -> set[str]:
    return {p["kind"] for p in report["problems"]}


def messages(report: Any) -> str:
    return "\n".join(f"{p['position']} {p['event']} {p['message']}" for p in report["problems"])


def test_an_untouched_ledger_verifies_clean(history: History, clock: Any) -> None:
    code, report = verify(history, clock, *history.digests.values())
    assert code == 0, messages(report)
    assert report["ok"] and report["problems"] == [] and report["first_mismatch"] is None
    statuses = [(c["source"], c["status"]) for c in report["checkpoints"]]
    assert statuses.count(("seal", "ok")) == 5 and statuses.count(("run", "ok")) == 3
    assert statuses.count(("digest", "ok")) == 3
    assert report["files_checked"] == 12 and report["files_rebuilt"] == 12
    assert report["head"] == history.digests["end"]
    text = topup(history.location, clock, "verify").output
    assert "OK:" in text and history.digests["end"] in text


def test_a_payload_byte_changed(history: History, clock: Any) -> None:
    raw = Raw(history.location)
    changed = history.positions["band change"]  # P2's move to band D, right after "autumn"
    assert changed == position_of(history.digests["autumn"]) + 1
    raw.replace(changed, b'"band":"D"', b'"band":"C"')

    code, report = verify(history, clock)  # the ledger's own seals see it
    assert code == 1
    first = report["first_mismatch"]
    assert first["position"] <= changed <= first["upto"]
    assert "seal seals/2" in messages(report)  # the spring run's seal no longer matches

    code, report = verify(history, clock, history.digests["autumn"])
    assert code == 1
    assert report["first_mismatch"]["position"] == changed
    assert report["first_mismatch"]["event"] == "P2/2"
    assert report["confirmed_upto"] == position_of(history.digests["autumn"])


def test_an_event_deleted(history: History, clock: Any) -> None:
    raw = Raw(history.location)
    deleted = history.positions["band change"]  # P2/2
    raw.delete(deleted)

    code, report = verify(history, clock, history.digests["autumn"])
    assert code == 1
    assert report["first_mismatch"]["position"] == deleted + 1  # the first event after the hole
    assert "P2/2 is missing" in messages(report)  # P2 goes on at version 3
    assert any(h["position"] == deleted + 1 for h in report["hints"])  # and a position is missing


def test_an_event_inserted(history: History, clock: Any) -> None:
    raw = Raw(history.location)
    where = history.positions["band change"]
    forged = orjson.dumps({"v": 1, "at": "2025-11-20T14:00:00+00:00", "data": {
        "plan": "P3", "effective": "2025-10-06", "band": "D", "reason": "annual-review"}})
    raw.insert(where, "plan:P3", 3, "plan.band_changed", forged)  # P3/2 comes later

    code, report = verify(history, clock)
    assert code == 1
    assert "version 2 comes after version 3 of plan:P3" in messages(report)

    code, report = verify(history, clock, history.digests["autumn"])
    assert code == 1
    assert report["first_mismatch"]["position"] == where
    assert report["first_mismatch"]["event"] == "P3/3"


def test_two_events_swapped(history: History, clock: Any) -> None:
    raw = Raw(history.location)
    a, b = history.positions["band change"], history.positions["transfer"]
    raw.swap(a, b)

    code, report = verify(history, clock)
    assert code == 1
    assert report["first_mismatch"]["position"] <= a

    code, report = verify(history, clock, history.digests["autumn"])
    assert code == 1
    assert report["first_mismatch"]["position"] == a
    assert report["first_mismatch"]["event"] == "P1/2"  # the transfer now stands first
    assert any(h["position"] == b and "before the event before it" in h["message"]
               for h in report["hints"])


def test_a_seal_edited(history: History, clock: Any) -> None:
    raw = Raw(history.location)
    spring = raw.where("ledger.sealed")[1]  # the spring run's seal, seals/2
    head = envelope_of(spring.state)["data"]["head"]  # type: ignore[index]
    raw.replace(spring.position, head.encode(), ("0" * 64).encode())

    code, report = verify(history, clock)
    assert code == 1
    first = report["first_mismatch"]
    assert (first["position"], first["event"]) == (spring.position, "seals/2")
    altered = [p for p in report["problems"] if p["event"] == "seals/2"]
    assert altered and "was altered" in altered[0]["message"]
    assert "payment run 2025-26-spring-r1" in altered[0]["message"]  # its run record disagrees


def test_an_on_demand_seal_edited(history: History, clock: Any) -> None:
    raw = Raw(history.location)
    last = raw.where("ledger.sealed")[-1]  # `topup seal` at the end: no run record repeats it
    head = envelope_of(last.state)["data"]["head"]  # type: ignore[index]
    raw.replace(last.position, head[:8].encode(), b"ffffffff")

    code, report = verify(history, clock)
    assert code == 1
    assert any(p["event"] == "seals/5" and "does not match" in p["message"]
               for p in report["problems"])


def test_the_tail_truncated_is_caught_only_with_a_digest(history: History, clock: Any) -> None:
    raw = Raw(history.location)
    cut = position_of(history.digests["spring"])
    raw.truncate_after(cut)  # the summer run, its seal, files and the last seal are gone

    code, report = verify(history, clock)
    assert code == 0, messages(report)  # nothing inside the ledger can tell

    code, report = verify(history, clock, history.digests["spring"], history.digests["end"])
    assert code == 1
    assert "the ledger ends at position" in messages(report)
    assert report["first_mismatch"]["position"] == cut + 1
    assert report["confirmed_upto"] == cut


def rewrite_after_edit(location: str, files: Path) -> None:
    """What someone who knows the chain does after editing an event: recompute every later link
    and put the new heads into every later seal and run record, rebuild each later run's files
    (their seal column changes) and record the new files' digests — a consistent forgery."""
    raw = Raw(location)
    store = EventStore(location)
    try:
        links: dict[int, bytes] = {0: GENESIS}
        head = GENESIS
        for row in raw.rows():
            state = envelope_of(row.state)
            assert state is not None
            data = state["data"]
            if row.topic == "ledger.sealed":
                data["head"] = links[data["position"]].hex()
            elif row.topic == "payment.run_recorded":
                position = int(data["seal"].split("@")[1])
                data["seal"] = f"{links[position].hex()}@{position}"
            elif row.topic == "payment.files_written":
                written = {p.name: p for p in write_files_for_run(store, data["run_id"], files)}
                for entry in data["files"]:
                    entry["sha256"], entry["size"] = file_digest(written[entry["name"]])
            new = orjson.dumps(state)
            if new != row.state:
                raw.set_state(row.position, new)
            head = next_link(head, row.position, row.stream, row.version, row.topic, new)
            links[row.position] = head
    finally:
        store.close()


def test_every_later_link_recomputed_is_caught_only_with_a_digest(history: History, clock: Any) -> None:
    raw = Raw(history.location)
    changed = history.positions["band change"]
    raw.replace(changed, b'"band":"D"', b'"band":"C"')
    rewrite_after_edit(history.location, history.out)

    code, report = verify(history, clock)
    assert code == 0, messages(report)  # every seal, run record and file agrees with the forgery

    code, report = verify(history, clock, history.digests["autumn"], history.digests["end"])
    assert code == 1
    assert report["first_mismatch"]["position"] == changed
    failing = [c for c in report["checkpoints"] if c["status"] != "ok"]
    assert [c["source"] for c in failing] == ["digest"]
    # the rewritten seals match the forged chain, so they confirm nothing once a digest fails
    assert report["confirmed_upto"] == position_of(history.digests["autumn"])


def test_a_payment_file_edited_after_it_was_written(history: History, clock: Any, tmp_path: Path) -> None:
    csv = history.out / "payments-2025-26-spring-r1.csv"
    text = csv.read_text()
    edited = text.replace("100002", "100009", 1)
    assert edited != text
    copy = tmp_path / "finance-copy"
    copy.mkdir()
    (copy / csv.name).write_text(edited)  # a copy edited elsewhere, checked with --files
    code, report = verify(history, clock, files=copy)
    assert code == 1
    assert [p["kind"] for p in report["problems"]] == ["file"]
    assert str(copy / csv.name) in report["problems"][0]["message"]

    csv.write_text(edited)  # the file where the run wrote it
    code, report = verify(history, clock)
    assert code == 1
    assert kinds(report) == {"file"}
    problem = report["problems"][0]
    assert "changed after it was written" in problem["message"]
    assert problem["event"] == "files:2025-26-spring-r1/1"

    text_report = topup(history.location, clock, "verify").output
    assert "FAILED" in text_report and csv.name in text_report


def test_missing_files_are_noted_not_failed(history: History, clock: Any) -> None:
    for path in history.out.iterdir():
        path.unlink()
    code, report = verify(history, clock)
    assert code == 0
    assert any("not found" in note for note in report["notes"])


def test_a_malformed_digest_is_refused(history: History, clock: Any) -> None:
    result = topup(history.location, clock, "verify", "--digest", "abc@1")
    assert result.exit_code == 2
    assert "HEX" in result.output or "digest" in result.output


@pytest.fixture
def readonly_check(history: History) -> Iterator[None]:
    before = Raw(history.location).rows()
    yield
    assert Raw(history.location).rows() == before


def test_verify_records_nothing(history: History, clock: Any, readonly_check: None) -> None:
    verify(history, clock, *history.digests.values())
