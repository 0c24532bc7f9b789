"""A money oracle: the money rules, worked out the slow and obvious way.

This is a reference model for differential tests against the product. It is written from
the policy (docs/rules.md), not from the product's code, and shares nothing with it but the
event dataclasses.
It favours being plainly right over being fast:

- every calendar day is looked at on its own: the plan's state that day (folded again from
  the plan's facts), the annual amount that day, the payment period the day falls in and
  what one day of that period is worth (``day_weight``);
- the day's exact contribution is annual × period share × day weight, summed as Fractions
  per (plan, period, school, component);
- whole pence come from rounding half up *cumulatively* within the year per plan, school and
  component: a period's due is round(cumulative to its end) − round(cumulative before it);
- a payment run pays, for every period up to and including its own, due minus already paid.

Policies for protection and the cushion (``Policy``); ``PRODUCT`` is the one the product
follows now (``"design"``).

- ``"product-today"``: what the product does now. Protection is max(0, prior − band) while
  the day is on or before ``protect_until``, with ``prior`` the integer pence stored on the
  TransferredToBand event; it survives band changes and moves. Base and protection are two
  components, each rounded cumulatively on its own. The cushion (the latest CushionSet of a
  school) is, per period, share% × max(0, Σ over the school's days under the cushion of its
  band-basis plans that have a prior, of (prior − base − protection) × period share × day
  weight), rounded cumulatively as the school's own "cushion" component.
- ``"design"``: the policy's protection and cushion, precisely. The prior is recomputed from
  the plan's hours as known now on the day before the transfer, priced at the hourly rate of
  the financial year of each protected day. Protection ends at the first of ``protect_until``,
  a band change, a move or ceasing. Base and protection are one amount for rounding: the
  total (base + protection) and the base are each rounded cumulatively and protection is the
  difference. The cushion of a school and financial year (the FY of the cushion's effective
  date; a later CushionSet for the same school and FY replaces it) is share% × max(0, net
  reduction at transfer), where the net reduction is Σ over the plans that moved from hours
  to a band at that school with effect in that FY of (prior − band), both priced at the
  transfer date (gains net losses); this annual amount is paid pro rata on the cushion's days,
  as its own "cushion" component, and later reviews, moves and tariffs do not change it. (The
  oracle counts every transfer of the FY as known now, including those after a given day of
  the cushion: "per school and financial year" read literally. The policy work may decide otherwise.)

Input (``LedgerState``): reference facts in recorded order (SchoolAdded, HourlyRateSet,
TariffSet, CalendarSet, CushionSet, ProtectionPolicySet; payment and seal facts are
ignored) and, per plan, its facts in recorded order as (event id, fact) pairs, corrections
included. What was paid is passed to ``run`` as a mapping (``paid_from`` builds it from
the product's SchoolPaid facts). Output: integer pence per ``DueKey``; a run's
``Line``s and per-school totals.

Protection as facts of its own (DESIGN §3): granted with the transfer or later
(ProtectionGranted), extended (ProtectionExtended: protection running at least to the day
before goes on to its new date), ended early (ProtectionEnded); the LA's protection policy
(ProtectionPolicySet, reference data) prices the prior at each protected day's rate
("recomputed", the default) or at the terms of the day before the transfer ("frozen").

School days (DESIGN §3): a calendar that holds its terms and closures pays each period by
school days on roll (``day_weight``: a school day weighs 1 / the period's school days, any
other day nothing); ``LedgerState.school_dates`` can still say a period's school days for a
calendar that does not hold them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Literal, NamedTuple

from topup_ledger.domain import events as ev

Policy = Literal["product-today", "design"]
PRODUCT_TODAY: Policy = "product-today"  # the product before the policy work (kept to compare)
DESIGN: Policy = "design"
PRODUCT: Policy = DESIGN  # the product's rules now

BASE, PROTECTION, CUSHION = "base", "protection", "cushion"
TOTAL = "total"  # design mode only, internally: base + protection, rounded as one amount
SCHOOL_LEVEL = ""  # the "plan" of a due that belongs to a school, not a plan (a cushion)

ONE_DAY = timedelta(days=1)


class OracleError(ValueError):
    """The oracle cannot price what it was given (missing terms, a fact that cannot apply)."""


class DueKey(NamedTuple):
    """What a due or a payment is for: whose plan, which period, which school, which part."""

    plan: str  # SCHOOL_LEVEL ("") for a cushion
    period: str  # a period id such as "2025-26/autumn"
    school: str
    component: str  # base | protection | cushion


# Money.


def round_half_up(exact: Fraction) -> int:
    """Whole pence, a half going away from zero: 0.5p → 1p, 2.5p → 3p (not Python's round(),
    which would give 2p), −2.5p → −3p."""
    magnitude = (abs(exact) * 2 + 1) // 2  # floor(|x| + ½)
    return int(magnitude) if exact >= 0 else -int(magnitude)


# Years.


def year_label(start: int) -> str:
    """2025 → "2025-26"."""
    return f"{start}-{(start + 1) % 100:02d}"


def financial_year(day: date) -> str:
    """1 Apr – 31 Mar: the year whose band values, hourly rate and threshold apply."""
    return year_label(day.year if day.month >= 4 else day.year - 1)


def academic_year(day: date) -> str:
    """1 Sep – 31 Aug: the year of the default termly calendar."""
    return year_label(day.year if day.month >= 9 else day.year - 1)


def days_from(first: date, last: date) -> Iterator[date]:
    """Every day from ``first`` to ``last``, both included."""
    day = first
    while day <= last:
        yield day
        day += ONE_DAY


# Payment periods.


@dataclass(frozen=True)
class Period:
    """A payment period: its share of the year's amount, and the year it rounds within."""

    id: str
    year: str  # the group for cumulative rounding: the calendar's year label
    start: date
    end: date  # inclusive
    share: Fraction
    school_dates: frozenset[date] | None = None  # None: pro rata by calendar days

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def holds(self, day: date) -> bool:
        return self.start <= day <= self.end


