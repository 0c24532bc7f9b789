"""A school statement as plain data: what the renderers (HTML, PDF, CSV) show.

Money is integer pence throughout; the renderers format it. Every figure here comes from the
recorded payment lines (the same ones the payment files are written from), so a statement
agrees with the payment files to the penny by construction, and the tests check it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction

from topup_ledger.domain.events import PaymentLine
from topup_ledger.domain.money import pounds_for_people, round_half_up

KIND_WORDS = {"regular": "Regular (this period)", "arrears": "Arrears (earlier periods)",
              "clawback": "Claw-back (earlier periods)", "protection": "Protection",
              "cushion": "Transitional cushion"}


@dataclass
class Totals:
    regular: int = 0
    arrears: int = 0
    clawback: int = 0
    protection: int = 0
    cushion: int = 0

    def add(self, line: PaymentLine) -> None:
        setattr(self, line.kind, getattr(self, line.kind) + line.amount)

    @property
    def total(self) -> int:
        return self.regular + self.arrears + self.clawback + self.protection + self.cushion

    def rows(self) -> list[tuple[str, str, int]]:
        return [(kind, KIND_WORDS[kind], getattr(self, kind)) for kind in KIND_WORDS]


@dataclass(frozen=True)
class RunRef:
    run_id: str
    period: str
    sequence: int
    seal: str
    recorded_at: datetime
    position: int
    paid_here: int  # what the run paid this school (0 if it paid it nothing)
    prepared_by: str = ""  # who recorded the run
    released_by: str = ""  # who released it ("" while prepared, under two-person release)
    state: str = "released"  # released | prepared | withdrawn
    # A negative net is sent as £0 and carried forward as a recovery; a later positive net
    # has what the school still owes recovered from it (domain/recoveries.py, issue 22).
    carried: int = 0
    recovered: int = 0

    @property
    def cash(self) -> int:
        """What the finance files sent the school in this run."""
        return self.paid_here + self.carried - self.recovered

    @property
    def recovery_words(self) -> str:
        """The recovery of this run in words a school business manager reads, "" if none."""
        found = []
        if self.carried:
            found.append(f"{pounds_for_people(self.carried)} to be recovered from your next "
                         "payments: the lines came to less than nothing, so nothing was sent")
        if self.recovered:
            found.append(f"{pounds_for_people(self.recovered)} recovered from this payment "
                         "(owed from an earlier run)")
        return "; ".join(found)

    @property
    def kind(self) -> str:
        return "main run" if self.sequence == 1 else "supplementary run"


@dataclass(frozen=True)
class Working:
    """One stretch of a child's days in the period, as a sum a person can do by hand:
    annual value × the period's share of the year × days in the stretch ÷ days in the
    period (docs/rules.md §5). ``basis`` says where the annual value comes from."""

    component: str  # base | protection
    basis: str  # e.g. "band F (2027-28 tariff)" or "27.5 hours × £11.81 × 38 weeks − £6,000.00"
    annual: Fraction  # pence a year, exact (hours may give fractions of a penny)
    share: Fraction
    days: int
    period_days: int
    school_days: bool = False  # days are school days on roll (a calendar with terms)
    share_text: str = ""  # the share as the calendar gives it, e.g. 18/194 school days


    @property
    def days_words(self) -> str:
        if self.school_days:
            return f"{self.days} of {self.period_days} school days"
        return f"{self.days}/{self.period_days} days"

    @property
    def exact(self) -> Fraction:
        if not self.period_days:
            return Fraction(0)
        return self.annual * self.share * self.days / self.period_days


@dataclass
class ChildRow:
    """One child (by pseudonymous pupil reference and plan reference, never a name)."""

    pupil: str
    plan: str
    basis: str
    band_or_hours: str
    days: int  # days funded at this school in this period
    this_period: int  # regular lines for this period
    protection: int
    earlier: int  # arrears and claw-back for earlier periods
    note: str = ""
    workings: list[Working] = field(default_factory=list)
    protection_note: str = ""  # protection that is rounding alone, in words

    @property
    def total(self) -> int:
        return self.this_period + self.protection + self.earlier

    def exact(self, component: str) -> Fraction:
        return sum((w.exact for w in self.workings if w.component == component), Fraction(0))

    def carry(self, component: str) -> int:
        """What rounding with the year so far (docs/rules.md §6) adds to the period's exact
        sum rounded on its own: at most a penny either way."""
        paid = self.this_period if component == "base" else self.protection
        return paid - round_half_up(self.exact(component))


@dataclass(frozen=True)
class LineRow:
    """A payment line exactly as recorded (and as in the payment line file)."""

    run_id: str
    plan: str
    pupil: str
    kind: str
    for_period: str
    amount: int
    basis: str
    band_or_hours: str
    days: int
    reason: str
    caused_by: tuple[str, ...]
    component: str


@dataclass(frozen=True)
class MoneyMoved:
    run_id: str
    plan: str
    kind: str
    for_period: str
    amount: int
    shared: bool  # the line names other events too
    counted_under: str = ""  # the change whose money counts this line, if another one's
    component: str = "base"


@dataclass
class Change:
    """Something recorded since the school's last statement that bears on its money."""

    id: str
    kind: str  # new-plan | moved-in | moved-out | band-change | hours-change | transfer | ...
    title: str  # the kind in words
    what: str
    reason: str
    effective: str  # in words: a date, or the financial year it applies to
    effective_date: date | None
    recorded_at: datetime
    position: int
    plan: str = ""
    pupil: str = ""
    before: str = ""  # e.g. the prior hours-based amount a year
    after: str = ""  # e.g. the band amount a year
    lines: list[MoneyMoved] = field(default_factory=list)
    recorded_by: str = "unknown"  # who recorded it (older events: unknown)
    priced: str = ""  # for a tariff or rate: the lines of this statement priced from it

    @property
    def money(self) -> int:
        """The money this change moved, each line counted once (under the latest change it
        names)."""
        return sum(m.amount for m in self.lines if not m.counted_under)


