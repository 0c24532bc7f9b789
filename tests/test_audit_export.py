"""`topup export events` and the standalone `scripts/verify_export.py` (issue 6).

The export round-trips (the same events in the same order, the same chain head), streams in
row groups with bounded memory, can stop as of a time, and can be checked by a script that shares
no code with the ledger: a tampered export fails it, naming the row.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import math
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from eventsourcing.persistence import StoredEvent

from conftest import FakeClock
from test_audit_support import History, Raw, build_history, topup
from topup_ledger.audit.export import export_events
from topup_ledger.services.recording import Ledger
from topup_ledger.storage import store as store_module
from topup_ledger.storage.chain import chain_head, digest, plain_state
from topup_ledger.storage.store import EventStore

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "verify_export.py"
SPEC = Path(__file__).resolve().parents[1] / "projections" / "events-export.json"


def check(path: Path, *digests: str) -> subprocess.CompletedProcess[str]:
    """Run the standalone script as an auditor would, in a fresh interpreter."""
    args = [sys.executable, str(SCRIPT), str(path), *(f"--digest={d}" for d in digests)]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def history(location: str, clock: FakeClock, tmp_path: Path) -> History:
    return build_history(location, clock, tmp_path / "payments")


def export(history: History, clock: Any, path: Path, *more: str) -> Any:
    result = topup(history.location, clock, "export", "events", "--out", str(path), "--json", *more)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_export_round_trips(history: History, clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    report = export(history, clock, path)
    assert report["digest"] == history.digests["end"] and report["events"] == 31
    table = pq.read_table(path)
    spec = json.loads(SPEC.read_text())
    assert table.schema.names == [c["name"] for c in spec["columns"]]
    store = EventStore(history.location)
    try:
        stored = [(n.id, str(n.originator_id), n.originator_version, n.topic,
                   plain_state(store, n.state).decode()) for n in store.notifications()]
        head, position = chain_head(store)
    finally:
        store.close()
    rows = table.to_pylist()
    assert [(r["position"], r["stream"], r["version"], r["type"], r["payload"]) for r in rows] == stored
    assert f"{rows[-1]['link']}@{rows[-1]['position']}" == digest(head, position) == report["digest"]
    for row in rows:
        envelope = json.loads(row["payload"])
        assert row["schema_version"] == envelope["v"] and row["recorded_at"] == envelope["at"]
        assert row["effective"] == (envelope["data"].get("effective") or "")
    assert pq.ParquetFile(path).metadata.metadata[b"digest"].decode() == report["digest"]
    assert (path.stat().st_mode & 0o777) == 0o600

    done = check(path, history.digests["autumn"], history.digests["end"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout and report["digest"] in done.stdout


def test_the_export_as_of_a_time(history: History, clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "autumn.parquet"
    report = export(history, clock, path, "--as-of", "2025-09-01")
    assert report["digest"] == history.digests["autumn"]
    assert pq.read_table(path).num_rows == int(history.digests["autumn"].split("@")[1])
    assert check(path, history.digests["autumn"]).returncode == 0
    later = check(path, history.digests["end"])  # a digest of a later ledger is not in it
    assert later.returncode == 1 and "not in the export" in later.stdout
    empty = export(history, clock, tmp_path / "none.parquet", "--as-of", "2020-01-01")
    assert (empty["events"], empty["digest"]) == (0, "0" * 64 + "@0")
    assert pq.read_table(tmp_path / "none.parquet").num_rows == 0


def test_the_export_streams_in_row_groups(history: History, tmp_path: Path) -> None:
    store = EventStore(history.location)
    try:
        result = export_events(store, tmp_path / "small-groups.parquet", rows=5)
    finally:
        store.close()
    file = pq.ParquetFile(result.path)
    assert file.metadata.num_rows == 31
    assert file.num_row_groups == math.ceil(31 / 5)


def fill(location: str, start: int, count: int) -> None:
    """Add ``count`` plan.issued events quickly, through the store's recorder."""
    store = EventStore(location)
    try:
        for first in range(start, start + count, 5_000):
            store.recorder.insert_events([StoredEvent(f"plan:P{i}", 1, "plan.issued", orjson.dumps({
                "v": 2, "at": "2025-09-01T09:00:00+00:00", "data": {
                    "plan": f"P{i}", "pupil": f"PR-{i}", "school": "100001", "effective": "2025-09-01",
                    "kind": "ehcp", "hours": "27.5", "band": None}}))
                for i in range(first, min(start + count, first + 5_000))])
    finally:
        store.close()


def peak_export_memory(location: str, path: Path) -> int:
    store = EventStore(location)
    try:
        tracemalloc.start()
        export_events(store, path, rows=500)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        store.close()


def test_the_export_memory_does_not_grow_with_the_ledger(tmp_path: Path) -> None:
    location = str(tmp_path / "big.sqlite")
    EventStore(location, create=True).close()
    fill(location, 0, 3_000)
    small = peak_export_memory(location, tmp_path / "a.parquet")
    fill(location, 3_000, 9_000)  # four times as many events
    large = peak_export_memory(location, tmp_path / "b.parquet")
    assert pq.ParquetFile(tmp_path / "b.parquet").metadata.num_rows == 12_000
    assert large < small * 1.5, (small, large)


def rewrite(path: Path, out: Path, change: Any) -> None:
    rows = pq.read_table(path).to_pylist()
    change(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), out)