def day_weight(period: Period, day: date) -> Fraction:
    """The part of the period's share that one funded day earns.

    Calendar days (the default terms, and a calendar that holds no school days): each day
    of the period weighs 1 / days in the period.

    School days (the policy's monthly calendars "pro rata by school days on roll"): when the
    period's school days are known, each school day weighs 1 / school days in the period and
    any other day nothing, so a plan starting on the 15th is paid the school days from the
    15th; a period with none (August) pays nothing (its share is 0). Known from a calendar
    that holds its terms, or through ``LedgerState.school_dates``.
    """
    if period.school_dates is None:
        return Fraction(1, period.days)
    if day not in period.school_dates:
        return Fraction(0)
    return Fraction(1, len(period.school_dates))


def termly_periods(year: str) -> list[Period]:
    """The default terms: autumn 1 Sep–31 Dec (4/12), spring 1 Jan–31 Mar (3/12), summer
    1 Apr–31 Aug (5/12) of academic year ``year``."""
    start = int(year[:4])
    return [
        Period(f"{year}/autumn", year, date(start, 9, 1), date(start, 12, 31), Fraction(4, 12)),
        Period(f"{year}/spring", year, date(start + 1, 1, 1), date(start + 1, 3, 31), Fraction(3, 12)),
        Period(f"{year}/summer", year, date(start + 1, 4, 1), date(start + 1, 8, 31), Fraction(5, 12)),
    ]


# Reference data, folded in recorded order: a later fact for the same year replaces.


@dataclass
class Reference:
    settings: dict[str, str] = field(default_factory=dict)  # school → setting
    rates: dict[str, list[ev.HourlyRateSet]] = field(default_factory=dict)  # FY → its facts
    tariffs: dict[tuple[str, str | None], list[ev.TariffSet]] = field(default_factory=dict)
    calendars: dict[str, ev.CalendarSet] = field(default_factory=dict)  # year label → calendar
    cushions: list[ev.CushionSet] = field(default_factory=list)  # in recorded order
    # The LA's protection policy (DESIGN §3): the prior "recomputed" at each protected day's
    # rate, or "frozen" at the terms of the day before the transfer. The latest one holds.
    protection_prior: str = "recomputed"


