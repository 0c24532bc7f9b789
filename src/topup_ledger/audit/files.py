"""Digests of the payment files a run wrote, recorded in the ledger.

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

from topup_ledger.domain import events as ev
from topup_ledger.storage.store import EventStore

CHUNK = 1 << 20


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


def recorded_files(store: EventStore, upto: int | None = None
                   ) -> Iterator[tuple[int, str, ev.FilesWritten]]:
    """Every ``payment.files_written`` in ledger order: position, event id, fact."""
    for position, recorded in store.recorded(upto=upto, types=(ev.FilesWritten.TYPE,)):
        assert isinstance(recorded.fact, ev.FilesWritten)
        yield position, recorded.id, recorded.fact
