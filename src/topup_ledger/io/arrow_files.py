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


def table(name: str, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    target = schema(name)
    columns: dict[str, list[Any]] = {f.name: [] for f in target}
    for row in rows:
        for column_name, values in columns.items():
            values.append(row[column_name])
    return pa.Table.from_pydict(columns, schema=target)


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
