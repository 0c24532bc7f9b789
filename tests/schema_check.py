"""Check every stored event of a ledger against its versioned JSON Schema in schemas/events/.

Each stored event's state is the envelope ``{"v": version, "at": recorded time, "data": ...}``
under the topic of its type (see schemas/README.md). ``validate_stored`` reads the whole ledger
in order and validates each event's ``data`` with the schema of its own stored version (old
versions are checked against their old schema, not upcast), and its ``at`` as an ISO datetime
with a timezone. The first mismatch fails with an AssertionError naming the event.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

if TYPE_CHECKING:
    from topup_ledger.storage.store import EventStore

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "events"
SCHEMA_FILE = re.compile(r"^(?P<type>[a-z0-9_]+(?:\.[a-z0-9_]+)+)\.v(?P<version>[1-9][0-9]*)\.json$")
_TOPIC = re.compile(r"^[a-z0-9_]+(?:\.[a-z0-9_]+)+$")
ENVELOPE = frozenset({"v", "at", "data"})
# since events name who recorded them (and, on a keyed ledger, are authenticated by its key)
ENVELOPES = (ENVELOPE, ENVELOPE | {"by"}, ENVELOPE | {"by", "key", "mac"})
_HEX = re.compile(r"^[0-9a-f]+$")


def schema_path(topic: str, version: int) -> Path:
    return SCHEMA_DIR / f"{topic}.v{version}.json"


@cache
def load_schema(topic: str, version: int) -> dict[str, Any]:
    """The JSON Schema of one event type and version (read once, then cached)."""
    if not _TOPIC.match(topic):
        raise AssertionError(f"{topic!r} is not an event type name")
    path = schema_path(topic, version)
    if not path.is_file():
        raise AssertionError(f"no schema for {topic} version {version} (expected {path})")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def validator(topic: str, version: int) -> Draft202012Validator:
    return Draft202012Validator(load_schema(topic, version))


def check_recorded_at(value: Any) -> datetime:
    """The envelope's ``at``: an ISO 8601 datetime with a timezone (the ledger's clock)."""
    if not isinstance(value, str):
        raise ValueError(f"recorded time {value!r} is not a string")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"recorded time {value!r} is not an ISO datetime") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"recorded time {value!r} has no timezone")
    return when


def check_state(topic: str, state: Any) -> None:
    """Raise ValueError saying what is wrong with one decoded stored state, if anything."""
    if not isinstance(state, dict) or set(state) not in ENVELOPES:
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"state is not the envelope {{v, at, [by, [key, mac,]] data}}: {keys}")
    if "by" in state and (not isinstance(state["by"], str) or not state["by"]):
        raise ValueError(f"recorded by {state['by']!r} is not a name")
    for name, size in (("key", 16), ("mac", 64)):
        value = state.get(name, "0" * size)
        if not isinstance(value, str) or len(value) != size or not _HEX.match(value):
            raise ValueError(f"{name} {value!r} is not {size} hex digits")
    version = state["v"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"schema version {version!r} is not a whole number from 1")
    check_recorded_at(state["at"])
    try:
        checker = validator(topic, version)
    except AssertionError as error:
        raise ValueError(str(error)) from None
    error = best_match(checker.iter_errors(state["data"]))
    if error is not None:
        raise ValueError(f"data does not match {topic}.v{version}.json at {error.json_path}: "
                         f"{error.message}")


def validate_stored(store: EventStore) -> int:
    """Validate every stored event of ``store`` in ledger order; return how many were checked."""
    count = 0
    for notification in store.notifications():
        label = (f"event {notification.originator_id}/{notification.originator_version} "
                 f"({notification.topic}) at position {notification.id}")
        try:
            state = store.mapper.decode_state(notification.state)
        except Exception as error:
            raise AssertionError(f"{label}: the stored state cannot be decoded: {error}") from None
        try:
            check_state(notification.topic, state)
        except ValueError as error:
            raise AssertionError(f"{label}: {error}") from None
        count += 1
    return count
