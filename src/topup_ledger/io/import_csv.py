"""Reading CSV exports of case-management and finance systems.

Real files come out of Excel and reporting tools: UTF-8 with or without a byte-order mark,
Windows line endings, dates as 2025-09-01 or 01/09/2025, amounts such as "£1,234.50",
blank lines at the end. This module turns such a file into numbered rows of text keyed by
normalised column names, and parses cells into typed values with errors that name the
column. It knows nothing of the ledger: ``services.importer`` decides what each row means.

Columns that would carry a pupil's name or date of birth are refused outright: the ledger
keeps only pseudonymous pupil references.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from topup_ledger.domain.calendar import parse_date
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.money import parse_decimal, parse_pounds
from topup_ledger.engine import collector
from topup_ledger.io.private import private_temp
from topup_ledger.io.text_safety import neutralised, shown

MAX_FILE_BYTES = 512 * 1024 * 1024  # a county's export is a few MB; anything near this is a mistake
MAX_COLUMNS = 1_000  # an import has a dozen columns (a tariff's bands a few more)
MAX_FIELD_CHARS = 64 * 1024  # the longest cell: a reason runs to 500 characters
READ_BYTES = 1 << 20  # a file is checked a megabyte at a time

# Columns that identify a child. ``name`` is allowed only where it is a school's name.
PERSONAL_COLUMNS = frozenset({
    "name", "first_name", "firstname", "forename", "forenames", "given_name", "given_names",
    "middle_name", "middle_names", "surname", "last_name", "lastname", "family_name",
    "full_name", "fullname", "legal_name", "preferred_name", "known_as",
    "pupil_name", "child_name", "student_name", "learner_name", "young_person_name",
    "dob", "d_o_b", "date_of_birth", "birth_date", "birthdate", "birthday",
    "upn", "uln", "nhs_number", "address", "home_address", "postcode", "post_code",
})
_PERSONAL_PARTS = ("forename", "surname", "first_name", "last_name", "birth")


class FileRefused(ValueError):
    """The file as a whole cannot be imported (not a row's fault): nothing is recorded."""


def normalise(header: str) -> str:
    """' Date of Birth ' → 'date_of_birth'; 'Protect-Until' → 'protect_until'."""
    return re.sub(r"[^0-9a-z]+", "_", header.strip().lower()).strip("_")


def personal_columns(headers: list[str], *, school_names: bool = False) -> list[str]:
    """The headers (as given) that would put a pupil's identity into the ledger."""
    refused = []
    for header in headers:
        key = normalise(header)
        if key == "name" and school_names:
            continue
        if key in PERSONAL_COLUMNS or any(part in key for part in _PERSONAL_PARTS):
            refused.append(header)
    return refused


@dataclass(slots=True)
class Row:
    """One data row: the line it starts on in the file, and its cells by column."""

    line: int
    cells: dict[str, str]  # as written (a rejects file gives them back unchanged)
    extra: tuple[str, ...] = ()  # cells beyond the last named column (a stray comma, usually)
    texts: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Stripped once: a row's cells are read several times while it is checked.
        self.texts = {column: (value or "").strip() for column, value in self.cells.items()}

    def text(self, column: str) -> str:
        return self.texts.get(column, "")


@dataclass
class Table:
    """A CSV file read as text: normalised headers (in file order) and the data rows.

    A file's ``rows`` are read from disk on each pass over them, a few rows at a time
    (:class:`FileRows`): memory stays bounded whatever the file's size. ``blank_lines`` is
    counted as they are read."""

    path: str
    headers: list[str]  # normalised
    original: dict[str, str]  # normalised → as written in the file
    rows: Iterable[Row] = field(default_factory=list)
    blank_lines: int = 0
    lines: int = 0  # lines in the file (a file's rows are fewer: a header, quoted line breaks)


class FileRows:
    """The data rows of a CSV file, read again from the file on every pass (bounded
    memory). A problem found on the way (a malformed line, an oversize cell) is a
    :class:`FileRefused` naming its line, raised as the reading reaches it: before anything
    is recorded, since an import records only once every row has been read."""

    def __init__(self, path: Path, table: Table) -> None:
        self.path = path
        self.table = table

    def __iter__(self) -> Iterator[Row]:
        with self.path.open("r", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            try:
                next(reader)  # the header, read when the table was opened
            except csv.Error as error:
                raise _refused(self.table.path, reader, error) from None
            self.table.blank_lines = 0
            yield from _data_rows(reader, self.table)


def read_table(path: Path | str) -> Table:
    """Open a CSV export: its header is read and checked now, its rows as they are iterated
    (``Table.rows``). Raises FileRefused for problems with the file as a whole."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise FileRefused(f"cannot read {path}: {error.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise FileRefused(f"{path} is {size:,} bytes: larger than any export this reads")
    lines = _utf8_lines(path)
    csv.field_size_limit(MAX_FIELD_CHARS)  # a longer cell is refused as it is read (linear)
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        table = _header_of(reader, str(path))
    table.rows = FileRows(path, table)
    table.lines = lines
    return table


def _utf8_lines(path: Path) -> int:
    """The file's number of lines, after checking, a megabyte at a time, that it is UTF-8;
    a byte that is not is refused naming its line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    with path.open("rb") as handle:
        while True:
            block = handle.read(READ_BYTES)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                line = lines + error.object[: error.start].count(b"\n") + 1
                raise FileRefused(
                    f"{path}, line {line}: the file is not UTF-8 (byte {error.object[error.start]:#04x}); "
                    "save it from the spreadsheet as 'CSV UTF-8'") from None
            if not block:
                return lines
            lines += block.count(b"\n")


def parse_table(data: bytes, name: str = "<data>") -> Table:
    """A CSV export given as bytes (tests, small files), its rows read at once."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise FileRefused(
            f"{name}, line {line}: the file is not UTF-8 (byte {data[error.start]:#04x}); "
            "save it from the spreadsheet as 'CSV UTF-8'") from None
    csv.field_size_limit(MAX_FIELD_CHARS)  # a longer cell is refused as it is read (linear)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    table = _header_of(reader, name)
    with collector.paused():  # a row's cells, for every row: many objects, no cycles
        table.rows = list(_data_rows(reader, table))
    table.lines = data.count(b"\n")
    return table


def _refused(name: str, reader: Any, error: csv.Error) -> FileRefused:
    if "field larger than field limit" in str(error):
        return FileRefused(f"{name}, line {reader.line_num}: a cell is longer than "
                           f"{MAX_FIELD_CHARS:,} characters ({error}): this is not an "
                           "export this reads")
    return FileRefused(f"{name}, line {reader.line_num}: {error}")


def _header_of(reader: Any, name: str) -> Table:
    try:
        raw_headers = next(reader, None)
    except csv.Error as error:
        raise _refused(name, reader, error) from None
    if raw_headers is None or not any(h.strip() for h in raw_headers):
        raise FileRefused(f"{name}: the file is empty or its first line has no column names")
    if len(raw_headers) > MAX_COLUMNS:
        raise FileRefused(f"{name}, line 1: {len(raw_headers):,} columns; an import has at "
                          f"most {MAX_COLUMNS:,}: this is not an export this reads")
    headers = [normalise(h) for h in raw_headers]
    seen: set[str] = set()  # one pass: a column named twice is found in linear time
    for position, (key, raw) in enumerate(zip(headers, raw_headers, strict=True), start=1):
        if not key:
            raise FileRefused(f"{name}, line 1: column {position} has no name")
        if key in seen:
            raise FileRefused(f"{name}, line 1: column {raw.strip()!r} appears twice")
        seen.add(key)
    return Table(name, headers, {k: r.strip() for k, r in zip(headers, raw_headers, strict=True)})


def _data_rows(reader: Any, table: Table) -> Iterator[Row]:
    """The rows after the header, as the reader reads them; blank lines are counted."""
    headers, width = table.headers, len(table.headers)
    line = reader.line_num + 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not "".join(cells).strip():
                table.blank_lines += 1
                continue
            if len(cells) == width:
                yield Row(start, dict(zip(headers, cells, strict=True)))
                continue
            extra = tuple(c for c in cells[width:] if c.strip())
            padded = cells + [""] * (width - len(cells))
            yield Row(start, dict(zip(headers, padded, strict=False)), extra)
    except csv.Error as error:
        raise _refused(table.path, reader, error) from None


# Cell parsers: text → value, raising RuleError(column, problem).


def required(row: Row, column: str) -> str:
    value = row.text(column)
    if not value:
        raise RuleError(column, "is empty")
    return value


def optional(row: Row, column: str) -> str | None:
    return row.text(column) or None


def date_cell(row: Row, column: str) -> date | None:
    value = row.text(column)
    return parse_date(value, column) if value else None


def pounds_cell(row: Row, column: str) -> int | None:
    value = row.text(column)
    if not value:
        return None
    try:
        return parse_pounds(value)
    except ValueError:
        raise RuleError(column, f"{value!r} is not an amount in pounds (e.g. £1,234.50)") from None


def decimal_cell(row: Row, column: str) -> Decimal | None:
    value = row.text(column)
    if not value:
        return None
    try:
        return parse_decimal(value)
    except ValueError as error:
        raise RuleError(column, str(error)) from None


def write_rejects(path: Path, table: Table, rejects: list[tuple[int, str, str]]) -> Path:
    """The rejected rows as they were, after their line, the column at fault and why.

    Written with a byte-order mark so that spreadsheets open it as UTF-8. The three extra
    columns (rejected_line, rejected_field, rejected_because) are not read when the fixed
    file is imported again. The file's rows are read again for the rejected ones only.
    """
    wanted = {line for line, _, _ in rejects}
    by_line = {row.line: row for row in table.rows if row.line in wanted}
    headers = [table.original[h] for h in table.headers]
    with private_temp(path) as temp, temp.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rejected_line", "rejected_field", "rejected_because", *headers])
        for line, column, reason in rejects:
            row = by_line.get(line)
            cells = [row.cells.get(h, "") for h in table.headers] if row else []
            writer.writerow([neutralised(shown(str(c))) for c in
                             (line, column, reason, *cells, *(row.extra if row else ()))])
    return path