@dataclass(frozen=True)
class Bar:
    period: str
    amount: int  # paid to the school in the runs for this period
    current: bool


@dataclass
class Statement:
    school: str
    school_name: str
    setting: str
    period: str
    period_start: date
    period_end: date
    academic_year: str
    position: int  # the ledger position the statement was built from
    known_at: datetime | None  # the recorded time of that position
    as_of: datetime | None  # the moment asked for with --as-of, if any
    runs: list[RunRef]  # the runs for this period that paid the school
    other_runs: list[RunRef]  # runs for this period that paid it nothing
    totals: Totals
    year_to_date: Totals
    year_to_date_runs: list[str]
    financial_year: str
    financial_year_to_date: Totals
    financial_year_to_date_runs: list[str]
    children: list[ChildRow]
    cushion: int
    lines: list[LineRow]
    changes: list[Change]
    changes_since: RunRef | None  # the run of the school's previous statement
    chart: list[Bar]
    remittance: object = None  # a statements.remittance.Remittance, when the ledger has one
    # the period's school days where its calendar holds them (None: paid by calendar days)
    period_school_days: int | None = None

    @property
    def nothing_paid(self) -> bool:
        return not self.runs

    @property
    def period_days(self) -> int:
        return (self.period_end - self.period_start).days + 1

    @property
    def witness(self) -> RunRef | None:
        """The run whose seal this copy witnesses: the latest run for the period."""
        runs = sorted([*self.runs, *self.other_runs], key=lambda r: r.position)
        return runs[-1] if runs else None

    @property
    def seal(self) -> str:
        return self.witness.seal if self.witness else ""

    @property
    def run_id(self) -> str:
        return self.witness.run_id if self.witness else ""

    @property
    def nothing_paid_words(self) -> str:
        if self.other_runs:
            runs = ", ".join(r.run_id for r in self.other_runs)
            return (f"Nothing was paid to {self.school_name} for {self.period}: the payment "
                    f"run{'s' if len(self.other_runs) > 1 else ''} for this period ({runs}) "
                    "had no top-up for this school.")
        return (f"Nothing was paid to {self.school_name} for {self.period}: no payment run "
                "for this period has been recorded" + (" as known at that time." if self.as_of
                                                      else " yet."))
