"""Every fact that moves money, as plain immutable data (docs/rules.md).

Each class has a stable ``TYPE`` (the name it is stored under, never its Python path) and a
``VERSION`` (its schema in ``schemas/events/<TYPE>.v<VERSION>.json``). The recorded time
and the position in the ledger are not part of a fact: the ledger's clock and order add
them when the fact is appended.

Money fields are integer pence; hours and weeks are Decimal; effective dates are dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import ClassVar, Literal, get_args

SETTINGS = ("mainstream", "resourced", "special", "independent", "post16")
# What prices a plan's day: hours a week at the hourly rate, or a band's value.
Basis = Literal["hours", "band"]
# What a payment line is: the run's own period ("regular", and "protection" or "cushion" for
# those components), or an earlier period's difference ("arrears" up, "clawback" down).
LineKind = Literal["regular", "arrears", "clawback", "protection", "cushion"]
LINE_KINDS: tuple[LineKind, ...] = get_args(LineKind)
# What a line pays towards: the basis's amount, protection above it, or a school's cushion.
Component = Literal["base", "protection", "cushion"]
PLAN_KINDS = ("ehcp", "non-statutory")
BAND_CHANGE_REASONS = ("annual-review", "interim-review", "tribunal", "other")


@dataclass(frozen=True)
class Fact:
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


# Reference data: schools, calendars, rates and tariffs.


@dataclass(frozen=True)
class SchoolAdded(Fact):
    TYPE = "school.added"
    urn: str
    name: str
    setting: str
    la_code: str | None = None


@dataclass(frozen=True)
class PeriodSpec:
    """One period of a recorded calendar; ``share`` is a fraction such as '4/12'."""

    id: str
    start: date
    end: date
    share: str
    school_days: int | None = None


@dataclass(frozen=True)
class TermDates:
    """A term of the calendar's school days: its weekdays from ``start`` to ``end``."""

    start: date
    end: date


@dataclass(frozen=True)
class CalendarSet(Fact):
    """A payment calendar. Version 2 may hold the school days (``terms``, less the weekdays
    in ``closures``): its periods are then paid by school days on roll (docs/rules.md §2)."""

    TYPE = "calendar.set"
    VERSION = 2
    year: str
    periods: tuple[PeriodSpec, ...]
    reason: str = ""
    terms: tuple[TermDates, ...] = ()
    closures: tuple[date, ...] = ()


@dataclass(frozen=True)
class HourlyRateSet(Fact):
    """The hours-basis terms of a financial year: rate per hour, weeks, notional threshold.

    A later HourlyRateSet for the same year is a revision: for the whole year, or from
    ``effective`` (a day inside the year: an in-year uplift) onwards, the days before it
    keeping the value they had.
    """

    TYPE = "rate.set"
    VERSION = 2
    year: str
    hourly_rate: int
    weeks: Decimal
    threshold: int
    reason: str = ""
    effective: date | None = None


@dataclass(frozen=True)
class TariffSet(Fact):
    """Band values of a financial year, for every setting or for one setting type.

    A later TariffSet for the same year and setting is a revision: it replaces the bands it
    names for the whole financial year, or from ``effective`` (a day inside the year)
    onwards, and payments already made are put right by arrears or claw-back.
    """

    TYPE = "tariff.set"
    VERSION = 2
    year: str
    bands: tuple[tuple[str, int], ...]
    setting: str | None = None
    reason: str = ""
    effective: date | None = None


# A plan's life.


@dataclass(frozen=True)
class PlanIssued(Fact):
    TYPE = "plan.issued"
    VERSION = 2  # version 1 had no ``kind``: every plan was an EHCP
    plan: str
    pupil: str
    school: str
    effective: date
    kind: str = "ehcp"
    hours: Decimal | None = None
    band: str | None = None


@dataclass(frozen=True)
class HoursChanged(Fact):
    TYPE = "plan.hours_changed"
    plan: str
    effective: date
    hours: Decimal
    reason: str = ""


