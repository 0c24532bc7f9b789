"""What statements read from the ledger, folded in one pass up to a position.

A statement is built only from recorded events: the runs and the SchoolPaid lines exactly as
the payment files have them, the plans' own facts (to say what changed and why), and the
reference facts (tariffs, rates, cushions, calendars) that move money. ``--as-of`` folds up
to the last position whose recorded time is at or before the moment asked for.

For one school, only that school's payments and the plans that were ever at it are kept, so
a statement of one school reads the ledger once with memory bounded by that school's size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import Calendar, Period, parse_year
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.plan import Plan, RecordedFact
from topup_ledger.domain.reference import REFERENCE_FACTS, Reference
from topup_ledger.domain.rules import Terms
from topup_ledger.storage.store import EventStore, Recorded
from topup_ledger.storage.upcasting import upcast


@dataclass(frozen=True)
class Run:
    """A payment run as recorded on the ``payments`` stream."""

    position: int
    recorded_at: datetime
    run_id: str
    period: str
    sequence: int
    seal: str
    total: int
    # who recorded (prepared) it and who released it: the same under one-person release;
    # "prepared" until a second person releases it under two-person release; "withdrawn"
    # if it never was, its payments then reversed and left out of the school's payments
    prepared_by: str = "unknown"
    released_by: str = ""
    state: str = "released"


@dataclass(frozen=True)
class Envelope:
    """A recorded fact with where and when the ledger recorded it."""

    id: str
    position: int
    recorded_at: datetime
    fact: ev.Fact
    recorded_by: str = "unknown"


@dataclass
class LedgerView:
    """Everything statements need, as known at ``position``."""

    position: int = 0
    recorded_at: datetime | None = None  # of the event at ``position``
    reference: Reference = field(default_factory=Reference)
    runs: list[Run] = field(default_factory=list)
    # run id → school → its payment in that run (only the schools asked for)
    paid: dict[str, dict[str, ev.SchoolPaid]] = field(default_factory=lambda: defaultdict(dict))
    plan_facts: dict[str, list[RecordedFact]] = field(default_factory=lambda: defaultdict(list))
    recorded_at_of: dict[str, datetime] = field(default_factory=dict)  # event id → recorded
    recorded_by_of: dict[str, str] = field(default_factory=dict)  # event id → who recorded it
    # school → plans any of whose facts (as recorded or corrected) names the school
    plans_naming: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # reference facts that move money: tariffs, rates, cushions, calendars, protection policy
    money_facts: list[Envelope] = field(default_factory=list)
    # for the head of a statement, as on a remittance: the LA's details (la.details_set), and
    # whatever payee facts (by school) and payment dates (by run) the ledger holds
    la_details: ev.Fact | None = None
    payees: dict[str, ev.SchoolPayeeSet] = field(default_factory=dict)
    paid_on: dict[str, date] = field(default_factory=dict)
    # run id → school → the recovery that made its cash differ from its net (issue 22)
    recoveries: dict[str, dict[str, ev.RunRecovery]] = field(default_factory=dict)

    @property
    def terms(self) -> Terms:
        return self.reference.terms

    @property
    def schools(self) -> dict[str, ev.SchoolAdded]:
        return self.reference.terms.schools

    def plan(self, ref: str) -> Plan | None:
        facts = self.plan_facts.get(ref)
        return Plan(facts) if facts else None

    def school(self, urn: str) -> ev.SchoolAdded:
        try:
            return self.schools[urn]
        except KeyError:
            raise RuleError("school", f"school {urn} is not in the ledger") from None

    def calendar_for(self, period_id: str, years_back: int = 0) -> Calendar:
        """The payment calendar around ``period_id``'s academic year (and ``years_back``
        years before it), the recorded calendars first, the default terms elsewhere."""
        year = period_id.split("/", 1)[0]
        start = parse_year(year, "period")
        return self.reference.calendar(date(start - years_back, 9, 1), date(start + 1, 8, 31))

    def period(self, period_id: str) -> Period:
        if "/" not in period_id:
            raise RuleError("period", f"{period_id!r} is not a period id like 2025-26/autumn")
        calendar = self.calendar_for(period_id)
        try:
            return calendar.period(period_id)
        except RuleError:
            names = ", ".join(p.id for p in calendar.periods
                              if p.year == period_id.split("/", 1)[0])
            raise RuleError("period", f"{period_id} is not a period in the payment calendar"
                            + (f" (the periods of its year are {names})" if names else "")) from None

    def payments_of(self, school: str) -> list[tuple[Run, ev.SchoolPaid]]:
        """The school's payments, in ledger order."""
        return [(run, self.paid[run.run_id][school]) for run in self.runs
                if school in self.paid.get(run.run_id, {}) and run.state != "withdrawn"]

    def run_controlled(self, run_id: str, **changes: str) -> None:
        """A run's release or withdrawal, as its control stream records it."""
        self.runs = [replace(run, **changes) if run.run_id == run_id else run  # type: ignore[arg-type]
                     for run in self.runs]


def _names(fact: ev.Fact) -> str | None:
    """The school a plan fact names, if any."""
    return getattr(fact, "school", None)