def fold_reference(facts: Sequence[ev.Fact]) -> Reference:
    ref = Reference()
    for fact in facts:
        if isinstance(fact, ev.SchoolAdded):
            ref.settings[fact.urn] = fact.setting
        elif isinstance(fact, ev.HourlyRateSet):
            ref.rates.setdefault(fact.year, []).append(fact)
        elif isinstance(fact, ev.TariffSet):
            ref.tariffs.setdefault((fact.year, fact.setting), []).append(fact)
        elif isinstance(fact, ev.CalendarSet):
            ref.calendars[fact.year] = fact  # a later calendar for the year replaces it
        elif isinstance(fact, ev.CushionSet):
            ref.cushions.append(fact)
        elif isinstance(fact, ev.ProtectionPolicySet):
            ref.protection_prior = fact.prior
        elif isinstance(fact, ev.SchoolPaid | ev.PaymentRunRecorded | ev.FilesWritten | ev.Sealed):
            continue  # what was paid is given to ``run`` separately (``paid_from``); seals move no money
        else:
            raise OracleError(f"{fact.TYPE} is not reference data")
    return ref


def setting_of(ref: Reference, school: str) -> str:
    if school not in ref.settings:
        raise OracleError(f"school {school} is not in the ledger")
    return ref.settings[school]


def hours_annual(ref: Reference, hours: Decimal, school: str, day: date) -> Fraction:
    """Hours a week × hourly rate × weeks, less the notional threshold at a mainstream school
    only (others get place funding instead), never below zero; the terms of the FY of ``day``."""
    year = financial_year(day)
    # The latest fact for the year that applies on the day: a revision applies to the whole
    # year, or from its effective day on; the days before keep what they had.
    in_force = [f for f in ref.rates.get(year, []) if f.effective is None or f.effective <= day]
    if not in_force:
        raise OracleError(f"no hourly rate for financial year {year}")
    terms = in_force[-1]
    gross = Fraction(hours) * terms.hourly_rate * Fraction(terms.weeks)
    threshold = terms.threshold if setting_of(ref, school) == "mainstream" else 0
    return max(Fraction(0), gross - threshold)


def band_annual(ref: Reference, band: str, school: str, day: date) -> Fraction:
    """The band's value for the FY of ``day``: the school's setting's own tariff first, then
    the tariff for all settings."""
    year = financial_year(day)
    for setting in (setting_of(ref, school), None):
        value = None
        for fact in ref.tariffs.get((year, setting), []):  # each revision names some bands
            if (fact.effective is None or fact.effective <= day) and band in dict(fact.bands):
                value = dict(fact.bands)[band]
        if value is not None:
            return Fraction(value)
    raise OracleError(f"no tariff for band {band} in financial year {year}")


# A plan's facts and its state on a day.

PlanEvents = Sequence[tuple[str, ev.Fact]]  # (event id, fact) in recorded order


def numbered(plan: str, *facts: ev.Fact) -> list[tuple[str, ev.Fact]]:
    """Facts of a plan in recorded order, with ids as the ledger gives them: P1/1, P1/2, …"""
    return [(f"{plan}/{n}", fact) for n, fact in enumerate(facts, start=1)]


def correct(target: ev.Fact, correction: ev.Corrected) -> ev.Fact:
    """The fact as it should have said: the fields the correction gives replace the target's.
    A corrected band or hours on the issue replaces the basis too ("it was C, not 20 hours")."""
    changes: dict[str, object] = {}
    for name in ("band", "hours", "effective", "school"):
        value = getattr(correction, name)
        if value is None:
            continue
        if not hasattr(target, name):
            raise OracleError(f"a {target.TYPE} has no {name} to correct")
        changes[name] = value
    if isinstance(target, ev.PlanIssued) and ("band" in changes or "hours" in changes):
        changes.setdefault("band", None)
        changes.setdefault("hours", None)
    return dataclasses.replace(target, **changes)  # type: ignore[type-var]


def effect_order(events: PlanEvents) -> list[ev.Fact]:
    """The plan's facts after corrections, in effective-date order, recorded order breaking
    ties (a correction applies to the fact it names; corrections apply in recorded order)."""
    return [fact for _, fact in effect_order_with_ids(events)]


