"""Seals: the chain head recorded in the ledger itself, on demand (``topup seal``).

Payment runs seal as part of their own batch (``services.payment_run``); this records one at any other
moment, e.g. before an auditor's visit or at the end of a day. A seal is a ``ledger.sealed``
event on the ``seals`` stream holding the head and the position it covers; its digest
``HEX@POSITION`` is what people keep outside the ledger.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from topup_ledger.audit import witness
from topup_ledger.domain import events as ev
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.chain import chain_head, digest
from topup_ledger.storage.store import Recorded
from topup_ledger.storage.streams import SEALS_STREAM


@dataclass(frozen=True)
class SealResult:
    head: str  # hex
    position: int  # the last event the head covers
    event: str  # the seal's own event id, e.g. seals/4
    recorded_at: int  # the seal's own position

    @property
    def digest(self) -> str:
        return f"{self.head}@{self.position}"

    def as_json(self) -> dict[str, object]:
        return {"digest": self.digest, "head": self.head, "position": self.position,
                "event": self.event, "seal_position": self.recorded_at}


def seal(ledger: Ledger, reason: str = "on demand", witness_log: Path | None = None) -> SealResult:
    """Record the chain head over every event so far. A seal covers the events before it.
    With ``witness_log``, the seal is also appended to that file, kept outside the ledger."""
    store = ledger.store
    head, position = chain_head(store)
    version = store.version(SEALS_STREAM) + 1
    fact = ev.Sealed(head.hex(), position, reason)
    [recorded_at] = store.append([Recorded(SEALS_STREAM, version, ledger.clock(), fact)])
    result = SealResult(head.hex(), position, f"{SEALS_STREAM}/{version}", recorded_at)
    if witness_log is not None:
        witness.append(witness_log, result.digest, ledger_id_of(store), result.event)
    return result


def ledger_id_of(store: object) -> str:
    info = getattr(store, "info", None) or {}
    return str(info.get("ledger_id", ""))


def witness_from_environment() -> Path | None:
    """``TOPUP_WITNESS``: the witness log every payment run's seal is appended to."""
    text = os.environ.get("TOPUP_WITNESS", "").strip()
    return Path(text) if text else None


__all__ = ["SEALS_STREAM", "SealResult", "digest", "seal"]
