"""Where projections keep their state: a SQLite file of their own, never the ledger.

The event store stays append-only and untouched by readers; projection state is derived and
disposable (``topup rebuild`` makes it again from the events alone), so it lives in a
separate file:

- SQLite ledger ``x.sqlite`` → ``x.projections.sqlite`` next to it;
- PostgreSQL ledger → a local file per ledger (host, port, database, schema) under
  ``$TOPUP_PROJECTIONS_DIR`` (default ``$XDG_CACHE_HOME/topup-ledger``). Reading then needs
  only SELECT rights on the ledger (an auditor's read-only role is enough), no reader ever
  writes to the LA's shared database, and each reading machine keeps its own cache.
- ``$TOPUP_PROJECTIONS`` names the file explicitly, for either backend.

The ``tracking`` table holds, per projection, the ledger position its rows reflect. It is
updated in the same transaction as those rows, so a page of events is applied exactly once
even if the process is killed: either the rows and the new position are both committed, or
neither is.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from topup_ledger.storage.store import StoreError, is_postgres, postgres_schema

_SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def projections_path(location: str) -> Path:
    """The projection file for a ledger location (a SQLite path or a postgresql:// URL)."""
    explicit = os.environ.get("TOPUP_PROJECTIONS")
    if explicit:
        return Path(explicit)
    if is_postgres(location):
        base = os.environ.get("TOPUP_PROJECTIONS_DIR")
        if not base:
            cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            base = str(Path(cache) / "topup-ledger")
        url = urlparse(location)
        parts = [url.hostname or "127.0.0.1", str(url.port or 5432), url.path.lstrip("/") or "topup",
                 postgres_schema(location) or "public"]
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(parts))
        return Path(base) / f"{name}.projections.sqlite"
    path = Path(location)
    stem = path.name[: -len(path.suffix)] if path.suffix in _SQLITE_SUFFIXES else path.name
    return path.with_name(f"{stem}.projections.sqlite")


@dataclass(frozen=True)
class Tracked:
    position: int
    schema: int
    digest: str  # sha256 of the stored state at ``position``: detects a replaced ledger


class ProjectionDB:
    """One SQLite connection to a projection file, with explicit write transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.touch(mode=0o600)
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=60)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            # In WAL mode with synchronous=NORMAL a commit is not synced, a checkpoint is, and
            # the default checkpoint every 4 MB makes a rebuild wait on syncs: checkpoint every
            # 200 MB instead (and on close), and keep the WAL file from staying that large.
            self.conn.execute("PRAGMA wal_autocheckpoint=50000")
            self.conn.execute("PRAGMA journal_size_limit=67108864")
            self.conn.execute("PRAGMA cache_size=-65536")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS tracking (projection TEXT PRIMARY KEY, "
                "position INTEGER NOT NULL, schema INTEGER NOT NULL, digest TEXT NOT NULL)")
            if "witness" in {row[1] for row in self.conn.execute("PRAGMA table_info(tracking)")}:
                # the column's name in files written by earlier versions
                self.conn.execute("ALTER TABLE tracking RENAME COLUMN witness TO digest")
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open the projection file {path}: {error}") from None

    def reader(self) -> sqlite3.Connection:
        """A read-only connection of its own (for a forked process: a SQLite connection must
        not be used across a fork)."""
        try:
            return sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        except sqlite3.Error as error:
            raise StoreError(f"cannot read the projection file {self.path}: {error}") from None

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: one writer at a time; all or nothing."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StoreError(f"cannot write the projection file {self.path}: {error}") from None
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def tracked(self, name: str, conn: sqlite3.Connection | None = None) -> Tracked | None:
        row = (conn or self.conn).execute(
            "SELECT position, schema, digest FROM tracking WHERE projection = ?", (name,)).fetchone()
        return Tracked(*row) if row else None

    def track(self, conn: sqlite3.Connection, name: str, position: int, schema: int,
              digest: str) -> None:
        conn.execute(
            "INSERT INTO tracking (projection, position, schema, digest) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (projection) DO UPDATE SET position = excluded.position, "
            "schema = excluded.schema, digest = excluded.digest",
            (name, position, schema, digest))

    def forget(self, conn: sqlite3.Connection, name: str) -> None:
        conn.execute("DELETE FROM tracking WHERE projection = ?", (name,))
