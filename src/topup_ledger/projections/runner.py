"""The catch-up loop that keeps projections up to date, exactly once.

The SQLite recorder cannot push notifications, so projections pull: read the events after
the position each projection has reached (``StoredPages.pages(after=position)``: plain
rows, whose state is decoded only for the events a fold reads the contents of), a page at
a time, fold the page, and record the new position in the same transaction as the
page's rows. Killed mid-page, nothing of that page is kept and the next run reads it again;
a page is never applied twice because the tracked position is re-read inside the
transaction that applies it (two readers catching up at once skip what the other did).

After the fold, each projection recomputes the plans the fold marked dirty (chunk by chunk,
each chunk with the removal of its dirty marks: also resumable).

``--as-of TIME`` folds into a temporary projection file up to the last position whose
recorded time is at or before TIME (positions are in recorded order, so a binary search
over positions finds it in a few reads).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Notification

from topup_ledger.engine import collector
from topup_ledger.projections.base import Decoder, PlanFold, state_digest
from topup_ledger.projections.db import ProjectionDB, projections_path
from topup_ledger.projections.hours_vs_band import HoursVsBand
from topup_ledger.projections.school_periods.fold import SchoolPeriods
from topup_ledger.projections.view import View
from topup_ledger.storage.pages import StoredPages, StoredRow
from topup_ledger.storage.store import EventStore

PAGE = 2_000

AnyPlanFold = PlanFold[Any, Any]  # the runner works folds whatever their context and rows

FOLDS: dict[str, type[AnyPlanFold]] = {"school-periods": SchoolPeriods, "hours-vs-band": HoursVsBand}
# What a user may name: each output is served by one stored fold.
OUTPUTS = {"funding": "school-periods", "paid-vs-due": "school-periods",
           "hours-vs-band": "hours-vs-band", "band-calibration": "hours-vs-band",
           "school-periods": "school-periods"}

Progress = Callable[[int], None]


def folds_for(names: Sequence[str]) -> list[AnyPlanFold]:
    wanted = dict.fromkeys(OUTPUTS[n] for n in names) if names else dict.fromkeys(FOLDS)
    return [FOLDS[name]() for name in wanted]


def prepare(store: EventStore, db: ProjectionDB, fold: AnyPlanFold) -> None:
    """Create the fold's tables; start it again from nothing if its schema changed or the
    ledger it was built from is not this one (the event at its position differs)."""
    tracked = db.tracked(fold.name)
    if tracked is not None and tracked.schema == fold.SCHEMA and _same_ledger(store, tracked.position,
                                                                              tracked.digest):
        return
    with db.transaction() as conn:
        fold.drop(conn)
        fold.create(conn)
        db.track(conn, fold.name, 0, fold.SCHEMA, "")


def _same_ledger(store: EventStore, position: int, expected: str) -> bool:
    if position == 0:
        return True
    rows = store.recorder.select_notifications(position, 1, stop=position)
    return bool(rows) and rows[0].id == position and state_digest(rows[0].state) == expected


def apply_page(db: ProjectionDB, folds: Sequence[AnyPlanFold], page: list[StoredRow],
               decoder: Decoder) -> None:
    with db.transaction() as conn:
        for fold in folds:
            tracked = db.tracked(fold.name, conn)
            reached = tracked.position if tracked else 0
            rows = page if page[0].id > reached else [n for n in page if n.id > reached]
            if not rows:
                continue
            fold.fold(conn, rows, decoder)
            db.track(conn, fold.name, rows[-1].id, fold.SCHEMA, state_digest(rows[-1].state))


def catch_up(store: EventStore, db: ProjectionDB, folds: Sequence[AnyPlanFold], *,
             upto: int | None = None, page: int = PAGE, progress: Progress | None = None) -> int:
    """Fold the events after each fold's position (up to ``upto``), then recompute dirty
    plans. Returns how many events were read."""
    decoder = Decoder(store)
    for fold in folds:
        prepare(store, db, fold)
    start = min(db.tracked(f.name).position for f in folds)  # type: ignore[union-attr]
    read = 0
    reader = StoredPages(store)
    with collector.paused():
        try:
            for rows in reader.pages(after=start, upto=upto, size=page):
                apply_page(db, folds, rows, decoder)
                read += len(rows)
                if progress:
                    progress(read)
            for fold in folds:
                fold.refresh(db, decoder, reader)
        finally:
            reader.close()
    return read


def rebuild(store: EventStore, db: ProjectionDB, folds: Sequence[AnyPlanFold], *, page: int = PAGE,
            progress: Progress | None = None) -> int:
    """Drop the folds' state and fold every event again, from the events alone."""
    with db.transaction() as conn:
        for fold in folds:
            fold.drop(conn)
            db.forget(conn, fold.name)
    return catch_up(store, db, folds, page=page, progress=progress)


def position_at(store: EventStore, when: datetime) -> tuple[int, str]:
    """The last position recorded at or before ``when``, and its recorded time ('' for 0)."""
    decoder = Decoder(store)

    def at(n: Notification) -> datetime:
        moment = datetime.fromisoformat(decoder.at(n.state))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    low, high, low_at = 0, store.max_position(), ""
    while low < high:
        middle = (low + high + 1) // 2
        rows = store.recorder.select_notifications(middle, 1, stop=high)
        if not rows:
            high = middle - 1
        elif at(rows[0]) <= when:
            low, low_at = rows[0].id, decoder.at(rows[0].state)
        else:
            high = middle - 1
    return low, low_at


def _known_at(db: ProjectionDB, fold: AnyPlanFold) -> str:
    return fold.meta(db.conn, "last_at")


@contextmanager
def view(store: EventStore, outputs: Sequence[str], as_of: datetime | None = None, *,
         page: int = PAGE, progress: Progress | None = None,
         path: Path | None = None) -> Iterator[View]:
    """Bring the projections behind ``outputs`` up to date (or replay them as of a time) and
    give them for reading."""
    folds = folds_for(outputs)
    decoder = Decoder(store)
    target = None if as_of is None else position_at(store, as_of)[0]
    if target is None or target == store.max_position():
        db = ProjectionDB(path or projections_path(store.location))
        try:
            catch_up(store, db, folds, upto=target, page=page, progress=progress)
            position = min(db.tracked(f.name).position for f in folds)  # type: ignore[union-attr]
            yield View(db, decoder, position, _known_at(db, folds[0]), as_of)
        finally:
            db.close()
        return
    with tempfile.TemporaryDirectory(prefix="topup-as-of-") as folder:
        db = ProjectionDB(Path(folder) / "as-of.projections.sqlite")
        try:
            catch_up(store, db, folds, upto=target, page=page, progress=progress)
            yield View(db, decoder, target, _known_at(db, folds[0]) if target else "", as_of)
        finally:
            db.close()
