"""``topup export events``: the whole log as Parquet, for any analytics engine and any auditor.

One row per event in ledger order with the fields the chain covers and the link after it (spec:
``projections/events-export.json``; encoding: ``schemas/chain.md``), so anyone can recompute the
chain from the file alone (``scripts/verify_export.py``) and compare it with a digest printed on a
payment file or a statement. The payload is the event's state JSON exactly as stored (decrypted
if the ledger is encrypted), never upcast: an old event stays in its old version.

The file is written as it is read, one row group per page (bounded memory), to a temporary file
renamed into place at the end; its footer metadata repeats the digest of its last row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from topup_ledger.audit.replay import as_of
from topup_ledger.io import arrow_files
from topup_ledger.io.private import private_temp
from topup_ledger.storage.chain import FORMAT_2, GENESIS, digest, walk
from topup_ledger.storage.store import EventStore, event_id

SPEC = "events-export"
ROWS = 20_000  # rows per row group
Progress = Callable[[int], None]


class ExportError(ValueError):
    """The ledger holds an event the export cannot represent (it is damaged)."""


@dataclass
class ExportResult:
    path: Path
    events: int
    position: int
    head: bytes
    as_of: datetime | None

    @property
    def digest(self) -> str:
        return digest(self.head, self.position)

    def as_json(self) -> dict[str, Any]:
        return {"file": str(self.path), "events": self.events, "position": self.position,
                "digest": self.digest, "as_of": self.as_of.isoformat() if self.as_of else None}


def export_schema() -> pa.Schema:
    schema = arrow_files.schema(SPEC)
    return schema.with_metadata({**(schema.metadata or {}), b"chain": FORMAT_2.strip()})


def export_events(store: EventStore, out: Path, when: datetime | None = None, *,
                  rows: int = ROWS, progress: Progress | None = None) -> ExportResult:
    """Write every event (up to the last one recorded at or before ``when``) to ``out``."""
    upto = None
    if when is not None:
        upto = as_of(store, when, check_versions=False).position
    schema = export_schema()
    names = schema.names
    columns: dict[str, list[Any]] = {name: [] for name in names}
    lists = list(columns.values())  # the same lists, in column order
    head, position, count = GENESIS, 0, 0
    with private_temp(out) as temp, pq.ParquetWriter(temp, schema, compression="zstd") as writer:
        if upto != 0:
            for link in walk(store, upto=upto):
                schema_version, recorded_at, effective, by = link.fields
                try:
                    payload = link.payload.decode("utf-8")
                except UnicodeDecodeError:
                    payload = ""
                if not schema_version or not payload:
                    raise ExportError(
                        f"event {event_id(link.stream, link.version)} at position "
                        f"{link.position} is not a readable event; run `topup verify`")
                for values, value in zip(lists, (
                        link.position, link.stream, link.version, link.topic,
                        int(schema_version), recorded_at, effective, by or "", payload,
                        link.link.hex()),
                        strict=True):
                    values.append(value)
                head, position, count = link.link, link.position, count + 1
                if len(lists[0]) >= rows:
                    writer.write_table(pa.Table.from_pydict(columns, schema=schema))
                    for values in lists:
                        values.clear()
                    if progress:
                        progress(count)
        if columns[names[0]] or count == 0:
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))
        writer.add_key_value_metadata({
            "events": str(count), "digest": digest(head, position),
            "as_of": when.isoformat() if when else ""})
    if progress:
        progress(count)
    return ExportResult(out, count, position, head, when)