def effect_order_with_ids(events: PlanEvents) -> list[tuple[str, ev.Fact]]:
    """``effect_order``, each fact with the id of the event it is (as corrected)."""
    current: dict[str, ev.Fact] = {}
    recorded: list[str] = []
    for event_id, fact in events:
        if isinstance(fact, ev.Corrected):
            if fact.corrects not in current:
                raise OracleError(f"{event_id} corrects {fact.corrects}, not an earlier event of the plan")
            current[fact.corrects] = correct(current[fact.corrects], fact)
        else:
            current[event_id] = fact
            recorded.append(event_id)
    indexed = [(current[event_id], n, event_id) for n, event_id in enumerate(recorded)]
    indexed.sort(key=lambda triple: (triple[0].effective, triple[1]))  # type: ignore[attr-defined]
    return [(event_id, fact) for fact, _, event_id in indexed]


@dataclass(frozen=True)
class Transfer:
    """What the move from hours to a band left on the plan."""

    effective: date
    band: str
    school: str  # where the plan was when it moved
    prior_annual: int  # as recorded on the event (product-today's prior)
    protect_until: date | None
    hours_before: Decimal | None  # the hours as known now on the day before (design's prior)
    # The day whose terms price a frozen prior: the day before the transfer, or the
    # transfer's own day if the plan was not funded the day before.
    frozen_on: date | None = None


@dataclass(frozen=True)
class DayState:
    """What is true of a funded plan on one day."""

    school: str
    basis: str  # "hours" | "band"
    hours: Decimal | None
    band: str | None
    transfer: Transfer | None = None
    reviewed_or_moved: bool = False  # a band change or move since the transfer (product-today)
    # DESIGN: the last day of the protection in force (None: not protected). Started by the
    # transfer's protect-until or a grant; an extension of protection running to the day
    # before moves it on; a band change, a move or an early end ends it.
    protected_until: date | None = None


def state_on(ordered: Sequence[ev.Fact], day: date) -> DayState | None:
    """The plan's state on ``day``: every fact effective on or before it, folded in order.
    None: not funded (not yet issued, or ceased with effect on or before ``day``)."""
    state: DayState | None = None
    for fact in ordered:
        effective: date = fact.effective  # type: ignore[attr-defined]
        if effective > day:
            break
        if isinstance(fact, ev.PlanCeased):
            return None  # funded up to the day before; nothing after a plan ceases
        if isinstance(fact, ev.PlanIssued):
            state = DayState(fact.school, "band" if fact.band is not None else "hours", fact.hours, fact.band)
            continue
        if state is None:
            raise OracleError(f"{fact.TYPE} from {effective} applies before the plan was issued")
        if isinstance(fact, ev.HoursChanged):
            if state.basis != "hours":
                raise OracleError(f"hours changed from {effective} while on band {state.band}")
            state = dataclasses.replace(state, hours=fact.hours)
        elif isinstance(fact, ev.TransferredToBand):
            if state.basis != "hours":
                raise OracleError(f"transferred to a band from {effective} while on band {state.band}")
            # The designed prior uses the hours as known now for the day before the transfer.
            before = state_on(ordered, effective - ONE_DAY)
            hours_before = before.hours if before is not None and before.basis == "hours" else state.hours
            transfer = Transfer(effective, fact.band, state.school, fact.prior_annual, fact.protect_until,
                                hours_before, effective - ONE_DAY if before is not None else effective)
            state = dataclasses.replace(state, basis="band", band=fact.band, transfer=transfer,
                                        reviewed_or_moved=False, protected_until=fact.protect_until)
        elif isinstance(fact, ev.BandChanged):
            if state.basis != "band":
                raise OracleError(f"band changed from {effective} while on hours")
            state = dataclasses.replace(state, band=fact.band, reviewed_or_moved=True,
                                        protected_until=None)
        elif isinstance(fact, ev.PlacementMoved):
            state = dataclasses.replace(state, school=fact.school, reviewed_or_moved=True,
                                        protected_until=None)
        elif isinstance(fact, ev.ProtectionGranted):
            if state.basis != "band" or state.transfer is None:
                raise OracleError(f"protection granted from {effective} to a plan not moved from hours")
            state = dataclasses.replace(state, protected_until=fact.until)
        elif isinstance(fact, ev.ProtectionExtended):
            # only protection that runs at least to the day before goes on
            if state.protected_until is not None and state.protected_until >= effective - ONE_DAY:
                state = dataclasses.replace(state, protected_until=max(state.protected_until, fact.until))
        elif isinstance(fact, ev.ProtectionEnded):
            if state.protected_until is not None and state.protected_until >= effective:
                state = dataclasses.replace(state, protected_until=None)
        else:
            raise OracleError(f"{fact.TYPE} is not a plan fact")
    return state


