"""Which ledger key authenticates which stretch of the ledger (key rotation, DESIGN §4).

A ledger starts with the key ``topup init`` made (its id in ``ledger_info``). ``topup key
rotate`` records a ``ledger.key_rotated`` event on the ``keys`` stream naming the new key's id;
that event is authenticated by the key it replaces, and every event after it by the new one.
So the ledger is cut into stretches, each authenticated by one key::

    positions (keyed_after, r1]   the first key (r1: the first rotation's own position)
    positions (r1, r2]            the key r1 names
    positions (r2, ...)           the key r2 names, to the end

A rotation is honoured only if it is authenticated by the key of the stretch it ends and names
that key as the one it replaces; any other (a row inserted by someone who does not hold the
key, or who holds an old, replaced key) is ignored here, and ``verify`` names it. An event is
authentic only under its own stretch's key: an old key, even a genuine one, authenticates
nothing after the rotation that replaced it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from topup_ledger.domain.events import KeyRotated
from topup_ledger.storage import keys as ledger_keys

ROTATED = KeyRotated.TYPE
_KEY_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class RotationRow:
    """A stored ``ledger.key_rotated`` event of the ``keys`` stream, as read from the table."""

    position: int
    stream: str
    version: int
    topic: str
    payload: bytes  # the stored state as JSON bytes (decrypted)


@dataclass(frozen=True)
class Stretch:
    key_id: str
    after: int  # it authenticates the positions after this one ...
    upto: int | None  # ... up to and including this one (None: to the end of the ledger)
    started_by: str | None = None  # the rotation event that handed over to this key

    def covers(self, position: int) -> bool:
        return position > self.after and (self.upto is None or position <= self.upto)

    def positions(self) -> str:
        return f"positions {self.after + 1:,} to " + ("the end" if self.upto is None else f"{self.upto:,}")


@dataclass
class KeyStretches:
    stretches: list[Stretch]
    ignored: list[tuple[int, str, str]] = field(default_factory=list)  # (position, event, why)

    @property
    def current(self) -> str:
        """The key that authenticates what is recorded now."""
        return self.stretches[-1].key_id

    def key_ids(self) -> list[str]:
        return [s.key_id for s in self.stretches]

    def at(self, position: int) -> Stretch:
        for stretch in reversed(self.stretches):
            if position > stretch.after:
                return stretch
        return self.stretches[0]

    def check(self, keys: dict[str, bytes], position: int, named: str | None, stream: str,
              version: int, topic: str, payload: bytes) -> str | None:
        """Why the event at ``position`` is not authenticated by its stretch's key (None: it
        is, or that key is not at hand to tell: ``verify`` names such a stretch once)."""
        stretch = self.at(position)
        if named is not None and named != stretch.key_id:
            if named in keys:
                why = ledger_keys.check_state(keys, named, stream, version, topic, payload)
                if why is not None:
                    return why
                return (f"it is authenticated by key {named}, an old key: key {stretch.key_id} "
                        f"authenticates {stretch.positions()}"
                        + (f" (since {stretch.started_by})" if stretch.started_by else ""))
            if named in self.key_ids():
                return (f"it names key {named}, but key {stretch.key_id} authenticates "
                        f"{stretch.positions()}")
            return ledger_keys.check_state(keys, named, stream, version, topic, payload)
        if named is not None and stretch.key_id not in keys:
            return None
        return ledger_keys.check_state(keys, named, stream, version, topic, payload)


def rotation_key_ids(rotations: Iterable[RotationRow]) -> list[str]:
    """The ids of the keys the rotations name (to look for the old keys kept at hand): only
    ids as ``keys.key_id`` makes them, since an id names a file to look in."""
    found = []
    for row in rotations:
        try:
            named = str(orjson.loads(row.payload)["data"]["key_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
        if _KEY_ID.fullmatch(named):
            found.append(named)
    return found


def stretches_of(first_key: str, keyed_after: int, rotations: Iterable[RotationRow],
                 keys: dict[str, bytes]) -> KeyStretches:
    """The stretches the honoured rotations make, in ledger order (``keys``: the keys at hand,
    to check each rotation with; a rotation whose own key is not at hand is taken as it is
    recorded, and ``verify`` says that stretch could not be checked)."""
    found = KeyStretches([Stretch(first_key, keyed_after, None)])
    for row in sorted(rotations, key=lambda r: r.position):
        current = found.stretches[-1]
        name = f"{row.stream}/{row.version}"
        if row.position <= current.after:
            continue
        try:
            envelope = orjson.loads(row.payload)
            data = envelope["data"]
            new, previous = str(data["key_id"]), str(data["previous_key_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            found.ignored.append((row.position, name, "it is not a readable key rotation"))
            continue
        named = envelope.get("key") if isinstance(envelope, dict) else None
        if previous != current.key_id or named != current.key_id:
            found.ignored.append((row.position, name, f"it hands over from key {previous}, but key "
                                  f"{current.key_id} authenticates the ledger there"))
            continue
        if current.key_id in keys:
            why = ledger_keys.check_state(keys, named, row.stream, row.version, row.topic,
                                          row.payload)
            if why is not None:
                found.ignored.append((row.position, name, why))
                continue
        if new == current.key_id or new in found.key_ids():
            found.ignored.append((row.position, name, f"key {new} was the ledger's key before"))
            continue
        found.stretches[-1] = Stretch(current.key_id, current.after, row.position, current.started_by)
        found.stretches.append(Stretch(new, row.position, None, name))
    return found
