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

import dataclasses
import heapq
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import orjson

from topup_ledger.domain.events import PaymentLine, SchoolPaid
from topup_ledger.storage.store import StoreError, Written

LINES_HELD = 5_000  # lines a share holds before writing them out
PREFIX = "topup-run-"  # then the pid of the process whose run it is


class SchoolTotal(NamedTuple):
    school: str
    pence: int
    lines: int


# A line is kept as the JSON the ledger stores for it inside its school's payment (orjson
# writes the dataclass's fields in order as an object, as ``BulkEncoder`` does for the whole
# payment): the payment is then written from these bytes, without decoding a line again.


def encode(line: PaymentLine) -> bytes:
    return orjson.dumps(line)


def decode(data: bytes) -> PaymentLine:
    values = orjson.loads(data)
    values["caused_by"] = tuple(values["caused_by"])
    return PaymentLine(**values)


# A school's payment as the ledger writes its data, up to its lines: ``lines`` is its last
# field, so the lines' bytes close it.
if dataclasses.fields(SchoolPaid)[-1].name != "lines":
    raise TypeError("SchoolPaid's lines must be its last field to be written from their bytes")


def written_payment(run_id: str, period: str, school: str, lines: Iterable[bytes]) -> Written:
    """``SchoolPaid(run_id, period, school, lines)`` written from its lines' bytes."""
    opening = orjson.dumps(SchoolPaid(run_id, period, school, ()))[:-2]  # without "]}"
    return Written(SchoolPaid, b"".join((opening, b",".join(lines), b"]}")))


class LineSpill:
    """One share's file of lines, written as they come.

    A school's payment lists its lines by plan, each plan's in the order they were worked
    out (a cushion's, under plan '', first): ``seq`` numbers a share's lines as they come,
    and a plan's lines are all worked out in one share. Lines are appended as they come
    (sorting them as they went in was slower than sorting each file once, when read). Each
    process writes a file of its own: no share waits for another."""

    def __init__(self, path: Path) -> None:
        self.conn = open_lines(path)
        self.conn.execute("CREATE TABLE line (school TEXT NOT NULL, plan TEXT NOT NULL, "
                          "seq INTEGER NOT NULL, amount INTEGER NOT NULL, line BLOB NOT NULL)")
        self.path = path
        self.held: list[tuple[str, str, int, int, bytes]] = []
        self.seq = 0
        self.schools: dict[str, tuple[int, int]] = {}  # pence and lines written, by school

    def add(self, school: str, line: PaymentLine) -> None:
        self.seq += 1
        self.held.append((school, line.plan, self.seq, line.amount, encode(line)))
        pence, lines = self.schools.get(school, (0, 0))
        self.schools[school] = (pence + line.amount, lines + 1)
        if len(self.held) >= LINES_HELD:
            self.flush()

    def flush(self) -> None:
        if self.held:
            self.conn.execute("BEGIN")
            self.conn.executemany("INSERT INTO line VALUES (?, ?, ?, ?, ?)", self.held)
            self.conn.execute("COMMIT")
            self.held = []

    def close(self) -> LinesFile:
        """Write what is held, then the lines again in the order they are read back (school,
        plan, as worked out), so that sorting them is done here, side by side with the other
        shares, not by the process that records them, after every share is done; the file
        and how many lines it has."""
        try:
            self.flush()
            self.conn.execute("CREATE TABLE sorted AS SELECT school, plan, seq, amount, line "
                              "FROM line ORDER BY school, plan, seq")
            self.conn.execute("DROP TABLE line")
            self.conn.execute("ALTER TABLE sorted RENAME TO line")
        finally:
            self.conn.close()
        return LinesFile(self.path, self.schools)


class LinesFile(NamedTuple):
    """A share's closed file, and the pence and lines it wrote there for each school."""

    path: Path
    schools: dict[str, tuple[int, int]]


class LinesLost(StoreError):
    """A run's lines are not all where they were written: nothing may be recorded."""