# The annual amount on a day.


def base_annual(ref: Reference, state: DayState, day: date) -> Fraction:
    if state.basis == "hours":
        assert state.hours is not None
        return hours_annual(ref, state.hours, state.school, day)
    assert state.band is not None
    return band_annual(ref, state.band, state.school, day)


def protection_annual(ref: Reference, state: DayState, day: date, base: Fraction, policy: Policy) -> Fraction:
    """What protection adds to the band amount on ``day``: prior − band when that is more."""
    transfer = state.transfer
    if state.basis != "band" or transfer is None:
        return Fraction(0)
    if policy == DESIGN:
        if state.protected_until is None or day > state.protected_until:
            return Fraction(0)  # never granted, past its date, or ended (a review, a move, early)
        assert transfer.hours_before is not None and transfer.frozen_on is not None
        # this day's FY rate, or the day before the transfer's where the LA freezes the prior
        priced_on = transfer.frozen_on if ref.protection_prior == "frozen" else day
        prior = hours_annual(ref, transfer.hours_before, state.school, priced_on)
    else:
        if transfer.protect_until is None or day > transfer.protect_until:
            return Fraction(0)
        prior = Fraction(transfer.prior_annual)
    return max(Fraction(0), prior - base)


def annual_on(ref: Reference, state: DayState, day: date, policy: Policy) -> tuple[Fraction, Fraction]:
    """(base, protection) a year, as at ``day``."""
    base = base_annual(ref, state, day)
    return base, protection_annual(ref, state, day, base, policy)


# What is known: the input.


@dataclass(frozen=True)
class LedgerState:
    """Everything the oracle reads, as known at one moment.

    ``reference``: SchoolAdded, HourlyRateSet, TariffSet, CalendarSet, CushionSet,
    ProtectionPolicySet in recorded order. ``plans``: plan ref → its facts in recorded order
    as (event id, fact), the first its PlanIssued, corrections included (``numbered`` gives
    ids as the ledger does).
    ``school_dates``: period id → the school days of that period, for the school-day mode of
    ``day_weight`` (empty: every period is pro rata by calendar days, as the product does).
    """

    reference: Sequence[ev.Fact]
    plans: Mapping[str, PlanEvents]
    school_dates: Mapping[str, frozenset[date]] = field(default_factory=dict)
    # For a plan's event id, how many of ``reference`` were recorded before it: a cushion
    # prices a transfer with the rates and tariffs known then. Not given: known now.
    reference_before: Mapping[str, int] = field(default_factory=dict)


def issue_date(events: PlanEvents) -> date:
    """The plan's first effective date as corrected."""
    return effect_order(events)[0].effective  # type: ignore[attr-defined]


def calendar(ledger: LedgerState, first: date, last: date) -> list[Period]:
    """The payment periods: every recorded calendar, plus the default terms of each academic
    year from ``first``'s to ``last``'s that overlaps no recorded period; in date order."""
    ref = fold_reference(ledger.reference)
    periods = [
        Period(spec.id, recorded.year, spec.start, spec.end, Fraction(spec.share),
               the_school_days(recorded, spec) if recorded.terms else ledger.school_dates.get(spec.id))
        for recorded in ref.calendars.values() for spec in recorded.periods
    ]
    recorded_periods = list(periods)
    for start in range(int(academic_year(first)[:4]), int(academic_year(last)[:4]) + 1):
        year = year_label(start)
        if year in ref.calendars:
            continue
        terms = termly_periods(year)
        overlaps = any(t.start <= r.end and r.start <= t.end for t in terms for r in recorded_periods)
        if not overlaps:
            periods.extend(dataclasses.replace(t, school_dates=ledger.school_dates.get(t.id)) for t in terms)
    return sorted(periods, key=lambda p: p.start)


