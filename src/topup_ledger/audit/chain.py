"""The hash chain over stored events in ledger order (DESIGN §4 "Tamper evidence").

link(n) = SHA-256( link(n-1) ‖ canonical(event n) ), link(0) = 32 zero bytes, where the
canonical encoding is specified in ``schemas/chain.md``: position, stream, version and
type as UTF-8 lines, then the stored state bytes exactly as recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

GENESIS = bytes(32)


def canonical(position: int, stream: str, version: int, topic: str, state: bytes) -> bytes:
    return f"{position}\n{stream}\n{version}\n{topic}\n".encode() + state


def next_link(previous: bytes, position: int, stream: str, version: int, topic: str,
              state: bytes) -> bytes:
    return hashlib.sha256(previous + canonical(position, stream, version, topic, state)).digest()


def chain_head(rows: Iterable[tuple[int, str, int, str, bytes]], start: bytes = GENESIS) -> bytes:
    head = start
    for row in rows:
        head = next_link(head, *row)
    return head


def digest(head: bytes, position: int) -> str:
    """How a seal is printed on files and statements: ``HEX@POSITION``."""
    return f"{head.hex()}@{position}"