def open_lines(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    # A scratch file that one process writes and this run reads back once: a crash loses
    # nothing of the ledger.
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    return conn


class RunLines:
    """Every share's lines of one run, read back school by school.

    Use as a context manager (or ``close``): the folder and its files are removed. Each
    share's file is named with what it holds (``add``); reading checks that every one is
    there, whole, so a folder cleared meanwhile (a temporary-files cleaner) refuses the run
    instead of recording fewer lines. The check is made as the lines are recorded, inside
    the ledger's transaction, so a refusal records nothing."""

    def __init__(self) -> None:
        sweep_abandoned()
        self.folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))  # mode 0700
        self.spills = 0
        self.spilled: list[LinesFile] = []

    def spill(self) -> LineSpill:
        """A new file to write lines to (a forked share opens its own)."""
        self.spills += 1
        return LineSpill(self.folder / f"{os.getpid()}-{self.spills}.sqlite")

    def add(self, spilled: LinesFile) -> None:
        """Read back the lines of a share's closed file too."""
        self.spilled.append(spilled)

    def _files(self) -> list[sqlite3.Connection]:
        files = []
        try:
            for spilled in self.spilled:
                try:
                    files.append(sqlite3.connect(f"{spilled.path.resolve().as_uri()}?mode=ro",
                                                 uri=True))
                    files[-1].execute("SELECT 1 FROM line LIMIT 1").fetchall()
                except sqlite3.Error as error:
                    raise LinesLost(f"the run's lines in {spilled.path} cannot be read "
                                    f"({error}); was the temporary folder cleared while the "
                                    "run was worked out? Nothing was recorded: run it "
                                    "again") from None
        except BaseException:
            for conn in files:
                conn.close()
            raise
        return files

    def totals(self) -> list[SchoolTotal]:
        """Per school with any line, in school order: its total and how many lines, as the
        shares wrote them."""
        found: dict[str, tuple[int, int]] = {}
        for spilled in self.spilled:
            for school, (pence, lines) in spilled.schools.items():
                before = found.get(school, (0, 0))
                found[school] = (before[0] + pence, before[1] + lines)
        return [SchoolTotal(school, *found[school]) for school in sorted(found)]

    def by_school(self) -> Iterator[tuple[str, tuple[PaymentLine, ...]]]:
        """Each school's lines, in school order: by plan, each plan's in the order worked
        out (``written`` checks them)."""
        for school, lines in self.written():
            yield school, tuple(map(decode, lines))

    def payments(self, run_id: str, period: str) -> Iterator[Written]:
        """Each school's payment of the run, in school order, written from its lines' bytes."""
        for school, lines in self.written():
            yield written_payment(run_id, period, school, lines)

    def written(self) -> Iterator[tuple[str, list[bytes]]]:
        """Each school's lines as written, in school order: by plan, each plan's in the order
        worked out. One school's lines are held at a time, each checked against what the
        shares wrote for it (``totals``): a line missing from the files refuses the run."""
        expected = {total.school: total for total in self.totals()}
        written = sum(total.lines for total in expected.values())
        read = 0
        files = self._files()
        try:
            school, held, pence = "", [], 0
            for at, _plan, _seq, amount, data in heapq.merge(*(
                    conn.execute("SELECT school, plan, seq, amount, line FROM line "
                                 "ORDER BY rowid") for conn in files)):
                if at != school:
                    if held:
                        yield self._checked(school, held, pence, expected)
                    school, held, pence = at, [], 0
                held.append(data)
                pence += amount
                read += 1
            if held:
                yield self._checked(school, held, pence, expected)
        finally:
            for conn in files:
                conn.close()
        if read != written:
            raise LinesLost(f"the run worked out {written:,} lines but {read:,} are in its "
                            f"files in {self.folder}; nothing was recorded: run it again")

    def _checked(self, school: str, held: list[bytes], pence: int,
                 expected: dict[str, SchoolTotal]) -> tuple[str, list[bytes]]:
        found = SchoolTotal(school, pence, len(held))
        if expected.get(school) != found:
            raise LinesLost(f"the run's files in {self.folder} hold {found.lines:,} lines "
                            f"(£{found.pence / 100:,.2f}) for school {school}, not what it "
                            f"worked out; nothing was recorded: run it again")
        return school, held

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RunLines:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def sweep_abandoned() -> None:
    """Remove the lines of runs whose process is gone (killed before it could remove them
    itself): they name pupils, and nothing will read them again."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        pid = folder.name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and folder.is_dir() and not alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: not ours to judge
    return True
