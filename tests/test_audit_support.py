"""Shared by the audit tests (no tests here): a small LA's history with several payment runs and
backdated changes between them, raw SQL access to the stored events to tamper with them, and the
audit commands run in-process.

The history, in recorded order (the test clock moves one second per reading):

    schools, rates, tariffs; plans P1 (hours), P2 (band C), P3 (band B, from 6 Oct)
    2025-09-01   autumn run (seal, run record, payments) + its files written and recorded
                 → the auditor notes the chain head (digest "autumn")
    2025-11-20   P2 moves to band D from 1 Nov (backdated); P1 moves to band B from 3 Nov
    2026-01-01   spring run + files; `topup seal`  → digest "spring"
    2026-03-10   P3 ceases from 1 Mar (backdated); P2's review date corrected to 1 Oct
    2026-04-01   summer run + files
    2026-04-02   P1 moves to band C from 1 Apr; `topup seal`  → digest "end"
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
from click.testing import CliRunner, Result

from topup_ledger.cli.audit import export_group, replay_cmd, seal_cmd, verify_cmd
from topup_ledger.services.payment_run import pay, write_and_record
from topup_ledger.services.recording import Ledger
from topup_ledger.services.sealing import seal
from topup_ledger.storage.chain import chain_head, digest
from topup_ledger.storage.store import EventStore, is_postgres, postgres_schema

COMMANDS: dict[str, click.Command] = {"replay": replay_cmd, "seal": seal_cmd, "verify": verify_cmd,
                                      "export": export_group}


def topup(location: str, clock: Any, *args: str) -> Result:
    """Run an audit command in-process as `topup ARGS` would (before and after cli.py registers
    them, the commands are the same objects)."""
    group = click.Group("topup", commands=COMMANDS)
    return CliRunner().invoke(group, list(args), obj={"location": location, "clock": clock},
                              catch_exceptions=False)


def at(clock: Any, when: str) -> None:
    """Move the test clock to a moment (it ticks one second per reading from there)."""
    clock.now = datetime.fromisoformat(when).replace(tzinfo=UTC)


@dataclass
class History:
    location: str
    out: Path  # where the runs wrote their payment files
    runs: dict[str, datetime] = field(default_factory=dict)  # run id → recorded time
    digests: dict[str, str] = field(default_factory=dict)  # noted HEX@POSITION
    positions: dict[str, int] = field(default_factory=dict)  # named events → position


def run_and_write(ledger: Ledger, period: str, out: Path, history: History) -> str:
    result = pay(ledger, period)
    assert result.recorded, period
    write_and_record(ledger, result.run_id, out)
    payments = ledger.store.stream_recorded("payments")
    history.runs[result.run_id] = payments[-1].recorded_at
    return result.run_id


def last_position(store: EventStore) -> int:
    return store.max_position()


def build_history(location: str, clock: Any, out: Path,
                  after_autumn: Callable[[History], None] | None = None) -> History:
    """Record the history above; ``after_autumn`` runs once the autumn run is recorded."""
    history = History(location, out)
    store = EventStore(location)
    ledger = Ledger(store, clock=clock)
    try:
        at(clock, "2025-08-20T10:00:00")
        ledger.add_school("100001", "St Mary's, Oakfield", "mainstream")
        ledger.add_school("100002", "Beacon Special School", "special")
        for year in ("2025-26", "2026-27"):
            ledger.set_rate(year, 1181, Decimal(38), 600000, "LSA rate")
            ledger.set_tariff(year, {"B": 400000, "C": 700000, "D": 1000000}, reason="Schools Forum")
        ledger.issue_plan("P1", "PR-0001", "100001", date(2025, 9, 1), hours=Decimal("27.5"))
        ledger.issue_plan("P2", "PR-0002", "100002", date(2025, 9, 1), band="C")
        ledger.issue_plan("P3", "PR-0003", "100001", date(2025, 10, 6), band="B")

        at(clock, "2025-09-01T08:00:00")
        run_and_write(ledger, "2025-26/autumn", out, history)
        history.digests["autumn"] = digest(*chain_head(store))
        if after_autumn is not None:
            after_autumn(history)

        at(clock, "2025-11-20T14:00:00")
        ledger.change_band("P2", "D", date(2025, 11, 1), "annual-review")
        history.positions["band change"] = last_position(store)
        ledger.transfer("P1", "B", date(2025, 11, 3))
        history.positions["transfer"] = last_position(store)

        at(clock, "2026-01-01T08:00:00")
        run_and_write(ledger, "2025-26/spring", out, history)
        seal(ledger, "end of spring run")
        history.digests["spring"] = digest(*chain_head(store))

        at(clock, "2026-03-10T11:00:00")
        ledger.cease("P3", date(2026, 3, 1), "needs met without top-up")
        plan = ledger.plan("P2")
        ledger.correct("P2", plan.facts[1].id, "the review set band D from 1 October",
                       effective=date(2025, 10, 1))

        at(clock, "2026-04-01T08:00:00")
        run_and_write(ledger, "2025-26/summer", out, history)

        at(clock, "2026-04-02T09:00:00")
        ledger.change_band("P1", "C", date(2026, 4, 1), "annual-review")
        history.positions["after summer"] = last_position(store)
        seal(ledger, "year end")
        history.digests["end"] = digest(*chain_head(store))
    finally:
        store.close()
    return history


# Raw access to the stored events, as someone with the database password would have.


@dataclass
class Row:
    position: int
    stream: str
    version: int
    topic: str
    state: bytes


class Raw:
    """The table of stored events: ``stored_events`` in SQLite, ``<schema>.topup_events`` in
    PostgreSQL (the library names it after the application, ``topup``)."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.postgres = is_postgres(location)
        if self.postgres:
            schema = postgres_schema(location)
            assert schema
            self.table = f'"{schema}".topup_events'
            self.id = "notification_id"
        else:
            self.table = "stored_events"
            self.id = "rowid"

    @contextmanager
    def connect(self) -> Iterator[Any]:
        if self.postgres:
            import psycopg

            url = urlparse(self.location)._replace(query="").geturl()
            with psycopg.connect(url, autocommit=True) as conn:
                # as a superuser (a DBA) can: past the ledger's append-only triggers
                conn.execute("SET session_replication_role = replica")
                yield conn
        else:
            conn = sqlite3.connect(self.location, isolation_level=None)
            try:
                yield conn
            finally:
                conn.close()

    def sql(self, statement: str) -> str:
        statement = statement.replace("{table}", self.table).replace("{id}", self.id)
        return statement.replace("?", "%s") if self.postgres else statement

    def rows(self) -> list[Row]:
        with self.connect() as conn:
            found = conn.execute(self.sql(
                "SELECT {id}, originator_id, originator_version, topic, state FROM {table} "
                "ORDER BY {id}")).fetchall()
        return [Row(r[0], r[1], r[2], r[3], bytes(r[4])) for r in found]

    def row(self, position: int) -> Row:
        return next(r for r in self.rows() if r.position == position)

    def where(self, topic: str) -> list[Row]:
        return [r for r in self.rows() if r.topic == topic]

    def set_state(self, position: int, state: bytes) -> None:
        with self.connect() as conn:
            conn.execute(self.sql("UPDATE {table} SET state = ? WHERE {id} = ?"), (state, position))

    def replace(self, position: int, old: bytes, new: bytes) -> None:
        """Change bytes of one stored state in place (the same number of bytes)."""
        state = self.row(position).state
        assert state.count(old) == 1, (old, state)
        self.set_state(position, state.replace(old, new))

    def delete(self, position: int) -> None:
        with self.connect() as conn:
            conn.execute(self.sql("DELETE FROM {table} WHERE {id} = ?"), (position,))

    def truncate_after(self, position: int) -> None:
        with self.connect() as conn:
            conn.execute(self.sql("DELETE FROM {table} WHERE {id} > ?"), (position,))

    def swap(self, a: int, b: int) -> None:
        """Exchange the ledger positions of two events."""
        with self.connect() as conn:
            conn.execute(self.sql("UPDATE {table} SET {id} = -1 WHERE {id} = ?"), (a,))
            conn.execute(self.sql("UPDATE {table} SET {id} = ? WHERE {id} = ?"), (a, b))
            conn.execute(self.sql("UPDATE {table} SET {id} = ? WHERE {id} = -1"), (b,))

    def made_before_keys(self) -> None:
        """Make the ledger as a program before ledger keys made it: no id, no key record (so
        events written raw, as an older program wrote them, are not forgeries)."""
        info = (f'"{postgres_schema(self.location)}".topup_ledger_info' if self.postgres
                else "topup_ledger_info")
        with self.connect() as conn:
            conn.execute(f"DROP TABLE {info}")

    def insert(self, position: int, stream: str, version: int, topic: str, state: bytes) -> None:
        """Put a forged event at ``position``, moving every later event one place on."""
        big = 1_000_000_000
        with self.connect() as conn:
            conn.execute(self.sql("UPDATE {table} SET {id} = {id} + ? WHERE {id} >= ?"), (big, position))
            conn.execute(self.sql("UPDATE {table} SET {id} = {id} - ? WHERE {id} >= ?"),
                         (big - 1, big))
            conn.execute(self.sql(
                "INSERT INTO {table} (originator_id, originator_version, topic, state, {id}) "
                "VALUES (?, ?, ?, ?, ?)"), (stream, version, topic, state, position))