@dataclass(frozen=True)
class TransferredToBand(Fact):
    """The move from hours to a band; ``prior_annual`` is the hours-based amount as at the
    day before, kept so that protection and the cost-neutrality reconciliation can use it."""

    TYPE = "plan.transferred_to_band"
    plan: str
    effective: date
    band: str
    prior_annual: int
    protect_until: date | None = None


@dataclass(frozen=True)
class BandChanged(Fact):
    TYPE = "plan.band_changed"
    plan: str
    effective: date
    band: str
    reason: str


@dataclass(frozen=True)
class PlacementMoved(Fact):
    TYPE = "plan.moved"
    plan: str
    effective: date
    school: str


@dataclass(frozen=True)
class PlanCeased(Fact):
    """The plan ceases with effect from ``effective``: funded up to the day before."""

    TYPE = "plan.ceased"
    plan: str
    effective: date
    reason: str


@dataclass(frozen=True)
class Corrected(Fact):
    """An earlier event of the plan was wrong: this says what it should have said.

    A correction names the event it corrects (``corrects``, an event id such as ``P1/2``)
    and replaces only the fields it gives; the corrected event is not altered.
    """

    TYPE = "plan.corrected"
    plan: str
    corrects: str
    note: str
    band: str | None = None
    hours: Decimal | None = None
    effective: date | None = None
    school: str | None = None


# Payments and seals.


# Slotted: lines are many and small, and one without its own attribute dictionary is a
# third of the size.
@dataclass(frozen=True, slots=True)
class PaymentLine:
    """One line of a school's payment: what is paid for which plan, period and why."""

    plan: str
    pupil: str
    kind: LineKind
    for_period: str
    amount: int
    basis: str
    band_or_hours: str
    days: int
    reason: str
    caused_by: tuple[str, ...] = ()
    component: Component = "base"


@dataclass(frozen=True)
class SchoolPaid(Fact):
    """One school's payment in one run, holding its lines: immutable once recorded."""

    TYPE = "payment.school_paid"
    run_id: str
    period: str
    school: str
    lines: tuple[PaymentLine, ...]


def sealed_position(seal: str) -> int:
    """The position of a ``HEX@POSITION`` seal: how far the ledger it witnesses reaches."""
    return int(seal.rpartition("@")[2])


@dataclass(frozen=True)
class PaymentRunRecorded(Fact):
    """A payment run for a period; ``sequence`` 1 is the main run, later ones supplementary."""

    TYPE = "payment.run_recorded"
    run_id: str
    period: str
    sequence: int
    schools: int
    total: int
    seal: str

    @property
    def worked_out_at(self) -> int:
        """The ledger position the run was worked out from: its seal's (``HEX@POSITION``).

        Facts recorded after it were not known to the run, even those a concurrent writer
        landed before the run's own record; "settled since the last run" counts from here.
        """
        return sealed_position(self.seal)


@dataclass(frozen=True)
class WrittenFile:
    """One file a payment run wrote: its name in the folder, its size and its SHA-256."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class FilesWritten(Fact):
    """A run's payment files as written, so that a file edited afterwards can be detected."""

    TYPE = "payment.files_written"
    run_id: str
    directory: str
    files: tuple[WrittenFile, ...]


@dataclass(frozen=True)
class CushionSet(Fact):
    """A per-school transitional cushion: a share of the school's net reduction from the
    move to bands of its plans transferred in financial year ``year`` (that of
    ``effective`` if not given), paid as its own line between two dates."""

    TYPE = "school.cushion_set"
    VERSION = 2
    school: str
    effective: date
    until: date
    share_percent: Decimal
    reason: str = ""
    year: str | None = None


@dataclass(frozen=True)
class Sealed(Fact):
    """The chain head at a position in the ledger, recorded so that copies can witness it."""

    TYPE = "ledger.sealed"
    head: str
    position: int
    reason: str = ""


# Key rotation (issue 21): the ledger's key changes from a recorded event onward.


@dataclass(frozen=True)
class KeyRotated(Fact):
    """A new ledger key authenticates every event after this one; this one is authenticated
    by the key it replaces. Only the keys' ids are recorded, never a key."""

    TYPE = "ledger.key_rotated"
    key_id: str
    previous_key_id: str
    reason: str = ""


