"""What an import has staged, kept on disk rather than in memory (issue 21: bounded input).

An import records nothing until every row of every file is checked (all or nothing), so the
facts it stages must be kept until then: a national opening import is millions of facts,
gigabytes as Python objects. They are kept here instead, in a temporary SQLite file that only
the process's owner can read, in the order staged, with the line of the file each came from;
memory holds only the last few thousand not yet written out. The commit reads them back in
order as it records them (``EventStore.append_many`` takes them as they are read).

Each staged fact is kept as the JSON the ledger will store for it (``store.fact_bytes``), so
the commit records those very bytes (``Written``) without building the facts again; the file
is deleted when the import ends (or the process exits).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import orjson

from topup_ledger.domain.events import FACT_TYPES
from topup_ledger.storage.codec import fact_from_data
from topup_ledger.storage.store import Recorded, Written, fact_bytes

WRITE_EVERY = 5_000  # staged facts held in memory before they are written out together
STREAMS_PER_SELECT = 500


class StagedFacts:
    """The facts staged so far, in order: ``add``, ``len``, iterate, and each stream's."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="topup-import-"))  # 0700
        path = self.folder / "staged.sqlite"
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;"
            "CREATE TABLE staged (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER "
            "NOT NULL, type TEXT NOT NULL, at TEXT NOT NULL, data BLOB NOT NULL);"
            "CREATE INDEX staged_stream ON staged (stream, seq);"
            "CREATE TABLE lines (event TEXT PRIMARY KEY, file TEXT NOT NULL, line INTEGER NOT NULL);")
        # Only this connection ever opens it, and without a journal SQLite makes no file beside
        # it: the file can go now and lives on, nameless, until the connection closes, so an
        # import killed at any moment (SIGKILL too) leaves nothing behind on disk.
        path.unlink()
        self.folder.rmdir()
        self._facts: list[tuple[str, int, str, str, bytes]] = []
        self._lines: list[tuple[str, str, int]] = []
        self.count = 0
        self._at: tuple[object, str] = (None, "")  # the last recorded time and its text
        self._cleanup = weakref.finalize(self, _remove, self._db, self.folder)

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, recorded: Recorded) -> None:
        fact = recorded.fact
        assert not isinstance(fact, Written)  # an import stages facts, never written bytes
        if self._at[0] is not recorded.recorded_at:  # one import, one time: written once
            self._at = (recorded.recorded_at, recorded.recorded_at.isoformat())
        self._facts.append((recorded.originator_id, recorded.originator_version, fact.TYPE,
                            self._at[1], fact_bytes(fact)))
        self.count += 1
        if len(self._facts) >= WRITE_EVERY:
            self.flush()

    def note_line(self, event: str, path: str, line: int) -> None:
        """The file and line a staged fact came from (for 'the same as line N')."""
        self._lines.append((event, path, line))
        if len(self._lines) >= WRITE_EVERY:
            self.flush()

    def line_of(self, event: str) -> tuple[str, int] | None:
        self.flush()
        found = self._db.execute("SELECT file, line FROM lines WHERE event = ?", (event,)).fetchone()
        return (found[0], found[1]) if found else None

    def flush(self) -> None:
        if not self._facts and not self._lines:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO staged (stream, version, type, at, data) "
                             "VALUES (?, ?, ?, ?, ?)", self._facts)
        self._db.executemany("INSERT OR REPLACE INTO lines VALUES (?, ?, ?)", self._lines)
        self._db.execute("COMMIT")
        self._facts.clear()
        self._lines.clear()

    def of_streams(self, names: Iterable[str]) -> dict[str, list[Recorded]]:
        """The facts staged to each of ``names``, in order (only names with any)."""
        self.flush()
        wanted = list(names)
        found: dict[str, list[Recorded]] = {}
        for start in range(0, len(wanted), STREAMS_PER_SELECT):
            part = wanted[start:start + STREAMS_PER_SELECT]
            rows = self._db.execute(
                "SELECT stream, version, type, at, data FROM staged WHERE stream IN "
                f"({','.join('?' * len(part))}) ORDER BY seq", part)
            for stream, version, topic, at, data in rows:
                found.setdefault(stream, []).append(Recorded(
                    stream, version, datetime.fromisoformat(at),
                    fact_from_data(topic, orjson.loads(data))))
        return found

    def _rows(self) -> Iterator[tuple[str, int, str, datetime, bytes]]:
        self.flush()
        when, moment = "", datetime.min
        # a cursor of its own: rows are read as they are recorded, never all at once
        for stream, version, topic, at, data in self._db.execute(
                "SELECT stream, version, type, at, data FROM staged ORDER BY seq"):
            if at != when:  # one import, one time: read once
                when, moment = at, datetime.fromisoformat(at)
            yield stream, version, topic, moment, data

    def __iter__(self) -> Iterator[Recorded]:
        """The staged facts, in order, as facts."""
        for stream, version, topic, at, data in self._rows():
            yield Recorded(stream, version, at, fact_from_data(topic, orjson.loads(data)))

    def close(self) -> None:
        """Delete the staged facts (the import is committed or abandoned)."""
        self._cleanup()

    def written(self) -> StagedRows:
        """The staged facts, in order, as the bytes to record (what the commit appends)."""
        return StagedRows(self)


class StagedRows:
    """What ``EventStore.append_many`` is given: every staged fact once, as written."""

    def __init__(self, staged: StagedFacts) -> None:
        self.staged = staged

    def __len__(self) -> int:
        return len(self.staged)

    def __iter__(self) -> Iterator[Recorded]:
        for stream, version, topic, at, data in self.staged._rows():
            yield Recorded(stream, version, at, Written(FACT_TYPES[topic], data))


def _remove(db: sqlite3.Connection, folder: Path) -> None:
    db.close()
    shutil.rmtree(folder, ignore_errors=True)
