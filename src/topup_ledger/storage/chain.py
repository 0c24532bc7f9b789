"""The hash chain over stored events in ledger order: what makes tampering evident.

``schemas/chain.md`` is the specification; this module and ``scripts/verify_export.py`` are two
independent implementations of it. In short::

    link(0) = 32 zero bytes
    link(n) = SHA-256( link(n-1) ‖ canonical(event n) )
    canonical(e) = "topup-chain/1\\n" then, for each of position, stream, version, type,
                   schema version, recorded time, effective date, payload:
                   <decimal byte length> ":" <bytes> "\\n"

An event whose envelope names who recorded it (``by``: every event recorded since the ledger
records its actor) is encoded as ``topup-chain/2``: the same fields with the recorded-by
field between the recorded time and the effective date. Older events keep their
``topup-chain/1`` encoding, so a ledger recorded before verifies as it did.

The payload is the event's state JSON exactly as stored (decrypted first when the ledger is
encrypted); schema version, recorded time and effective date are read from it and covered again
as fields of their own, so that an export's columns are each covered by the chain. The head of
the chain after the event at position ``p`` is printed ``HEX@p`` (a *digest*).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from topup_ledger.storage.store import EventStore

GENESIS = bytes(32)
FORMAT = b"topup-chain/1\n"
FORMAT_2 = b"topup-chain/2\n"
UNKNOWN = "unknown"  # who recorded an event, or when, for events recorded before the ledger said
_DIGEST = re.compile(r"^([0-9a-f]{64})@(0|[1-9][0-9]*)$")


class DigestError(ValueError):
    """A digest given by a user is not HEX@POSITION."""


def envelope_of(payload: bytes) -> dict[str, Any] | None:
    """The decoded state ``{"v", "at", "data"}``, or None if it is not a JSON object."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


Fields = tuple[str, str, str, str | None]


def envelope_fields(envelope: dict[str, Any] | None) -> Fields:
    """Schema version, recorded time and effective date as the chain covers them ('' if absent),
    and who recorded the event (None for an event recorded before the ledger said: it is then
    encoded as ``topup-chain/1``)."""
    if envelope is None:
        return "", "", "", None
    v = envelope.get("v")
    version = str(v) if isinstance(v, int) and not isinstance(v, bool) else ""
    at = envelope.get("at")
    recorded = at if isinstance(at, str) else ""
    data = envelope.get("data")
    effective = data.get("effective") if isinstance(data, dict) else None
    by = envelope.get("by")
    return (version, recorded, effective if isinstance(effective, str) else "",
            by if isinstance(by, str) else None)


def recorded_by(envelope: dict[str, Any] | None) -> str:
    """Who recorded an event, as its envelope says ("unknown" for older events)."""
    by = envelope.get("by") if envelope else None
    return by if isinstance(by, str) and by else UNKNOWN


_LAYOUT = FORMAT + b"%d:%s\n" * 8
_LAYOUT_2 = FORMAT_2 + b"%d:%s\n" * 9


def encode(position: int, stream: str, version: int, topic: str, schema_version: str,
           recorded_at: str, effective: str, by: str | None, payload: bytes) -> bytes:
    """The canonical encoding from its fields (one formatting operation: it runs per event):
    ``topup-chain/2`` when the event names who recorded it, ``topup-chain/1`` otherwise."""
    p, s, n, t = str(position).encode(), stream.encode(), str(version).encode(), topic.encode()
    v, a, e = schema_version.encode(), recorded_at.encode(), effective.encode()
    if by is None:
        return _LAYOUT % (len(p), p, len(s), s, len(n), n, len(t), t, len(v), v, len(a), a,
                          len(e), e, len(payload), payload)
    b = by.encode()
    return _LAYOUT_2 % (len(p), p, len(s), s, len(n), n, len(t), t, len(v), v, len(a), a,
                        len(b), b, len(e), e, len(payload), payload)


def canonical(position: int, stream: str, version: int, topic: str, payload: bytes,
              envelope: dict[str, Any] | None = None, *, parsed: bool = False) -> bytes:
    """The bytes one link covers. Pass ``envelope`` (with ``parsed=True``) if already decoded."""
    if not parsed:
        envelope = envelope_of(payload)
    return encode(position, stream, version, topic, *envelope_fields(envelope), payload)


def next_link(previous: bytes, position: int, stream: str, version: int, topic: str,
              payload: bytes, envelope: dict[str, Any] | None = None, *,
              parsed: bool = False) -> bytes:
    sha = hashlib.sha256(previous)
    sha.update(canonical(position, stream, version, topic, payload, envelope, parsed=parsed))
    return sha.digest()


def digest(head: bytes, position: int) -> str:
    """How a chain head is printed on files and statements: ``HEX@POSITION``."""
    return f"{head.hex()}@{position}"


def parse_digest(text: str) -> tuple[bytes, int]:
    """``HEX@POSITION`` → (head, position); refuses anything else with a clear message."""
    match = _DIGEST.match(text.strip().lower())
    if not match:
        raise DigestError(f"{text!r} is not a digest like <64 hex digits>@<position>, "
                          "as printed on payment files and by `topup seal`")
    return bytes.fromhex(match.group(1)), int(match.group(2))


def plain_state(store: EventStore, state: bytes) -> bytes:
    """The stored state as JSON bytes: decrypted (and decompressed) if the ledger does that."""
    return store.mapper.plain_bytes(state)


@dataclass(frozen=True)
class Link:
    """One event as the chain sees it, with the link after it."""

    position: int
    stream: str
    version: int
    topic: str
    payload: bytes  # the state JSON as stored (decrypted)
    envelope: dict[str, Any] | None  # None if the payload is not a JSON object
    fields: Fields  # schema version, recorded time, effective date ('' if none), recorded by
    link: bytes


class UnreadableState(ValueError):
    """A stored state that cannot be decrypted (wrong key, or the bytes were altered)."""


def walk(store: EventStore, upto: int | None = None, after: int = 0,
         start: bytes = GENESIS) -> Iterator[Link]:
    """Every event in ledger order with its link, a page at a time (bounded memory).

    A state that cannot be decrypted is chained over its stored bytes and flagged by an
    envelope of None, so that ``verify`` can still report everything after it.
    """
    head = start
    for n in store.notifications(after=after, upto=upto):
        try:
            payload = plain_state(store, n.state)
        except Exception:  # the cipher refuses altered bytes: chain what is stored
            payload = n.state if isinstance(n.state, bytes) else str(n.state).encode()
        envelope = envelope_of(payload)
        fields = envelope_fields(envelope)
        stream = str(n.originator_id)
        sha = hashlib.sha256(head)
        sha.update(encode(n.id, stream, n.originator_version, n.topic, *fields, payload))
        head = sha.digest()
        yield Link(n.id, stream, n.originator_version, n.topic, payload, envelope, fields, head)


def chain_head(store: EventStore, upto: int | None = None) -> tuple[bytes, int]:
    """The head after the last event up to ``upto`` (all if None), and that event's position."""
    head, position = GENESIS, 0
    for link in walk(store, upto=upto):
        head, position = link.link, link.position
    return head, position
