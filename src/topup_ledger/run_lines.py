"""A payment run's lines on disk, from when they are worked out until they are recorded.

A national run pays well over a million lines. Held as objects until recorded, and copied
from each forked share of the run into the process that records them, they took gigabytes.
Instead each share writes its plans' lines to a SQLite file of its own as it works them
out, a few thousand at a time, and the run reads them back one school at a time, in the
order a school's payment lists them, to record that school's payment and let it go.

The files are in a private temporary folder (pupil references are personal data), removed
when the run is recorded or refused.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import orjson

from .domain.events import PaymentLine

LINES_HELD = 5_000  # lines a share holds before writing them out


class SchoolTotal(NamedTuple):
    school: str
    pence: int
    lines: int


def encode(line: PaymentLine) -> bytes:
    return orjson.dumps(line)


def decode(data: bytes) -> PaymentLine:
    fields = orjson.loads(data)
    fields["caused_by"] = tuple(fields["caused_by"])
    return PaymentLine(**fields)


class LineSpill:
    """One share's connection to the run's file of lines, writing them as they come.

    A school's payment lists its lines by plan, each plan's in the order they were worked
    out (a cushion's, under plan '', first): ``seq`` keeps that order, and a plan's lines
    are all worked out in one share."""

    def __init__(self, path: Path) -> None:
        self.conn = open_lines(path)
        self.held: list[tuple[str, str, int, int, bytes]] = []
        self.seq = 0

    def add(self, school: str, line: PaymentLine) -> None:
        self.seq += 1
        self.held.append((school, line.plan, self.seq, line.amount, encode(line)))
        if len(self.held) >= LINES_HELD:
            self.flush()

    def flush(self) -> None:
        if self.held:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT INTO line VALUES (?, ?, ?, ?, ?)", self.held)
            self.conn.execute("COMMIT")
            self.held = []

    def close(self) -> None:
        """Write what is held."""
        self.flush()
        self.conn.close()


def open_lines(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=600)
    # A scratch file read back once by this run: a crash loses nothing of the ledger. The
    # shares of a run write to it in turn, a few thousand lines at a time.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    return conn


class RunLines:
    """Every share's lines of one run, read back school by school.

    Use as a context manager (or ``close``): the folder and its file are removed."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="topup-run-"))  # mode 0700
        self.path = self.folder / "lines.sqlite"
        conn = open_lines(self.path)
        conn.execute("CREATE TABLE line (school TEXT NOT NULL, plan TEXT NOT NULL, "
                     "seq INTEGER NOT NULL, amount INTEGER NOT NULL, line BLOB NOT NULL)")
        conn.close()

    def spill(self) -> LineSpill:
        """A connection of its own to write lines through (one per process)."""
        return LineSpill(self.path)

    def totals(self) -> list[SchoolTotal]:
        """Per school with any line, in school order: its total and how many lines."""
        conn = open_lines(self.path)
        try:
            return [SchoolTotal(*row) for row in conn.execute(
                "SELECT school, SUM(amount), COUNT(*) FROM line GROUP BY school ORDER BY school")]
        finally:
            conn.close()

    def by_school(self) -> Iterator[tuple[str, tuple[PaymentLine, ...]]]:
        """Each school's lines, in school order: by plan, each plan's in the order worked
        out. One school's lines are held at a time."""
        conn = open_lines(self.path)
        try:
            school, held = "", []
            for at, data in conn.execute("SELECT school, line FROM line ORDER BY school, plan, seq"):
                if at != school:
                    if held:
                        yield school, tuple(held)
                    school, held = at, []
                held.append(decode(data))
            if held:
                yield school, tuple(held)
        finally:
            conn.close()

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RunLines:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
