"""Files for machines, written with pyarrow to the specs in the top-level projections/.

Each spec lists its columns with their Arrow types; a file is written as CSV and Parquet
from the same table, so both always hold the same rows. Files are readable only by their
owner: payment files name schools and pseudonymous pupils.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from topup_ledger.io import text_safety
from topup_ledger.io.private import private_temp

SPEC_DIR = Path(__file__).resolve().parents[3] / "projections"
TYPES = {"string": pa.string(), "int64": pa.int64(), "int32": pa.int32(), "bool": pa.bool_()}


@cache
def spec(name: str) -> dict[str, Any]:
    return json.loads((SPEC_DIR / f"{name}.json").read_text(encoding="utf-8"))


def schema(name: str) -> pa.Schema:
    fields = []
    for column in spec(name)["columns"]:
        fields.append(pa.field(column["name"], TYPES[column["type"]], nullable=False,
                               metadata={"description": column["description"]}))
    return pa.schema(fields, metadata={"projection": name, "title": spec(name)["title"]})


# Rows held as Python values at once while a file is written: a national run's line file
# has over a million rows, and as Python values they took several times the table's size.
ROWS_PER_BATCH = 10_000
# The rows of one Parquet row group: pyarrow's own largest, which every file written so far
# was split by. A file's bytes depend on it (the ledger records payment files' digests, and
# ``topup verify`` builds them again), so it must not change; within a group they do not
# depend on how the rows were batched. Only one group's rows are held at a time.
ROWS_PER_GROUP = 1024 * 1024
# The C library's allocator hands a joined column's batches back once they are let go;
# Arrow's default pool kept them, raising a large run's peak memory.
POOL = pa.system_memory_pool()
BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark


class Rows:
    """Rows of spec ``name`` added one at a time, written to a CSV and a Parquet file as
    they come: CSV a batch at a time, Parquet a row group at a time."""

    def __init__(self, name: str, csv: Path, parquet: Path, *, safe: bool = True) -> None:
        self.schema = schema(name)
        # safe: text a spreadsheet would run as a formula is neutralised in the CSV, which
        # starts with a UTF-8 byte-order mark so that Excel shows £ and → as they are
        self.safe = safe
        self.sink = pa.OSFile(str(csv), "wb")
        if safe:
            self.sink.write(BOM)
        self.csv = pacsv.CSVWriter(self.sink, self.schema, memory_pool=POOL)
        self.parquet = pq.ParquetWriter(str(parquet), self.schema, compression="zstd",
                                        memory_pool=POOL)
        self.group: dict[str, list[pa.Array]] = {f.name: [] for f in self.schema}
        self.in_group = 0
        self.groups = 0
        self._start()

    def _start(self) -> None:
        self.columns: dict[str, list[Any]] = {f.name: [] for f in self.schema}
        self.count = 0

    def add(self, row: Mapping[str, Any]) -> None:
        for column_name, values in self.columns.items():
            values.append(row[column_name])
        self.count += 1
        if self.count == ROWS_PER_BATCH or self.in_group + self.count == ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self.count:
            return
        arrays = [pa.array(self.columns[f.name], type=f.type, memory_pool=POOL)
                  for f in self.schema]
        shown = [safe_text(a) if self.safe and a.type == pa.string() else a for a in arrays]
        self.csv.write_batch(pa.RecordBatch.from_arrays(shown, schema=self.schema))
        for column, array in zip(self.schema, arrays, strict=True):
            self.group[column.name].append(array)
        self.in_group += self.count
        self._start()
        if self.in_group == ROWS_PER_GROUP:
            self._write_group()

    def _write_group(self) -> None:
        """The group's rows in one chunk per column, as ``pq.write_table`` of the whole table
        would write them; each column's batches let go once joined."""
        joined = []
        for column in self.schema:
            chunks = self.group[column.name]
            joined.append(pa.concat_arrays(chunks, memory_pool=POOL) if chunks
                          else pa.array([], type=column.type))
            chunks.clear()
        self.parquet.write_table(pa.Table.from_arrays(joined, schema=self.schema))
        self.in_group = 0
        self.groups += 1

    def finish(self) -> None:
        self._flush()
        if self.in_group or not self.groups:  # no rows at all: what write_table writes for none
            self._write_group()
        self.csv.close()
        self.sink.close()
        self.parquet.close()

    def abandon(self) -> None:
        self.csv.close()
        self.sink.close()
        self.parquet.close()


def safe_text(array: pa.Array) -> pa.Array:
    """A text column as a spreadsheet should see it: a cell that starts with = + - @, tab or
    CR and is not a number gets a leading ' (``io.text_safety``); numbers stay numbers."""
    formula = pc.match_substring_regex(array, text_safety.FORMULA_REGEX)
    if not pc.any(formula).as_py():
        return array
    number = pc.match_substring_regex(array, text_safety.NUMBER_REGEX)
    marked = pc.binary_join_element_wise(pa.scalar("'"), array, "")
    return pc.if_else(pc.and_(formula, pc.invert(number)), marked, array)


@contextmanager
def written(name: str, stem: Path, *, safe: bool = True) -> Iterator[Rows]:
    """``stem``.csv and ``stem``.parquet of spec ``name``, from the rows added inside the
    block; each written to a temporary name and renamed into place when the block ends, or
    removed if it fails."""
    with (private_temp(stem.with_name(stem.name + ".csv")) as csv,
          private_temp(stem.with_name(stem.name + ".parquet")) as parquet):
        rows = Rows(name, csv, parquet, safe=safe)
        try:
            yield rows
        except BaseException:
            rows.abandon()
            raise
        rows.finish()


def write(name: str, rows: Iterable[Mapping[str, Any]], stem: Path) -> list[Path]:
    """Write ``stem``.csv and ``stem``.parquet of spec ``name`` from ``rows``."""
    with written(name, stem) as files:
        for row in rows:
            files.add(row)
    return paths(stem)


def paths(stem: Path) -> list[Path]:
    """The files ``written`` makes for ``stem``."""
    return [stem.with_name(stem.name + suffix) for suffix in (".csv", ".parquet")]