def position_at(store: EventStore, when: datetime) -> tuple[int, datetime | None]:
    """The last position whose recorded time is at or before ``when`` (0 if none), with its
    recorded time. Every event is looked at: nothing assumes recorded times never go back."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    found, found_at = 0, None
    for n in store.notifications():
        at = datetime.fromisoformat(store.mapper.decode_state(n.state)["at"])
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if at <= when:
            found, found_at = n.id, at
    return found, found_at


def read_view(store: EventStore, upto: int | None = None,
              schools: Collection[str] | None = None) -> LedgerView:
    """Fold the ledger up to ``upto`` (all of it if None) for statements of ``schools``
    (every school if None)."""
    view = LedgerView()
    keep_all = schools is None
    wanted = set(schools or ())
    partial: set[str] = set()  # plans kept from a later fact on: read their stream again
    for n in store.notifications(upto=upto):
        if n.topic == ev.SchoolPaid.TYPE and not keep_all:
            # Payments are most of a mature ledger: look at the school before building lines.
            state = store.mapper.decode_state(n.state)
            data = upcast(n.topic, state["v"], state["data"])
            if data["school"] not in wanted:
                view.position, view.recorded_at = n.id, datetime.fromisoformat(state["at"])
                continue
        _apply(view, n.id, store.mapper.to_domain_event(n), keep_all, wanted, partial)
    if not keep_all:
        cited = {line.plan for by_school in view.paid.values() for paid in by_school.values()
                 for line in paid.lines if line.plan}
        _read_plans(store, view, partial | (cited - set(view.plan_facts)))
    return view


def _apply(view: LedgerView, position: int, recorded: Recorded, keep_all: bool,
           wanted: set[str], partial: set[str]) -> None:
    fact = recorded.fact
    view.position, view.recorded_at = position, recorded.recorded_at
    if isinstance(fact, ev.SchoolPaid):
        if fact.run_id in view.paid and fact.school in view.paid[fact.run_id]:
            return  # a withdrawn run's reversal: the school's payment in it stays as recorded
        if keep_all or fact.school in wanted:
            view.paid[fact.run_id][fact.school] = fact
        return
    if isinstance(fact, ev.PaymentRunRecorded):
        view.runs.append(Run(position, recorded.recorded_at, fact.run_id, fact.period,
                             fact.sequence, fact.seal, fact.total, recorded.recorded_by,
                             recorded.recorded_by))
        return
    if isinstance(fact, ev.RunPrepared):
        if fact.release == "two-person":
            view.run_controlled(fact.run_id, state="prepared", released_by="")
        return
    if isinstance(fact, ev.RunReleased):
        view.run_controlled(fact.run_id, state="released", released_by=recorded.recorded_by)
        return
    if isinstance(fact, ev.RunWithdrawn):
        view.run_controlled(fact.run_id, state="withdrawn", released_by="")
        return
    if isinstance(fact, ev.LADetailsSet):
        view.la_details = fact
        return
    _note_remittance(view, fact)
    if fact.TYPE.startswith("plan."):
        ref = fact.plan  # type: ignore[attr-defined]
        named = _names(fact)
        if named is not None:
            view.plans_naming[named].add(ref)
        if keep_all or ref in view.plan_facts or named in wanted:
            if ref not in view.plan_facts and recorded.originator_version > 1:
                partial.add(ref)
            view.plan_facts[ref].append(RecordedFact(recorded.id, fact, position))
            view.recorded_at_of[recorded.id] = recorded.recorded_at
            view.recorded_by_of[recorded.id] = recorded.recorded_by
        return
    if isinstance(fact, REFERENCE_FACTS):
        view.reference.apply(fact, recorded.id, position)
    if isinstance(fact, ev.TariffSet | ev.HourlyRateSet | ev.CalendarSet
                  | ev.ProtectionPolicySet) or (
            isinstance(fact, ev.CushionSet) and (keep_all or fact.school in wanted)):
        view.money_facts.append(Envelope(recorded.id, position, recorded.recorded_at, fact,
                                         recorded.recorded_by))


def _note_remittance(view: LedgerView, fact: ev.Fact) -> None:
    """Who a school is paid through (the latest payee fact) and each run's payment date
    (its finance record), for the statement's head as on a remittance advice."""
    if isinstance(fact, ev.SchoolPayeeSet):
        view.payees[fact.school] = fact
    elif isinstance(fact, ev.RunFinance):
        view.paid_on[fact.run_id] = fact.pay_on
        view.recoveries[fact.run_id] = {r.school: r for r in fact.recoveries}


def _read_plans(store: EventStore, view: LedgerView, refs: set[str]) -> None:
    """Read again, with their positions, the whole lives of plans whose earlier facts the one
    pass did not keep (they named no wanted school until a move or a correction did)."""
    if not refs:
        return
    streams = {f"plan:{ref}" for ref in refs}
    found: dict[str, list[RecordedFact]] = defaultdict(list)
    for n in store.notifications(upto=view.position, types=ev.PLAN_FACTS):
        if n.originator_id in streams:
            recorded: Recorded = store.mapper.to_domain_event(n)
            found[recorded.originator_id[5:]].append(RecordedFact(recorded.id, recorded.fact, n.id))
            view.recorded_at_of[recorded.id] = recorded.recorded_at
            view.recorded_by_of[recorded.id] = recorded.recorded_by
    for ref, facts in found.items():
        view.plan_facts[ref] = facts
