"""Writing files only their owner can read: they name schools and pseudonymous pupils.

Every file the product writes (payment files, projections, statements, exports, rejects)
goes through here: folders it creates are 0o700, files are 0o600 from the moment they
exist (never briefly world-readable), and a file is written to a temporary name and renamed
into place, so a reader never sees half of it and a killed process leaves the old file (or
none), never a torn one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable only by its owner; an existing folder
    is left as its owner set it."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


@contextmanager
def private_temp(final: Path) -> Iterator[Path]:
    """A temporary path next to ``final`` for a writer that opens files by name (pyarrow);
    on success it is made private and renamed to ``final``, on failure removed."""
    private_dir(final.parent)
    temp = final.with_name(f".{final.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.close(fd)
    try:
        yield temp
        os.chmod(temp, FILE_MODE)
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)


def write_private(final: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``final`` atomically, readable only by its owner."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with private_temp(final) as temp:
        fd = os.open(temp, os.O_WRONLY | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
    return final