def the_school_days(recorded: ev.CalendarSet, spec: ev.PeriodSpec) -> frozenset[date]:
    """A period's school days as its calendar holds them (DESIGN §3): the weekdays, Monday to
    Friday, of its terms that fall in the period, less the closures."""
    return frozenset(day for term in recorded.terms for day in days_from(term.start, term.end)
                     if spec.start <= day <= spec.end and day.isoweekday() <= 5
                     and day not in recorded.closures)


def periods_through(ledger: LedgerState, period_id: str, paid_from_year: date | None = None
                    ) -> list[Period]:
    """The periods from the start of the calendar up to and including ``period_id``: the
    calendar starts with the academic year of the earliest plan's first day, or of
    ``paid_from_year`` (the first day of the earliest academic year anything was paid for:
    what was paid is compared with due even where no plan now starts so early)."""
    if not (period_id[:4].isdigit() and period_id[4:5] == "-" and "/" in period_id):
        raise OracleError(f"{period_id!r} is not a period id like 2025-26/autumn")
    start_year = int(period_id[:4])
    reaches = date(start_year + 2, 8, 31)  # beyond any period labelled with that year
    starts = [issue_date(events) for events in ledger.plans.values()]
    first = min([*starts, date(start_year, 9, 1), *([paid_from_year] if paid_from_year else [])])
    periods = calendar(ledger, first, reaches)
    ids = [p.id for p in periods]
    if period_id not in ids:
        raise OracleError(f"{period_id} is not a period in the payment calendar")
    return periods[: ids.index(period_id) + 1]


# Exact dues.


def add(sums: dict[DueKey, Fraction], key: DueKey, amount: Fraction) -> None:
    sums[key] = sums.get(key, Fraction(0)) + amount


def plan_exact(ref: Reference, plan: str, events: PlanEvents, periods: Sequence[Period],
               policy: Policy) -> dict[DueKey, Fraction]:
    """The plan's exact due per period, school and component, summed day by day."""
    ordered = effect_order(events)
    sums: dict[DueKey, Fraction] = {}
    for period in periods:
        for day in days_from(period.start, period.end):
            state = state_on(ordered, day)
            if state is None:
                continue
            base, protection = annual_on(ref, state, day, policy)
            worth = period.share * day_weight(period, day)  # what this day earns of a year
            add(sums, DueKey(plan, period.id, state.school, BASE), base * worth)
            add(sums, DueKey(plan, period.id, state.school, PROTECTION), protection * worth)
    # Days the plan is funded that no period pays cannot be priced: say so, as the product does.
    last = periods[-1].end if periods else date.min
    for day in days_from(ordered[0].effective, last):  # type: ignore[attr-defined]
        if not any(p.holds(day) for p in periods) and state_on(ordered, day) is not None:
            raise OracleError(f"no payment period in the calendar covers {day} (plan {plan})")
    return sums


def cushion_exact_product_today(ledger: LedgerState, ref: Reference, periods: Sequence[Period],
                                protection: Policy = PRODUCT_TODAY) -> dict[DueKey, Fraction]:
    """Per period, share% × max(0, the school's net reduction on its days under the cushion)."""
    latest: dict[str, ev.CushionSet] = {}
    for cushion in ref.cushions:
        latest[cushion.school] = cushion  # a later cushion for a school replaces the earlier
    ordered = {plan: effect_order(events) for plan, events in sorted(ledger.plans.items())}
    sums: dict[DueKey, Fraction] = {}
    for school, cushion in sorted(latest.items()):
        for period in periods:
            reduction = Fraction(0)
            for day in days_from(max(period.start, cushion.effective), min(period.end, cushion.until)):
                for facts in ordered.values():
                    state = state_on(facts, day)
                    if state is None or state.school != school or state.basis != "band":
                        continue
                    if state.transfer is None:
                        continue  # issued on a band: it lost nothing in the move
                    base, protected = annual_on(ref, state, day, protection)
                    reduction += (state.transfer.prior_annual - base - protected) * period.share \
                        * day_weight(period, day)
            amount = Fraction(cushion.share_percent) / 100 * max(Fraction(0), reduction)
            add(sums, DueKey(SCHOOL_LEVEL, period.id, school, CUSHION), amount)
    return sums


