"""Reading recorded payment runs back: a run's school payments a page at a time, and the
schools' names the files print."""

from __future__ import annotations

from collections.abc import Iterator

from topup_ledger.domain import events as ev
from topup_ledger.storage.pages import StoredPages
from topup_ledger.storage.store import EventStore
from topup_ledger.storage.streams import PAYMENTS_STREAM, run_stream, school_stream


def recorded_run(store: EventStore, run_id: str) -> ev.PaymentRunRecorded | None:
    """The record of run ``run_id``, or None if there is no such run."""
    for r in store.stream_recorded(PAYMENTS_STREAM):
        if isinstance(r.fact, ev.PaymentRunRecorded) and r.fact.run_id == run_id:
            return r.fact
    return None


SCHOOLS_PER_PAGE = 200  # a national school's payment has tens of lines, a large one hundreds


def run_payments(store: EventStore, run_id: str, schools: int | None = None
                 ) -> Iterator[ev.SchoolPaid]:
    """A run's school payments in the order recorded (by school), a few hundred at a time:
    a national run records over a million lines. ``schools`` (the run record's count): only
    the run's own, not the reversals a withdrawal appends to its stream."""
    pages = StoredPages(store)
    read = 0
    try:
        for page in pages.stream_pages(run_stream(run_id), store.max_position(), SCHOOLS_PER_PAGE):
            for row in page:
                if schools is not None and read >= schools:
                    return
                read += 1
                fact = store.mapper.to_domain_event(row).fact
                assert isinstance(fact, ev.SchoolPaid)
                yield fact
    finally:
        pages.close()


def school_names(store: EventStore) -> dict[str, str]:
    """Every school's name, read from the first event of its own stream (``school:URN``).
    A school's details never change once recorded, so today's names are the run's names."""
    pages = StoredPages(store)
    names: dict[str, str] = {}
    try:
        for row in pages.first_events(school_stream(""), store.max_position()):
            if row.topic == ev.SchoolAdded.TYPE:
                fact = store.mapper.to_domain_event(row).fact
                names[fact.urn] = fact.name
    finally:
        pages.close()
    return names