# Paying through the council's finance system (issue 22): who a school is paid through, the
# LA's finance coding, and what a run records of both so that its finance files can be
# written again, byte for byte, from the run alone.

# How a school is paid (DESIGN §2): a journal to a maintained school's cost centre, an
# accounts-payable payment to a supplier (an academy's trust, an independent or
# non-maintained special school, a post-16 provider), or recoupment from another LA.
ROUTES = ("maintained", "academy", "independent", "non-maintained-special", "post16", "other-la")


@dataclass(frozen=True)
class SchoolPayeeSet(Fact):
    """Who a school is paid through from ``effective`` (None: from the start), stated whole:
    a later fact replaces it from its own effective date, none is ever edited. Empty text is
    "none". Recorded in the stream payee:<urn>."""

    TYPE = "school.payee_set"
    school: str
    route: str
    effective: date | None = None
    laestab: str = ""
    trust: str = ""
    trust_ref: str = ""
    supplier: str = ""
    cost_centre: str = ""
    la_code: str = ""
    reason: str = ""


@dataclass(frozen=True)
class FinanceMapping:
    """How the LA's finance system wants its files: codes, and each file's columns (a field
    of the file and the header the finance system knows it by, in order)."""

    subjective: str
    cfr_code: str
    date_format: str
    budget_lines: tuple[tuple[str, str], ...]  # "route" or "route/setting" → budget-return line
    journal: tuple[tuple[str, str], ...]
    ap: tuple[tuple[str, str], ...]
    recoupment: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FinanceMappingSet(Fact):
    """The LA's finance mapping from now on (stream finance-mapping), from the file it edits."""

    TYPE = "finance.mapping_set"
    mapping: FinanceMapping
    source: str = ""
    reason: str = ""


@dataclass(frozen=True)
class RunPayee:
    """A school of a run as its finance files name it, as known when the run was made."""

    school: str
    name: str
    setting: str
    route: str
    laestab: str = ""
    trust: str = ""
    trust_ref: str = ""
    supplier: str = ""
    cost_centre: str = ""
    la_code: str = ""


@dataclass(frozen=True)
class RunRecovery:
    """A school's cash in a run where it differs from its net (the sum of its lines): a
    negative net is paid as nothing and ``carried`` forward as a recovery; a positive one
    has what the school still owed ``recovered`` from it. Cash = net + carried - recovered."""

    school: str
    net: int
    carried: int = 0
    recovered: int = 0


@dataclass(frozen=True)
class RunFinance(Fact):
    """What a run's finance files need besides its payments, recorded with the run in one
    append (stream finance:<run_id>): the payment date, the period's dates, the run's date,
    the mapping in force, every paid school's payee, in school order, and the recoveries
    that make a school's cash differ from its net (docs/finance.md "Recoveries")."""

    TYPE = "payment.run_finance"
    run_id: str
    pay_on: date
    period_start: date
    period_end: date
    run_date: date
    mapping: FinanceMapping
    payees: tuple[RunPayee, ...]
    recoveries: tuple[RunRecovery, ...] = ()


PAYEE_TYPES = (SchoolPayeeSet.TYPE, FinanceMappingSet.TYPE)


# Run controls and remittance (issue 23): how a run is released, who released or withdrew
# it, and what the bank or AP system reports it paid. Who did each is the event's own
# authenticated actor (``by``), never a field a user could type.

RELEASE_POLICIES = ("one-person", "two-person")


@dataclass(frozen=True)
class ReleasePolicySet(Fact):
    """The ledger's release policy: ``two-person`` holds each run, as prepared, until
    someone other than its preparer releases it; ``one-person`` releases it as recorded."""

    TYPE = "policy.release_set"
    release: str
    reason: str = ""


