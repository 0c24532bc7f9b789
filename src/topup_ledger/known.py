"""Everything the ledger knew at a position, read in one pass in ledger order.

Payment runs, replays and projections as of a moment all start from this: reference terms,
calendars, every plan's facts, what each plan has been paid and the runs made so far.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .audit.chain import GENESIS, envelope_of, next_link, plain_state
from .domain import events as ev
from .domain.calendar import Calendar, Period, with_default_terms
from .domain.cushion import Cushion
from .domain.payments import PaidSoFar
from .domain.plan import Plan, RecordedFact
from .domain.rules import Terms
from .ledger import periods_of
from .store import EventStore, Recorded
from .upcasting import upcast


@dataclass
class Known:
    position: int = 0
    terms: Terms = field(default_factory=Terms)
    calendars: dict[str, tuple[Period, ...]] = field(default_factory=dict)
    plan_facts: dict[str, list[RecordedFact]] = field(default_factory=lambda: defaultdict(list))
    positions: dict[str, int] = field(default_factory=dict)  # plan event id → position
    paid: dict[str, PaidSoFar] = field(default_factory=lambda: defaultdict(PaidSoFar))
    cushion_paid: dict[str, PaidSoFar] = field(default_factory=lambda: defaultdict(PaidSoFar))
    cushions: dict[str, Cushion] = field(default_factory=dict)  # by school
    runs: list[tuple[int, Recorded]] = field(default_factory=list)
    seals: list[tuple[int, ev.Sealed]] = field(default_factory=list)
    head: bytes = GENESIS
    # the position of the latest fact that can change any plan's due in any year: a school
    # or a calendar. Rates and tariffs change only their financial year's periods, so they
    # are told apart by ``terms.sources``; plans' own facts are tracked per plan; a cushion
    # is a line of its own, worked out afresh by every run.
    reference_changed_at: int = 0

    def apply(self, position: int, recorded: Recorded) -> None:
        fact = recorded.fact
        self.position = position
        if isinstance(fact, ev.SchoolPaid):
            for line in fact.lines:
                paid = self.paid[line.plan] if line.plan else self.cushion_paid[fact.school]
                paid.add(line.for_period, fact.school, line.component, line.amount, position)
        elif isinstance(fact, ev.PaymentRunRecorded):
            self.runs.append((position, recorded))
        elif isinstance(fact, ev.Sealed):
            self.seals.append((position, fact))
        elif isinstance(fact, ev.FilesWritten):
            pass  # digests of a run's written files: no payment depends on them
        elif isinstance(fact, ev.CushionSet):
            # A later cushion for a school replaces the earlier one, as tariffs do.
            self.cushions[fact.school] = Cushion(fact.school, fact.effective, fact.until,
                                                 fact.share_percent, recorded.id)
        elif isinstance(fact, ev.CalendarSet):
            self.calendars[fact.year] = periods_of(fact)
            self.reference_changed_at = position
        elif fact.TYPE.startswith("plan."):
            self.plan_facts[recorded.originator_id].append(
                RecordedFact(recorded.id, fact, position))
            self.positions[recorded.id] = position
        else:
            self.terms.apply(fact, recorded.id, position)
            if isinstance(fact, ev.SchoolAdded):
                self.reference_changed_at = position

    def add_payment(self, position: int, state: dict[str, Any]) -> None:
        data = upcast(ev.SchoolPaid.TYPE, state["v"], state["data"])
        school = data["school"]
        for line in data["lines"]:
            paid = self.paid[line["plan"]] if line["plan"] else self.cushion_paid[school]
            paid.add(line["for_period"], school, line["component"], line["amount"], position)
        self.position = position

    def plans(self) -> list[Plan]:
        return [Plan(facts) for facts in self.plan_facts.values()]

    def calendar_through(self, last: date) -> Calendar:
        starts = [facts[0].fact.effective for facts in self.plan_facts.values()  # type: ignore[attr-defined]
                  if isinstance(facts[0].fact, ev.PlanIssued)]
        return with_default_terms(self.calendars, min([*starts, last]), last)

    def runs_for(self, period_id: str) -> list[ev.PaymentRunRecorded]:
        return [r.fact for _, r in self.runs  # type: ignore[misc]
                if isinstance(r.fact, ev.PaymentRunRecorded) and r.fact.period == period_id]


def read_known(store: EventStore, upto: int | None = None) -> Known:
    """Fold every event up to ``upto`` (all if None), keeping the chain head as it goes."""
    known = Known()
    head = GENESIS
    for n in store.notifications(upto=upto):
        payload = plain_state(store, n.state)
        envelope = envelope_of(payload)
        head = next_link(head, n.id, str(n.originator_id), n.originator_version, n.topic, payload,
                         envelope, parsed=True)
        if n.topic == ev.SchoolPaid.TYPE:
            # Payments are most of a mature ledger: fold their lines straight from the
            # stored data instead of building an object per line.
            known.add_payment(n.id, envelope)  # type: ignore[arg-type]
        else:
            known.apply(n.id, store.mapper.to_domain_event(n))
    known.head = head
    return known
