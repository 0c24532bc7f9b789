"""Everything the ledger knew at a position, read in one pass in ledger order.

Replays, statements and checks as of a moment start from this (``read_known``): reference
terms, calendars, every plan's facts, what each plan has been paid and the runs made so
far. A payment run reads only the first part here (``read_reference``) and each plan's
facts from its own stream as it comes to it (``plan_streams``).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from eventsourcing.persistence import Notification

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import Calendar, Period
from topup_ledger.domain.cushion import Cushion
from topup_ledger.domain.events import REFERENCE_TYPES
from topup_ledger.domain.payments import REVERSAL_CAUSE, PaidSoFar
from topup_ledger.domain.plan import Plan, RecordedFact
from topup_ledger.domain.reference import REFERENCE_FACTS, Reference
from topup_ledger.domain.rules import Terms
from topup_ledger.storage.chain import (
    GENESIS,
    Fields,
    encode,
    envelope_fields,
    envelope_of,
    next_link,
    plain_state,
)
from topup_ledger.storage.codec import fact_from_data
from topup_ledger.storage.pages import StoredPages, StoredRow
from topup_ledger.storage.store import EventStore, Recorded, StoreError, describe, event_id
from topup_ledger.storage.upcasting import UnknownSchemaVersion, upcast


@dataclass
class Known:
    position: int = 0
    reference: Reference = field(default_factory=Reference)
    plan_facts: dict[str, list[RecordedFact]] = field(default_factory=lambda: defaultdict(list))
    paid: dict[str, PaidSoFar] = field(default_factory=lambda: defaultdict(PaidSoFar))
    cushion_paid: dict[str, PaidSoFar] = field(default_factory=lambda: defaultdict(PaidSoFar))
    runs: list[tuple[int, Recorded]] = field(default_factory=list)
    seals: list[tuple[int, ev.Sealed]] = field(default_factory=list)
    head: bytes = GENESIS
    # read_known(..., payments=False) and read_reference left the payments to
    # ``read_payments``, which records the runs whose payments it has read
    unread_payments: bool = False
    payments_read: set[str] = field(default_factory=set)
    withdrawn: set[str] = field(default_factory=set)  # runs withdrawn: their payments reversed

    @property
    def terms(self) -> Terms:
        return self.reference.terms

    @property
    def calendars(self) -> dict[str, tuple[Period, ...]]:
        return self.reference.calendars

    @property
    def cushions(self) -> dict[str, Cushion]:
        return self.reference.cushions

    def apply(self, position: int, recorded: Recorded) -> None:
        fact = recorded.fact
        self.position = position
        if isinstance(fact, ev.SchoolPaid):
            for line in fact.lines:
                paid = self.paid[line.plan] if line.plan else self.cushion_paid[fact.school]
                paid.add(line.for_period, fact.school, line.component, line.amount, position)
                if line.caused_by[:1] and line.caused_by[0].startswith(REVERSAL_CAUSE):
                    paid.reversed_in(line.for_period)
        elif isinstance(fact, ev.PaymentRunRecorded):
            self.runs.append((position, recorded))
        elif isinstance(fact, ev.Sealed):
            self.seals.append((position, fact))
        elif isinstance(fact, ev.RunWithdrawn):
            self.withdrawn.add(fact.run_id)
        elif isinstance(fact, ev.FilesWritten):
            pass  # digests of a run's written files: no payment depends on them
        elif isinstance(fact, REFERENCE_FACTS):
            self.reference.apply(fact, recorded.id, position)
        elif fact.TYPE.startswith("plan."):
            self.plan_facts[recorded.originator_id].append(
                RecordedFact(recorded.id, fact, position))

    def add_payment(self, position: int, state: dict[str, Any],
                    keep: Callable[[str], bool] | None = None) -> None:
        """Fold a payment's lines (those of the plans ``keep`` says, if given; a cushion's
        always) straight from its stored data, without an object per line."""
        data = upcast(ev.SchoolPaid.TYPE, state["v"], state["data"])
        school = data["school"]
        for line in data["lines"]:
            plan = line["plan"]
            if not plan:
                paid = self.cushion_paid[school]
            elif keep is None or keep(plan):
                paid = self.paid[plan]
            else:
                continue
            paid.add(line["for_period"], school, line["component"], line["amount"], position)
            if line["caused_by"][:1] and line["caused_by"][0].startswith(REVERSAL_CAUSE):
                paid.reversed_in(line["for_period"])
        self.position = max(self.position, position)

    def read_payments(self, store: EventStore, periods: Container[str],
                      compared_in: Callable[[str], Callable[[str], bool] | None] | None = None
                      ) -> None:
        """Fold the payments of the runs for ``periods`` that were passed over (up to the
        position read to), each run's stream a page at a time; with ``compared_in``, of
        each run only the lines of the plans ``compared_in(run's period)`` keeps.

        A run's lines are for its own period and earlier ones, so a payment run only needs
        the runs for the periods it will look at again and later ones: on a mature ledger
        that is a small part of its payments, which are most of its bytes. One plan with a
        change backdated a year needs a year of runs, but not every plan's lines in them."""
        if not self.unread_payments:
            return
        wanted = [(f"run:{r.fact.run_id}", r.fact.period)  # type: ignore[attr-defined]
                  for _, r in self.runs if r.fact.period in periods]  # type: ignore[attr-defined]
        pages = StoredPages(store)
        try:
            for stream, period in wanted:
                if stream in self.payments_read:
                    continue
                self.payments_read.add(stream)
                keep = None if compared_in is None else compared_in(period)
                for rows in pages.stream_pages(stream, self.position):
                    for row in rows:
                        if row.topic == ev.SchoolPaid.TYPE:
                            envelope = envelope_of(plain_state(store, row.state))
                            self.add_payment(row.id, readable(envelope, row, store), keep)
        finally:
            pages.close()

    def forget_payments(self) -> None:
        """Forget the payments read so far (a run worked out again reads them afresh)."""
        if self.unread_payments:
            self.paid.clear()
            self.cushion_paid.clear()
            self.payments_read.clear()

    def plans(self) -> list[Plan]:
        return [Plan(facts) for facts in self.plan_facts.values()]

    def calendar_through(self, last: date) -> Calendar:
        starts = [facts[0].fact.effective for facts in self.plan_facts.values()  # type: ignore[attr-defined]
                  if isinstance(facts[0].fact, ev.PlanIssued)]
        return self.reference.calendar(min([*starts, last]), last)

    def last_standing_run(self) -> tuple[int, Recorded] | None:
        """The latest run not withdrawn: a withdrawn run's payments are reversed, so what
        is settled counts from the run before it."""
        return next((r for r in reversed(self.runs)
                     if r[1].fact.run_id not in self.withdrawn), None)  # type: ignore[attr-defined]

    def runs_for(self, period_id: str) -> list[ev.PaymentRunRecorded]:
        return [r.fact for _, r in self.runs  # type: ignore[misc]
                if isinstance(r.fact, ev.PaymentRunRecorded) and r.fact.period == period_id]


def readable(envelope: dict[str, Any] | None, n: Notification | StoredRow,
             store: EventStore) -> dict[str, Any]:
    """The event's decoded state, or a refusal naming it: nothing is worked out from a ledger
    whose events no longer decode (a damaged disk, an edited row), nor from a JSON object
    that is not an event's state (its schema version a number, its recorded time a string,
    its data an object): reading on from one raised a TypeError deep in the fold."""
    if envelope is None:
        problem = "is not a JSON object"
    elif not (type(envelope.get("v")) is int and isinstance(envelope.get("at"), str)
              and isinstance(envelope.get("data"), dict)):
        problem = "is not an event's state (a version number, a recorded time and its data)"
    else:
        return envelope
    raise StoreError(f"an event in the ledger at {describe(store.location)} cannot be read: "
                     f"{n.originator_id}/"
                     f"{n.originator_version} ({n.topic}, position {n.id}) {problem}; "
                     "the ledger is damaged: run `topup verify`")


def read_known(store: EventStore, upto: int | None = None, *, payments: bool = True) -> Known:
    """Fold every event up to ``upto`` (all if None), keeping the chain head as it goes.

    With ``payments=False`` the runs' payments are chained but not folded: call
    ``Known.read_payments`` for the periods that need them."""
    known = Known(unread_payments=not payments)
    head = GENESIS
    for n in store.notifications(upto=upto):
        payload = plain_state(store, n.state)
        stream = str(n.originator_id)
        if n.topic == ev.SchoolPaid.TYPE:
            fields = None if payments else payment_chain_fields(payload)
            if fields is None:
                envelope = readable(envelope_of(payload), n, store)
                fields = envelope_fields(envelope)
                # Payments are most of a mature ledger: fold their lines straight from the
                # stored data instead of building an object per line.
                if payments:
                    try:
                        known.add_payment(n.id, envelope)
                    except UnknownSchemaVersion:
                        raise
                    except (KeyError, TypeError, ValueError, AttributeError):
                        raise StoreError(damaged(n.topic, stream, n.originator_version)) from None
            known.position = n.id
        else:
            envelope = readable(envelope_of(payload), n, store)
            fields = envelope_fields(envelope)
            known.apply(n.id, recorded_from(n.topic, stream, n.originator_version, envelope))
        sha = hashlib.sha256(head)
        sha.update(encode(n.id, stream, n.originator_version, n.topic, *fields, payload))
        head = sha.digest()
    known.head = head
    return known


# What a payment run reads in full: everything but the plans (read a chunk at a time) and
# the payments (read only for the runs it compares with).
RUN_CONTEXT_TYPES = (*REFERENCE_TYPES, ev.PaymentRunRecorded.TYPE, ev.Sealed.TYPE,
                     ev.RunWithdrawn.TYPE)


def read_reference(store: EventStore, upto: int) -> Known:
    """The reference facts, runs and seals up to ``upto``, and the chain head there.

    The head is carried on from the latest seal rather than from the first event: a seal
    is the chain's checkpoint (``topup verify`` checks every seal against the events
    before it), so a run hashes only what was recorded since the last one. Every event
    after the seal is read whole, and one that no longer decodes is refused."""
    known = Known(unread_payments=True)
    for n in store.notifications(upto=upto, types=RUN_CONTEXT_TYPES):
        envelope = readable(envelope_of(plain_state(store, n.state)), n, store)
        known.apply(n.id, recorded_from(n.topic, str(n.originator_id), n.originator_version,
                                        envelope))
    head, after = GENESIS, 0
    if known.seals:
        sealed = known.seals[-1][1]
        head, after = bytes.fromhex(sealed.head), sealed.position
    pages = StoredPages(store)
    try:
        for rows in pages.pages(after=after, upto=upto):
            for row in rows:
                payload = plain_state(store, row.state)
                head = next_link(head, row.id, row.originator_id, row.originator_version,
                                 row.topic, payload, readable(envelope_of(payload), row, store),
                                 parsed=True)
    finally:
        pages.close()
    known.head, known.position = head, upto
    return known


def recorded_from(topic: str, stream: str, version: int, envelope: dict[str, Any] | None) -> Recorded:
    """The stored event as ``store.mapper.to_domain_event`` gives it, from the state already
    decoded for the chain (decoding it twice was a third of reading the ledger)."""
    if envelope is None:
        raise StoreError(f"the stored state of {event_id(stream, version)} is not a JSON object")
    try:
        data = upcast(topic, envelope["v"], envelope["data"])
        return Recorded(stream, version, datetime.fromisoformat(envelope["at"]),
                        fact_from_data(topic, data))
    except UnknownSchemaVersion:
        raise  # a newer ledger, not a damaged one: said as such
    except (KeyError, TypeError, ValueError, AttributeError):
        raise StoreError(damaged(topic, stream, version)) from None


def damaged(topic: str, stream: str, version: int) -> str:
    """The refusal for a stored event that decodes but is not the event its type says."""
    return (f"the stored state of {event_id(stream, version)} is not a {topic} event as the "
            "ledger records one; the ledger is damaged: run `topup verify`")


# How FactMapper writes a payment's state: {"v":1,"at":"<ISO time>","data":{...}}, and
# since events name who recorded them and are authenticated by the ledger's key,
# {"v":1,"at":"<ISO time>","by":"<actor>","key":"<key id>","data":{...},"mac":"<hex>"}.
_PAYMENT_STATE = re.compile(
    rb'\{"v":([1-9][0-9]{0,8}),"at":"([^"\\]*)",(?:"by":"([^"\\]*)",(?:"key":"[0-9a-f]*",)?)?'
    rb'"data":\{')
_MAC_END = re.compile(rb'\},"mac":"[0-9a-f]{64}"\}\Z')


def payment_chain_fields(payload: bytes) -> Fields | None:
    """``envelope_fields(envelope_of(payload))`` for a payment's state as the mapper writes
    it, read from its opening bytes without decoding its lines; None for anything else (the
    caller then decodes it in full). A payment has no effective date."""
    match = _PAYMENT_STATE.match(payload)
    if match is None or b'"effective"' in payload:
        return None
    if not (payload.endswith(b"}}") or _MAC_END.search(payload, max(0, len(payload) - 80))):
        return None
    by = match.group(3)
    return match.group(1).decode(), match.group(2).decode(), "", None if by is None else by.decode()