def net_reduction_at_transfer(ledger: LedgerState, ref: Reference, school: str, year: str) -> Fraction:
    """DESIGN: Σ over the school's plans moved to a band with effect in FY ``year`` of
    (prior − band), both priced at the transfer date; gains net losses."""
    total = Fraction(0)
    for events in ledger.plans.values():
        ordered = effect_order(events)
        for transfer_id, fact in effect_order_with_ids(events):
            if not isinstance(fact, ev.TransferredToBand) or financial_year(fact.effective) != year:
                continue
            state = state_on(ordered, fact.effective)
            if state is None or state.transfer is None or state.transfer.effective != fact.effective:
                continue  # ceased on the day it would have moved: nothing moved
            transfer = state.transfer
            if transfer.school != school:
                continue
            assert transfer.hours_before is not None
            # Later revisions of rates and tariffs do not change a cushion: price the transfer
            # with those known when it was recorded.
            # (a plan may hold two transfers: one left after a ceasing recorded later, which
            # never applies, and one recorded after it)
            known = ledger.reference_before.get(transfer_id)
            then = ref if known is None else fold_reference(ledger.reference[:known])
            prior = hours_annual(then, transfer.hours_before, school, transfer.effective)
            total += prior - band_annual(then, transfer.band, school, transfer.effective)
    return total


def cushion_exact_design(ledger: LedgerState, ref: Reference,
                         periods: Sequence[Period]) -> dict[DueKey, Fraction]:
    """Per school and FY of the transfers it is for (the cushion's ``year``, else the FY it
    starts in): share% × max(0, net reduction at transfer) a year, on the cushion's days."""
    latest: dict[tuple[str, str], ev.CushionSet] = {}
    for cushion in ref.cushions:
        latest[cushion.school, cushion.year or financial_year(cushion.effective)] = cushion
    sums: dict[DueKey, Fraction] = {}
    for (school, year), cushion in sorted(latest.items()):
        net = net_reduction_at_transfer(ledger, ref, school, year)
        annual = Fraction(cushion.share_percent) / 100 * max(Fraction(0), net)
        for period in periods:
            for day in days_from(max(period.start, cushion.effective), min(period.end, cushion.until)):
                add(sums, DueKey(SCHOOL_LEVEL, period.id, school, CUSHION),
                    annual * period.share * day_weight(period, day))
    return sums


def exact_dues(ledger: LedgerState, period_id: str, policy: Policy = PRODUCT) -> dict[DueKey, Fraction]:
    """Unrounded dues of every plan and cushion for every period up to and including
    ``period_id`` (components base, protection, cushion; entries may be zero)."""
    ref = fold_reference(ledger.reference)
    periods = periods_through(ledger, period_id)
    sums: dict[DueKey, Fraction] = {}
    for plan, events in sorted(ledger.plans.items()):
        sums.update(plan_exact(ref, plan, events, periods, policy))
    if policy == DESIGN:
        sums.update(cushion_exact_design(ledger, ref, periods))
    else:
        sums.update(cushion_exact_product_today(ledger, ref, periods, policy))
    return sums


# Rounding.


def round_cumulatively(exact: Mapping[DueKey, Fraction], periods: Sequence[Period]) -> dict[DueKey, int]:
    """Whole pence per period: for each plan, school and component, within each year, a
    period's due is the rounded total so far less the rounded total before it. Zero dues
    are left out."""
    streams = sorted({(k.plan, k.school, k.component) for k in exact})
    due: dict[DueKey, int] = {}
    for plan, school, component in streams:
        for year in dict.fromkeys(p.year for p in periods):  # each year in calendar order
            cumulative = Fraction(0)
            rounded_before = 0
            for period in (p for p in periods if p.year == year):
                key = DueKey(plan, period.id, school, component)
                cumulative += exact.get(key, Fraction(0))
                rounded_now = round_half_up(cumulative)
                if rounded_now != rounded_before:
                    due[key] = rounded_now - rounded_before
                rounded_before = rounded_now
    return due


