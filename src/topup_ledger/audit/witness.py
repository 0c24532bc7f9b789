"""The witness log: seals appended to a file kept outside the ledger (another disk or host).

``topup seal --witness PATH`` (and, for the seal each payment run makes, ``TOPUP_WITNESS``)
appends one line per seal; ``topup verify --witness PATH`` checks every line against the
ledger. A line is tab-separated::

    <64 hex>@<position> <TAB> ledger=<ledger id> <TAB> event=<seal event> <TAB> at=<recorded time>

Whoever rewrites the ledger can recompute the seals inside it, but not the lines already
written here: a line that does not match, or names a position the ledger no longer reaches,
means the ledger is not what it was. The file is only ever appended to (``O_APPEND``), and
each line is flushed to disk before the command reports the seal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from topup_ledger.storage.chain import DigestError, parse_digest


@dataclass(frozen=True)
class Witnessed:
    line: int
    digest: str
    ledger_id: str


def append(path: Path, digest: str, ledger_id: str, event: str) -> None:
    """Append one seal to the witness log at ``path`` (made if missing, 0600)."""
    parse_digest(digest)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    line = f"{digest}\tledger={ledger_id}\tevent={event}\tat={at}\n".encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> tuple[list[Witnessed], list[str]]:
    """The seals a witness log holds, and notes on lines it cannot read (they are skipped)."""
    found: list[Witnessed] = []
    notes: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, 1):
            text = text.strip()
            if not text or text.startswith("#"):
                continue
            digest, *rest = text.split("\t")
            fields = dict(f.split("=", 1) for f in rest if "=" in f)
            try:
                parse_digest(digest)
            except DigestError:
                notes.append(f"witness {path} line {number} is not a seal: skipped")
                continue
            found.append(Witnessed(number, digest, fields.get("ledger", "")))
    return found, notes
