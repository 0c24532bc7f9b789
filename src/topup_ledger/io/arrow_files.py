"""Files for machines, written with pyarrow to the specs in the top-level projections/.

Each spec lists its columns with their Arrow types; a file is written as CSV and Parquet
from the same table, so both always hold the same rows. Files are readable only by their
owner: payment files name schools and pseudonymous pupils.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .private import private_temp

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


# Rows held as Python values at once while a table is built: a national run's line file has
# over a million rows, and as Python values they took several times the table's own size.
ROWS_PER_BATCH = 10_000


class Rows:
    """A table of spec ``name`` built a batch of rows at a time."""

    def __init__(self, name: str) -> None:
        self.schema = schema(name)
        self.batches: list[pa.RecordBatch] = []
        self._start()

    def _start(self) -> None:
        self.columns: dict[str, list[Any]] = {f.name: [] for f in self.schema}
        self.count = 0

    def add(self, row: Mapping[str, Any]) -> None:
        for column_name, values in self.columns.items():
            values.append(row[column_name])
        self.count += 1
        if self.count == ROWS_PER_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.count:
            self.batches.append(pa.RecordBatch.from_pydict(self.columns, schema=self.schema))
            self._start()

    def table(self) -> pa.Table:
        """Every row added, in one chunk per column: the files' bytes do not depend on how
        the rows were batched."""
        self._flush()
        batched = pa.Table.from_batches(self.batches, schema=self.schema)
        self.batches = []  # the table's one copy of the rows is the combined one
        return batched.combine_chunks()


def table(name: str, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    built = Rows(name)
    for row in rows:
        built.add(row)
    return built.table()


def write(name: str, data: pa.Table, stem: Path) -> list[Path]:
    """Write ``stem``.csv and ``stem``.parquet atomically (temp file, then rename)."""
    written = []
    for suffix in (".csv", ".parquet"):
        final = stem.with_name(stem.name + suffix)
        with private_temp(final) as temp:
            if suffix == ".csv":
                pacsv.write_csv(data, temp)
            else:
                pq.write_table(data, temp, compression="zstd")
        written.append(final)
    return written