def test_a_tampered_export_fails_the_standalone_check(history: History, clock: FakeClock,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    export(history, clock, path)
    changed = history.positions["band change"]

    def one_byte(rows: list[dict[str, Any]]) -> None:
        row = next(r for r in rows if r["position"] == changed)
        row["payload"] = row["payload"].replace('"band":"D"', '"band":"C"')

    rewrite(path, tmp_path / "edited.parquet", one_byte)
    done = check(tmp_path / "edited.parquet")
    assert done.returncode == 1
    assert f"position {changed} (P2/2): this row does not match its link" in done.stdout

    def forged(rows: list[dict[str, Any]]) -> None:
        """The same edit with every later link recomputed with the script's own code."""
        one_byte(rows)
        script = load_script()
        previous = bytes(32)
        for row in rows:
            previous = script.hashlib.sha256(previous + script.canonical(row)).digest()
            row["link"] = previous.hex()

    rewrite(path, tmp_path / "forged.parquet", forged)
    done = check(tmp_path / "forged.parquet")
    assert done.returncode == 1  # the seals in the export still hold the old heads
    assert "ledger.sealed seals/2" in done.stdout and "does not match" in done.stdout
    assert "this row does not match its link" not in done.stdout

    def cut(rows: list[dict[str, Any]]) -> None:
        del rows[20:]

    rewrite(path, tmp_path / "cut.parquet", cut)
    assert check(tmp_path / "cut.parquet").returncode == 0  # a shorter export is still a chain…
    done = check(tmp_path / "cut.parquet", history.digests["end"])
    assert done.returncode == 1 and "not in the export" in done.stdout  # …a digest shows the cut

    def swapped(rows: list[dict[str, Any]]) -> None:
        a, b = changed - 1, changed  # positions 15 and 16 are rows 14 and 15
        for key in ("stream", "version", "type", "schema_version", "recorded_at", "effective",
                    "payload"):
            rows[a][key], rows[b][key] = rows[b][key], rows[a][key]

    rewrite(path, tmp_path / "swapped.parquet", swapped)
    done = check(tmp_path / "swapped.parquet")
    assert done.returncode == 1 and f"position {changed}" in done.stdout


def test_the_script_reports_json_and_refuses_what_it_cannot_read(history: History, clock: FakeClock,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    export(history, clock, path)
    done = subprocess.run([sys.executable, str(SCRIPT), str(path), "--json"], capture_output=True,
                          text=True, timeout=120, check=False)
    report = json.loads(done.stdout)
    assert report["ok"] and report["events"] == 31 and report["head"] == history.digests["end"]
    (tmp_path / "not.parquet").write_text("hello")
    assert check(tmp_path / "not.parquet").returncode == 2
    bad = check(path, "abc@3")
    assert bad.returncode == 2 and "digest" in bad.stderr


def load_script() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("verify_export", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_uses_only_the_standard_library_and_pyarrow() -> None:
    tree = ast.parse(SCRIPT.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            imported.add((node.module or "").split(".")[0])
    assert imported - {"__future__", "pyarrow"} <= set(sys.stdlib_module_names), imported
    assert "topup_ledger" not in SCRIPT.read_text()


class ToyCipher:
    """An authenticated stand-in for the library's AES cipher (pycryptodome is not installed
    here): a SHA-256 key stream and an HMAC tag, so altered ciphertext is refused on decrypt."""

    def __init__(self, environment: Any) -> None:
        self.key = environment["CIPHER_KEY"].encode()

    def _stream(self, nonce: bytes, size: int) -> bytes:
        blocks = (hashlib.sha256(self.key + nonce + i.to_bytes(8, "big")).digest()
                  for i in range(size // 32 + 1))
        return b"".join(blocks)[:size]

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        body = bytes(a ^ b for a, b in zip(plaintext, self._stream(nonce, len(plaintext)), strict=True))
        return nonce + body + hmac.new(self.key, nonce + body, "sha256").digest()

    def decrypt(self, ciphertext: bytes) -> bytes:
        nonce, body, tag = ciphertext[:12], ciphertext[12:-32], ciphertext[-32:]
        if not hmac.compare_digest(tag, hmac.new(self.key, nonce + body, "sha256").digest()):
            raise ValueError("ciphertext was altered")
        return bytes(a ^ b for a, b in zip(body, self._stream(nonce, len(body)), strict=True))


def test_an_encrypted_ledger_exports_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain_environment = store_module.environment

    def encrypted(location: str, *, create: bool = False) -> dict[str, str]:
        return {**plain_environment(location, create=create),
                "CIPHER_TOPIC": "test_audit_export:ToyCipher", "CIPHER_KEY": "k" * 32}

    monkeypatch.setattr(store_module, "environment", encrypted)
    location = str(tmp_path / "encrypted.sqlite")
    EventStore(location, create=True).close()
    clock = FakeClock()
    store = EventStore(location)
    try:
        assert store.mapper.cipher is not None
        Ledger(store, clock=clock).add_school("100001", "St Mary's, Oakfield", "mainstream")
    finally:
        store.close()
    seal = topup(location, clock, "seal", "--json")
    sealed = json.loads(seal.output)["digest"]
    raw = Raw(location).rows()[0].state
    assert b"Oakfield" not in raw  # stored encrypted
    path = tmp_path / "events.parquet"
    result = topup(location, clock, "export", "events", "--out", str(path))
    assert result.exit_code == 0, result.output
    assert "Oakfield" in pq.read_table(path).column("payload")[0].as_py()  # the export is plain
    assert check(path, sealed).returncode == 0
    assert topup(location, clock, "verify", "--digest", sealed).exit_code == 0
    Raw(location).set_state(1, raw[:-1] + bytes([raw[-1] ^ 1]))  # one bit of ciphertext
    result = topup(location, clock, "verify")
    assert result.exit_code == 1 and "not a readable event" in result.output
