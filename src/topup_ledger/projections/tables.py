"""A fold's own tables in the projection file: their names, creating and dropping them, and
the key-value ``meta`` table each fold keeps."""

from __future__ import annotations

import sqlite3


class FoldTables:
    """The tables of one fold, each named ``<prefix>_<name>`` so that folds share a file."""

    prefix: str = ""

    def table(self, name: str) -> str:
        """'due' → 'sp_due'."""
        return f"{self.prefix}_{name}"

    def base_tables(self) -> list[str]:
        return [f"CREATE TABLE {self.table('meta')} (key TEXT PRIMARY KEY, value TEXT NOT NULL) "
                "WITHOUT ROWID"]

    def tables(self) -> list[str]:
        """The statements that create the fold's tables and indexes (``base_tables`` among them)."""
        return self.base_tables()

    def table_names(self) -> list[str]:
        return [s.split()[2] for s in self.tables() if s.startswith("CREATE TABLE")]

    def create(self, conn: sqlite3.Connection) -> None:
        for statement in self.tables():
            conn.execute(statement)

    def drop(self, conn: sqlite3.Connection) -> None:
        # 'fact' too: older projection files kept a copy of plans' facts there.
        for name in [*self.table_names(), self.table("fact")]:
            conn.execute(f"DROP TABLE IF EXISTS {name}")

    def meta(self, conn: sqlite3.Connection, key: str, default: str = "") -> str:
        row = conn.execute(f"SELECT value FROM {self.table('meta')} WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute(f"INSERT INTO {self.table('meta')} (key, value) VALUES (?, ?) ON CONFLICT (key) "
                     "DO UPDATE SET value = excluded.value", (key, value))