@dataclass(frozen=True)
class RunPrepared(Fact):
    """Recorded with a run by ``topup pay``, in the same batch: the policy it is released
    under, and the earlier periods it caught up on purpose (``--catch-up``): never run
    before, or paid on the default terms because their year had no recorded calendar."""

    TYPE = "payment.run_prepared"
    run_id: str
    release: str
    caught_up: tuple[str, ...] = ()
    default_terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunReleased(Fact):
    """A prepared run released for payment, by the event's actor (not its preparer)."""

    TYPE = "payment.run_released"
    run_id: str


@dataclass(frozen=True)
class RunWithdrawn(Fact):
    """A prepared run that was never released nor paid. Its payments are reversed in its
    own stream, so what it would have paid is due again in the next run."""

    TYPE = "payment.run_withdrawn"
    run_id: str
    reason: str


@dataclass(frozen=True)
class RemittanceLine(Fact):
    """One payment the bank or AP system reports as made: to whom (a payee or supplier
    reference, or the school's URN), against which run or payment reference, how much and
    when. ``source`` names the file line it came from, e.g. 'remit.csv:3'."""

    TYPE = "remittance.line"
    payee: str
    reference: str
    amount: int
    paid_on: date
    source: str = ""


# --- The paying LA's own details, for the head of its statements (issue 26) ---


@dataclass(frozen=True)
class LADetailsSet(Fact):
    """The paying local authority's name, postal address (one line each), contact, and how
    a school queries a figure: the head of every statement, as on a remittance advice. A
    later one replaces the earlier."""

    TYPE = "la.details_set"
    name: str
    address: tuple[str, ...] = ()
    contact: str = ""
    query_how: str = ""


# Protection as facts of its own (docs/rules.md §10): granted with a transfer (its
# ``protect_until``) or later, extended, or ended early, each with a reason; and the LA's
# policy for the prior it protects.
PROTECTION_PRIORS = ("recomputed", "frozen")


@dataclass(frozen=True)
class ProtectionGranted(Fact):
    """Protection of a plan on a band that moved from hours: from ``effective`` up to and
    including ``until`` it is paid the larger of its prior and its band amount."""

    TYPE = "plan.protection_granted"
    plan: str
    effective: date
    until: date
    reason: str


@dataclass(frozen=True)
class ProtectionExtended(Fact):
    """Protection running to its end date goes on to ``until``; ``effective`` is the first
    day it adds (the day after the end it extends)."""

    TYPE = "plan.protection_extended"
    plan: str
    effective: date
    until: date
    reason: str


@dataclass(frozen=True)
class ProtectionEnded(Fact):
    """Protection ends early: ``effective`` is the first day no longer protected."""

    TYPE = "plan.protection_ended"
    plan: str
    effective: date
    reason: str


@dataclass(frozen=True)
class ProtectionPolicySet(Fact):
    """The LA's protection policy: the prior a protected plan is paid is ``recomputed`` (its
    hours before the transfer priced at each protected day's financial-year rate) or
    ``frozen`` (priced at the terms of the day before the transfer). A later one replaces it,
    for every protected day."""

    TYPE = "protection.policy_set"
    prior: str
    reason: str = ""


FACT_TYPES: dict[str, type[Fact]] = {
    cls.TYPE: cls
    for cls in (
        SchoolAdded, CalendarSet, HourlyRateSet, TariffSet, PlanIssued, HoursChanged,
        TransferredToBand, BandChanged, PlacementMoved, PlanCeased, Corrected, SchoolPaid,
        PaymentRunRecorded, FilesWritten, CushionSet, Sealed,
        SchoolPayeeSet, FinanceMappingSet, RunFinance,
        ReleasePolicySet, RunPrepared, RunReleased, RunWithdrawn, RemittanceLine,
        LADetailsSet,
        KeyRotated,
        ProtectionGranted, ProtectionExtended, ProtectionEnded, ProtectionPolicySet,
    )
}

PLAN_FACTS = tuple(t for t in FACT_TYPES if t.startswith("plan."))


# The reference facts: what prices plans and shapes periods, as opposed to a plan's own facts.
REFERENCE_TYPES = (SchoolAdded.TYPE, CalendarSet.TYPE, HourlyRateSet.TYPE, TariffSet.TYPE,
                   CushionSet.TYPE, ProtectionPolicySet.TYPE)
