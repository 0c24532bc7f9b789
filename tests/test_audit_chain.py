"""The hash chain as specified in schemas/chain.md, and `topup seal` (issue 6).

The specification's test vectors are checked against both implementations: the ledger's
(`audit/chain.py`) and the standalone script's (`scripts/verify_export.py`). Payment runs,
`read_known`, `verify` and the export all agree on the head; a seal records it on demand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import FakeClock
from test_audit_export import load_script
from test_audit_support import History, Raw, build_history, topup
from topup_ledger.audit.verify import verify
from topup_ledger.storage.chain import (
    GENESIS,
    DigestError,
    canonical,
    chain_head,
    digest,
    envelope_of,
    next_link,
    parse_digest,
)
from topup_ledger.storage.known import read_known
from topup_ledger.storage.store import EventStore

SPEC = Path(__file__).resolve().parents[1] / "schemas" / "chain.md"


def vectors() -> list[dict[str, Any]]:
    """The events of the spec's test vectors, as written there."""
    found = []
    for block in re.findall(r"```text\n(position:.*?)```", SPEC.read_text(), re.S):
        fields = dict(line.split(": ", 1) for line in block.strip().splitlines())
        found.append({"position": int(fields["position"]), "stream": fields["stream"],
                      "version": int(fields["version"]), "type": fields["type"],
                      "payload": fields["payload"].encode(), "link": fields["link"]})
    return found


def test_the_specification_vectors_hold_for_the_ledger() -> None:
    events = vectors()
    assert len(events) == 3  # two topup-chain/1 events, then one topup-chain/2 (it names its actor)
    head = GENESIS
    heads = []
    for e in events:
        head = next_link(head, e["position"], e["stream"], e["version"], e["type"], e["payload"])
        assert head.hex() == e["link"]
        heads.append(head)
    shown = re.search(r"shown with each LF as a line break:\n\n```text\n(.*?)```", SPEC.read_text(), re.S)
    assert shown
    second = events[1]
    assert canonical(second["position"], second["stream"], second["version"], second["type"],
                     second["payload"]) == shown.group(1).encode()
    assert f"`{digest(heads[1], second['position'])}`" in SPEC.read_text()
    third = canonical(events[2]["position"], events[2]["stream"], events[2]["version"],
                      events[2]["type"], events[2]["payload"])
    assert third.startswith(b"topup-chain/2\n1:3\n14:plan:EHCP-0001\n1:2\n18:plan.hours_changed\n"
                            b"1:1\n25:2025-09-02T10:00:00+00:00\n13:finance_clerk\n10:2025-10-01\n250:")


def test_the_specification_vectors_hold_for_the_standalone_script() -> None:
    script = load_script()
    previous = bytes(32)
    for e in vectors():
        envelope = envelope_of(e["payload"])
        assert envelope is not None
        row = {"position": e["position"], "stream": e["stream"], "version": e["version"],
               "type": e["type"], "schema_version": envelope["v"], "recorded_at": envelope["at"],
               "effective": envelope["data"].get("effective") or "", "payload": e["payload"].decode(),
               "recorded_by": envelope.get("by") or ""}
        previous = script.hashlib.sha256(previous + script.canonical(row)).digest()
        assert previous.hex() == e["link"]


def test_fields_are_length_prefixed_so_no_two_events_encode_alike() -> None:
    a = canonical(1, "plan:A\n1", 1, "plan.issued", b"{}")
    b = canonical(1, "plan:A", 11, "plan.issued", b"{}")
    assert a != b
    damaged = canonical(3, "seals", 1, "ledger.sealed", b"\xff not json")
    assert damaged.endswith(b"0:\n0:\n0:\n10:\xff not json\n")  # no version, time or date


def test_digests_are_hex_at_position() -> None:
    head = bytes(range(32))
    text = digest(head, 42)
    assert parse_digest(text) == (head, 42)
    assert parse_digest(text.upper().replace("@", "@")) == (head, 42)
    for bad in ("", "abc@1", f"{head.hex()}@", f"{head.hex()}@-1", f"{head.hex()}@01", head.hex()):
        with pytest.raises(DigestError):
            parse_digest(bad)


@pytest.fixture
def history(location: str, clock: FakeClock, tmp_path: Path) -> History:
    return build_history(location, clock, tmp_path / "payments")


def test_every_reader_agrees_on_the_head(history: History) -> None:
    store = EventStore(history.location)
    try:
        head, position = chain_head(store)
        assert read_known(store).head == head
        assert verify(store).digest == digest(head, position) == history.digests["end"]
        # each payment run was sealed with the head as known when it was worked out
        for seal in Raw(history.location).where("ledger.sealed"):
            data = envelope_of(seal.state)["data"]  # type: ignore[index]
            assert chain_head(store, upto=data["position"])[0].hex() == data["head"]
        for run in Raw(history.location).where("payment.run_recorded"):
            seal_text = envelope_of(run.state)["data"]["seal"]  # type: ignore[index]
            claimed, at = parse_digest(seal_text)
            assert chain_head(store, upto=at) == (claimed, at)
            files = list(history.out.glob(f"payments-{envelope_of(run.state)['data']['run_id']}.csv"))  # type: ignore[index]
            assert files and seal_text in files[0].read_text()  # printed on its payment file
    finally:
        store.close()


def test_seal_records_the_head_on_demand(location: str, clock: FakeClock) -> None:
    empty = json.loads(topup(location, clock, "seal", "--json").output)
    assert empty["digest"] == "0" * 64 + "@0" and empty["event"] == "seals/1"
    result = topup(location, clock, "seal", "--reason", "auditor's visit")
    assert result.exit_code == 0
    store = EventStore(location)
    try:
        head, position = chain_head(store, upto=1)
        assert f"sealed {digest(head, position)}" in result.output
        sealed = store.stream_recorded("seals")
        assert [r.fact.reason for r in sealed] == ["on demand", "auditor's visit"]  # type: ignore[attr-defined]
        assert sealed[-1].fact.head == head.hex() and sealed[-1].fact.position == 1  # type: ignore[attr-defined]
    finally:
        store.close()
    assert topup(location, clock, "verify", "--digest", digest(head, position)).exit_code == 0
