"""Digests of the payment files a run wrote, recorded in the ledger (DESIGN §4).

A run's files are built from its recorded events alone, so they can always be rebuilt; but a
copy handed to the finance system can still be edited afterwards. After writing them, ``topup
pay`` records ``payment.files_written`` (stream ``files:<run_id>``) with the name, size and
SHA-256 of every file and the folder they went to. The record is chained and covered by the
next seal, so ``topup verify`` can tell a file edited after it was written (its bytes no longer
match the recorded digest) and can check that the ledger still rebuilds the very same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..domain import events as ev
from ..ledger import Ledger
from ..payrun import write_files_for_run
from ..store import EventStore, Recorded

CHUNK = 1 << 20


def files_stream(run_id: str) -> str:
    return f"files:{run_id}"


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks."""
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def written_files(paths: Iterable[Path]) -> tuple[ev.WrittenFile, ...]:
    return tuple(ev.WrittenFile(p.name, *file_digest(p)) for p in paths)


def record_files(ledger: Ledger, run_id: str, paths: Iterable[Path]) -> str | None:
    """Record the digests of a run's files just written; None if exactly this is recorded."""
    paths = list(paths)
    if not paths:
        return None
    directory = str(paths[0].resolve().parent)
    fact = ev.FilesWritten(run_id, directory, written_files(paths))
    stream = files_stream(run_id)
    earlier = ledger.store.stream(stream)
    if any(r.fact == fact for r in earlier):
        return None  # the same bytes to the same folder again: nothing new to record
    version = len(earlier) + 1
    ledger.store.append([Recorded(stream, version, ledger.clock(), fact)])
    return f"{stream}/{version}"


def write_and_record(ledger: Ledger, run_id: str, out: Path) -> list[Path]:
    """Write a run's payment files to ``out`` and record their digests in the ledger."""
    files = write_files_for_run(ledger.store, run_id, out)
    record_files(ledger, run_id, files)
    return files


def recorded_files(store: EventStore, upto: int | None = None
                   ) -> Iterator[tuple[int, str, ev.FilesWritten]]:
    """Every ``payment.files_written`` in ledger order: position, event id, fact."""
    for position, recorded in store.recorded(upto=upto, types=(ev.FilesWritten.TYPE,)):
        assert isinstance(recorded.fact, ev.FilesWritten)
        yield position, recorded.id, recorded.fact
