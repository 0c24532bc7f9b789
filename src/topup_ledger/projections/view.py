"""What a projection's readers are handed: its state as known at a position."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from topup_ledger.projections.base import Decoder
from topup_ledger.projections.db import ProjectionDB


@dataclass
class View:
    """Projection state ready to read, as known at ``position``."""

    db: ProjectionDB
    decoder: Decoder
    position: int
    known_at: str  # the recorded time of the event at ``position`` ('' for an empty ledger)
    as_of: datetime | None = None