def dues(ledger: LedgerState, period_id: str, policy: Policy = PRODUCT) -> dict[DueKey, int]:
    """Due in whole pence per (plan, period, school, component) for every period up to and
    including ``period_id``, as known in ``ledger``. Zero dues are left out."""
    periods = periods_through(ledger, period_id)
    exact = exact_dues(ledger, period_id, policy)
    if policy == PRODUCT_TODAY:
        return round_cumulatively(exact, periods)
    # DESIGN: base and protection are one amount for rounding. Round the total and the base
    # cumulatively; protection is what the rounded total adds to the rounded base.
    with_total = dict(exact)
    for key, amount in exact.items():
        if key.component == PROTECTION:
            base = exact.get(key._replace(component=BASE), Fraction(0))
            with_total[key._replace(component=TOTAL)] = base + amount
            del with_total[key]
    rounded = round_cumulatively(with_total, periods)
    result = {k: v for k, v in rounded.items() if k.component != TOTAL}
    # In every period where the rounded total or the rounded base moved: after protection
    # ends, the base's rounding may move while the total's does not, and protection is then
    # -1p (docs/rules.md §6), so that the year adds up to its exact total.
    for key in {k._replace(component=BASE) for k in rounded if k.component in (BASE, TOTAL)}:
        if key._replace(component=TOTAL) not in with_total:
            continue
        protection = rounded.get(key._replace(component=TOTAL), 0) - rounded.get(key, 0)
        if protection:
            result[key._replace(component=PROTECTION)] = protection
    return result


# Payment runs.


@dataclass(frozen=True)
class Line:
    plan: str  # SCHOOL_LEVEL ("") for a cushion
    school: str
    period: str  # the period the line pays for
    component: str  # base | protection | cushion
    kind: str  # regular | protection | cushion (the run's own period) | arrears | clawback
    amount: int  # pence; negative for a claw-back


@dataclass(frozen=True)
class RunResult:
    period: str
    lines: tuple[Line, ...]
    school_totals: dict[str, int]  # school → the sum of its lines (may be negative)
    paid: dict[DueKey, int]  # paid so far after this run: pass it to the next run

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


def paid_from(payments: Iterable[ev.SchoolPaid]) -> dict[DueKey, int]:
    """What the product's recorded payments paid, keyed as the oracle keys dues: for a
    differential test's ``paid_so_far`` (a cushion line's plan is "" there too)."""
    paid: dict[DueKey, int] = {}
    for payment in payments:
        for line in payment.lines:
            key = DueKey(line.plan, line.for_period, payment.school, line.component)
            paid[key] = paid.get(key, 0) + line.amount
    return paid


OWN_PERIOD_KIND = {BASE: "regular", PROTECTION: "protection", CUSHION: "cushion"}


def run(ledger: LedgerState, period_id: str, paid_so_far: Mapping[DueKey, int],
        policy: Policy = PRODUCT) -> RunResult:
    """A payment run for ``period_id`` as known in ``ledger``: for every plan (and cushion),
    every period up to and including the run's, and every school and component, due now
    minus already paid becomes a line. Paid for later periods is left alone."""
    paid_years = [int(key.period[:4]) for key in paid_so_far]
    periods = periods_through(ledger, period_id,
                              date(min(paid_years), 9, 1) if paid_years else None)
    order = {p.id: n for n, p in enumerate(periods)}
    due = dues(ledger, period_id, policy)
    keys = {k for k in due} | {k for k in paid_so_far if k.period in order}
    lines = []
    for key in sorted(keys, key=lambda k: (k.school, k.plan, order[k.period], k.component)):
        amount = due.get(key, 0) - paid_so_far.get(key, 0)
        if amount == 0:
            continue
        if key.period == period_id:
            kind = OWN_PERIOD_KIND[key.component]
        else:
            kind = "arrears" if amount > 0 else "clawback"
        lines.append(Line(key.plan, key.school, key.period, key.component, kind, amount))
    totals: dict[str, int] = {}
    paid = dict(paid_so_far)
    for line in lines:
        totals[line.school] = totals.get(line.school, 0) + line.amount
        key = DueKey(line.plan, line.period, line.school, line.component)
        paid[key] = paid.get(key, 0) + line.amount
    return RunResult(period_id, tuple(lines), totals, paid)
