"""Commands that record facts: validate against what the ledger knows, then append.

Every command either records all its facts or none (one atomic save), and refuses bad
input with a RuleError naming the field. Recorded time comes from the ledger's clock;
effective dates come from the user.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Generic, TypeVar

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import (
    Calendar,
    Period,
    check_periods,
    check_terms,
    financial_year_of,
    parse_year,
)
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.events import REFERENCE_TYPES
from topup_ledger.domain.money import round_half_up
from topup_ledger.domain.plan import Plan, RecordedFact, check_hours
from topup_ledger.domain.reference import Reference
from topup_ledger.domain.rules import Terms
from topup_ledger.io.text_safety import refused_character
from topup_ledger.storage.store import FactStore, Recorded
from topup_ledger.storage.streams import plan_stream, school_stream

Clock = Callable[[], datetime]


_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}", re.ASCII)
_URN = re.compile(r"\d{6,8}", re.ASCII)
_BAND = re.compile(r"[A-Z][A-Z0-9+]{0,3}", re.ASCII)
MAX_BAND_PENCE = 100_000_000  # £1m a year: anything above is a typing mistake
MAX_HOURLY_PENCE = 10_000  # £100 an hour


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_ref(value: str, field: str) -> str:
    if not _REF.fullmatch(value):
        raise RuleError(field, f"{value!r} must be 1-40 letters, digits, '-', '_' or '.'")
    return value


def check_urn(value: str, field: str = "school") -> str:
    if not _URN.fullmatch(value):
        raise RuleError(field, f"{value!r} is not a school URN (6 to 8 digits)")
    return value


def check_band(value: str, field: str = "band") -> str:
    if not _BAND.fullmatch(value):
        raise RuleError(field, f"{value!r} is not a band name (a capital letter, e.g. D)")
    return value


def check_in_year(year: str, effective: date | None, field: str = "from") -> None:
    """A financial year, and a day inside it from which a revision takes effect (if any)."""
    start = parse_year(year)
    if effective is not None and not date(start, 4, 1) <= effective <= date(start + 1, 3, 31):
        raise RuleError(field, f"{effective} is not in financial year {year} "
                        f"(1 April {start} to 31 March {start + 1})")


def check_reason(value: str, field: str = "reason") -> str:
    if not value.strip():
        raise RuleError(field, "give a reason")
    if len(value) > 500:
        raise RuleError(field, "is longer than 500 characters")
    return value.strip()


Store = TypeVar("Store", bound=FactStore)


@dataclass
class Ledger(Generic[Store]):
    """The service layer: one ledger, its store and its clock."""

    store: Store
    clock: Clock = utc_now
    repeated: bool = False  # the last command repeated the latest fact: nothing was recorded

    def __post_init__(self) -> None:
        # The store records the time from its own clock (the database server's on PostgreSQL)
        # unless the ledger was given a clock of its own: a test's, whose times it records.
        if self.clock is not utc_now and hasattr(self.store, "given_times"):
            self.store.given_times = True  # type: ignore[attr-defined]

    # Reading what the ledger knows.

    def reference(self, upto: int | None = None) -> Reference:
        reference = Reference()
        for position, recorded in self.store.recorded(upto=upto, types=REFERENCE_TYPES):
            reference.apply(recorded.fact, recorded.id, position)
        return reference

    def terms(self, upto: int | None = None) -> Terms:
        return self.reference(upto).terms

    def calendars(self, upto: int | None = None) -> dict[str, tuple[Period, ...]]:
        return dict(self.reference(upto).calendars)

    def calendar(self, first: date, last: date, upto: int | None = None) -> Calendar:
        return self.reference(upto).calendar(first, last)

    def period(self, period_id: str, first: date | None = None) -> tuple[Calendar, Period]:
        """The calendar from ``first`` (or the period's own year) and the named period."""
        year = period_id.split("/", 1)[0]
        start = parse_year(year, "period")
        around = date(start, 9, 1)
        calendar = self.calendar(min(first or around, around), date(start + 1, 8, 31))
        return calendar, calendar.period(period_id)

    def plan(self, ref: str) -> Plan:
        facts = self.store.stream(plan_stream(ref))
        if not facts:
            raise RuleError("plan", f"plan {ref} is not in the ledger")
        return Plan(facts)

    # Recording.

    def _record_once(self, stream: str, fact: ev.Fact,
                     history: list[RecordedFact] | None = None) -> str:
        """Append ``fact`` unless the stream already holds exactly this fact (the same command
        run twice): then nothing is recorded and the earlier fact's id is returned. This is
        the import's rule too; setting a value back to an earlier one needs its own reason."""
        facts = self.store.stream(stream) if history is None else history
        earlier = self._earlier(facts, fact)
        if earlier is not None:
            return earlier
        return self._append(stream, fact, expected=None if history is None else len(facts))[0]

    def _earlier(self, facts: list[RecordedFact], fact: ev.Fact) -> str | None:
        """The id of an earlier fact exactly like ``fact`` (the same command run twice), which
        is then all the command answers: nothing new is recorded."""
        for earlier in facts:
            if earlier.fact == fact:
                self.repeated = True
                return earlier.id
        return None

    def _append(self, stream: str, *facts: ev.Fact, expected: int | None = None) -> list[str]:
        for fact in facts:
            check_text(fact)
        version = self.store.version(stream) if expected is None else expected
        now = self.clock()
        batch = [Recorded(stream, version + i + 1, now, f) for i, f in enumerate(facts)]
        self.store.append(batch)
        return [r.id for r in batch]

    def add_school(self, urn: str, name: str, setting: str, la_code: str | None = None) -> str:
        check_urn(urn, "urn")
        if not name.strip():
            raise RuleError("name", "give the school's name")
        if setting not in ev.SETTINGS:
            raise RuleError("setting", f"{setting!r} is not one of {', '.join(ev.SETTINGS)}")
        fact = ev.SchoolAdded(urn, name.strip(), setting, la_code)
        existing = self.store.stream(school_stream(urn))
        if existing:
            if existing[-1].fact == fact:
                self.repeated = True
                return existing[-1].id  # the same school again: nothing new to record
            raise RuleError("urn", f"school {urn} is already in the ledger with other details")
        return self._append(school_stream(urn), fact, expected=0)[0]

    def set_calendar(self, year: str, periods: tuple[Period, ...], reason: str = "",
                     terms: tuple[ev.TermDates, ...] = (), closures: tuple[date, ...] = ()) -> str:
        """Record a calendar; with ``terms`` (and ``closures``) it holds the school days, and
        its periods are paid by school days on roll (docs/rules.md §2)."""
        parse_year(year)
        check_periods(year, periods)
        if terms:
            periods = check_terms(periods, terms, closures)
        elif closures:
            raise RuleError("closure", "closures need the term dates they close days of")
        fact = ev.CalendarSet(year, tuple(
            ev.PeriodSpec(p.id, p.start, p.end, f"{p.share.numerator}/{p.share.denominator}",
                          p.school_days) for p in periods), reason, tuple(terms),
            tuple(sorted(set(closures))))
        others = {y: ps for y, ps in self.calendars().items() if y != year}
        Calendar.of({**others, year: periods})  # refuses overlaps with other years
        return self._record_once(f"calendar:{year}", fact)

    def set_rate(self, year: str, hourly_pence: int, weeks: Decimal, threshold_pence: int,
                 reason: str = "", effective: date | None = None) -> str:
        check_in_year(year, effective)
        if not 0 < hourly_pence <= MAX_HOURLY_PENCE:
            raise RuleError("hourly", f"£{hourly_pence / 100:.2f} an hour is not plausible")
        if not 0 < weeks <= 52:
            raise RuleError("weeks", f"{weeks} is not a number of weeks in a year (1-52)")
        if not 0 <= threshold_pence <= MAX_BAND_PENCE:
            raise RuleError("threshold", "must be between £0 and £1,000,000")
        return self._record_once(f"rate:{year}", ev.HourlyRateSet(
            year, hourly_pence, weeks, threshold_pence, reason, effective))

    def set_tariff(self, year: str, bands: dict[str, int], setting: str | None = None,
                   reason: str = "", effective: date | None = None) -> str:
        check_in_year(year, effective)
        if not bands:
            raise RuleError("band", "give at least one --band NAME=AMOUNT")
        for band, pence in bands.items():
            check_band(band)
            if not 0 <= pence <= MAX_BAND_PENCE:
                raise RuleError("band", f"{band}: £{pence / 100:,.2f} is not a plausible value")
        if setting is not None and setting not in ev.SETTINGS:
            raise RuleError("setting", f"{setting!r} is not one of {', '.join(ev.SETTINGS)}")
        stream = f"tariff:{year}" + (f":{setting}" if setting else "")
        return self._record_once(stream, ev.TariffSet(
            year, tuple(sorted(bands.items())), setting, reason, effective))

    def set_cushion(self, urn: str, effective: date, until: date, share_percent: Decimal,
                    reason: str = "", year: str | None = None) -> str:
        """Record a per-school transitional cushion (docs/rules.md §11): a share of the
        school's net reduction from the move to bands of its plans transferred in financial
        year ``year`` (that of ``effective`` if not given), paid as its own line from
        ``effective`` to ``until``."""
        if year is not None:
            parse_year(year)
        self.terms().setting_of(check_urn(urn))
        if until < effective:
            raise RuleError("until", f"{until} is before {effective}")
        if not 0 < share_percent <= 100:
            raise RuleError("share", f"{share_percent}% must be more than 0 and at most 100")
        return self._record_once(f"cushion:{urn}", ev.CushionSet(urn, effective, until,
                                                                 share_percent, reason, year))

    def set_la_details(self, name: str, address: tuple[str, ...] = (), contact: str = "",
                       query_how: str = "") -> str:
        """Record the paying LA's details shown at the head of its statements."""
        if not name.strip():
            raise RuleError("name", "give the local authority's name")
        return self._record_once("la", ev.LADetailsSet(
            name.strip(), tuple(line.strip() for line in address if line.strip()),
            contact.strip(), query_how.strip()))

    def issue_plan(self, ref: str, pupil: str, school: str, effective: date,
                   hours: Decimal | None = None, band: str | None = None,
                   kind: str = "ehcp") -> str:
        check_ref(ref, "plan")
        check_ref(pupil, "pupil")
        if kind not in ev.PLAN_KINDS:
            raise RuleError("kind", f"{kind!r} is not one of {', '.join(ev.PLAN_KINDS)}")
        if (hours is None) == (band is None):
            raise RuleError("hours", "give either --hours or --band")
        stream = plan_stream(ref)
        existing = self.store.stream(stream)
        if existing:
            Plan(existing).check_change(ev.PlanIssued(ref, pupil, school, effective))
        terms = self.terms()
        terms.setting_of(check_urn(school))
        if hours is not None:
            check_hours(hours)
        if band is not None:
            terms.require_band(check_band(band), effective, school)
        return self._append(stream, ev.PlanIssued(
            ref, pupil, school, effective, kind, hours, band), expected=0)[0]

    def _change(self, ref: str, fact: ev.Fact) -> str:
        plan = self.plan(ref)
        if (earlier := self._earlier(plan.facts, fact)) is not None:
            return earlier
        plan.check_change(fact)
        return self._append(plan_stream(ref), fact, expected=len(plan.facts))[0]

    def change_hours(self, ref: str, hours: Decimal, effective: date, reason: str = "") -> str:
        return self._change(ref, ev.HoursChanged(ref, effective, check_hours(hours), reason))

    def transfer(self, ref: str, band: str, effective: date,
                 protect_until: date | None = None) -> str:
        plan = self.plan(ref)
        terms = self.terms()
        plan.check_change(ev.TransferredToBand(ref, effective, check_band(band), 0))
        state = plan.state_on(effective)
        assert state is not None
        terms.require_band(band, effective, state.school)
        if protect_until is not None and protect_until < effective:
            raise RuleError("protect-until", f"{protect_until} is before the transfer ({effective})")
        day_before = max(effective - timedelta(days=1), plan.start)
        year = financial_year_of(day_before)
        if terms.rate_on(year, day_before) is None:
            raise RuleError("from", f"no hourly rate for financial year {year}, so the prior "
                            "hours-based amount cannot be kept")
        assert state.hours is not None
        prior = round_half_up(terms.hours_amount(state.hours, year, terms.setting_of(state.school),
                                                 day_before))
        fact = ev.TransferredToBand(ref, effective, band, prior, protect_until)
        return self._append(plan_stream(ref), fact, expected=len(plan.facts))[0]

    def change_band(self, ref: str, band: str, effective: date, reason: str) -> str:
        if reason not in ev.BAND_CHANGE_REASONS:
            raise RuleError("reason", f"{reason!r} is not one of {', '.join(ev.BAND_CHANGE_REASONS)}")
        plan = self.plan(ref)
        fact = ev.BandChanged(ref, effective, check_band(band), reason)
        if (earlier := self._earlier(plan.facts, fact)) is not None:
            return earlier
        plan.check_change(fact)
        state = plan.state_on(effective)
        assert state is not None
        self.terms().require_band(band, effective, state.school)
        return self._append(plan_stream(ref), fact, expected=len(plan.facts))[0]

    def move(self, ref: str, school: str, effective: date) -> str:
        terms = self.terms()
        terms.setting_of(check_urn(school))
        plan = self.plan(ref)
        fact = ev.PlacementMoved(ref, effective, school)
        plan.check_change(fact)
        state = plan.state_on(effective)
        if state is not None and state.band is not None and state.basis == "band":
            # The band must be priced at the new school's setting too.
            terms.require_band(state.band, effective, school)
        return self._append(plan_stream(ref), fact, expected=len(plan.facts))[0]

    def cease(self, ref: str, effective: date, reason: str) -> str:
        plan = self.plan(ref)
        if plan.ceased_from is not None:
            raise RuleError("plan", f"plan {ref} already ceased from {plan.ceased_from}; "
                            "correct that event to change the date")
        fact = ev.PlanCeased(ref, effective, check_reason(reason))
        plan.check_change(fact)
        return self._append(plan_stream(ref), fact, expected=len(plan.facts))[0]

    def correct(self, ref: str, event: str, note: str, *, band: str | None = None,
                hours: Decimal | None = None, effective: date | None = None,
                school: str | None = None) -> str:
        plan = self.plan(ref)
        target = event if "/" in event else f"{ref}/{event}"
        if target not in plan.corrected:
            raise RuleError("event", f"{event} is not an event of plan {ref} that can be corrected")
        if hours is not None:
            check_hours(hours)
        terms = self.terms()
        if school is not None:
            terms.setting_of(check_urn(school))
        fact = ev.Corrected(ref, target, check_reason(note, "note"), band, hours, effective,
                            school)
        if (earlier := self._earlier(plan.facts, fact)) is not None:
            return earlier
        candidate = Plan([*plan.facts, RecordedFact("(this correction)", fact)])
        check_corrected_plan(candidate)
        # ... and every fact still applies to the plan as it then stands (band or hours)
        candidate.check_sequence("from" if effective else "band" if band else "hours")
        if band is not None:
            check_band(band)
            when = effective or candidate.corrected[target].effective
            state = candidate.state_on(when)
            if state is not None:
                terms.require_band(band, when, state.school)
        return self._append(plan_stream(ref), fact, expected=len(plan.facts))[0]


def check_text(fact: object, field: str = "") -> None:
    """Refuse a fact any of whose text fields holds a control character or a bidirectional
    control (``io.text_safety``), naming the field."""
    if isinstance(fact, str):
        why = refused_character(fact, field)
        if why is not None:
            raise RuleError(field or "text", why)
    elif isinstance(fact, tuple):
        for item in fact:
            check_text(item, field)
    elif dataclasses.is_dataclass(fact) and not isinstance(fact, type):
        for f in dataclasses.fields(fact):
            check_text(getattr(fact, f.name), f.name)


def check_corrected_plan(plan: Plan) -> None:
    """After a correction the plan must still read as a life: nothing before its issue."""
    for event_id, fact in plan.corrected.items():
        when: date = fact.effective
        if when < plan.start:
            raise RuleError("from", f"after this correction {event_id} ({when}) would be "
                            f"before the plan was issued ({plan.start})")
        ceased = plan.ceased_from
        if ceased is not None and when > ceased and not isinstance(fact, ev.PlanCeased):
            raise RuleError("from", f"after this correction {event_id} ({when}) would be "
                            f"after the plan ceased ({ceased})")


def facts_of(records: Iterable[RecordedFact]) -> list[ev.Fact]:
    return [r.fact for r in records]
