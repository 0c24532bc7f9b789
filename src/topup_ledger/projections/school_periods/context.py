"""What working out a plan's rows needs besides its facts: reference data, the horizon, what
the last payment run settled, and answers remembered across plans."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property

from topup_ledger.domain.calendar import Period, academic_year_of, parse_year, with_default_terms
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.money import round_half_up
from topup_ledger.domain.plan import PlanState, RecordedFact
from topup_ledger.domain.reference import Reference
from topup_ledger.domain.settlement import Revisions
from topup_ledger.engine.pricing import PricingCache

# What an annual run-rate depends on: setting, basis, band, hours, day, prior, protect-until,
# and the day a frozen prior is priced on.
RateKey = tuple[str | None, str, str | None, Decimal | None, date, Decimal | None, date | None,
                date | None]


@dataclass
class Context:
    """Reference data as folded and the horizon, and what plans' rows share."""

    ref: Reference
    horizon: date | None
    # The last payment run's period, if nothing of the reference data but rates and tariffs
    # was recorded after it, and its position: a plan with no fact after that position was
    # paid exactly its due for every period up to that one (docs/rules.md §8).
    settled: Period | None = None
    settled_at: int = 0
    # The tariffs and hourly rates revised after that run, and the days they reprice.
    revisions: Revisions = field(default_factory=Revisions)
    # While extending plans' rows: the horizon's period they reached before it moved on.
    after: Period | None = None
    cache: dict[str, tuple[Period, ...]] = field(default_factory=dict)
    rates: dict[RateKey, int | None] = field(default_factory=dict)
    by_id: dict[str, Period | None] = field(default_factory=dict)
    pricing: PricingCache = field(init=False)

    def __post_init__(self) -> None:
        self.pricing = PricingCache(self.ref.terms)

    def periods_from(self, start: date) -> tuple[Period, ...]:
        """Calendar periods from ``start``'s academic year up to the horizon's period."""
        if self.horizon is None:
            return ()
        year = academic_year_of(start)
        if year not in self.cache:
            first = date(parse_year(year), 9, 1)
            calendar = with_default_terms(self.ref.calendars, first, max(first, self.horizon))
            self.cache[year] = tuple(p for p in calendar.periods
                                     if p.end >= first and p.start <= self.horizon)
        return self.cache[year]

    @cached_property
    def sources(self) -> dict[str, int]:
        """The position of each rate and tariff fact, by id."""
        return {i: pos for pos, i in itertools.chain.from_iterable(self.ref.terms.sources.values())}

    def run_rate(self, state: PlanState, day: date) -> int | None:
        """The annual amount (basis and protection, docs/rules.md §3 and §10) on ``day``, in
        whole pence; None if the ledger cannot price it. Remembered by what it depends on: the
        school only through its setting, so thousands of plans share a few dozen answers."""
        added = self.ref.terms.schools.get(state.school)
        key: RateKey = (added.setting if added else None, state.basis, state.band, state.hours, day,
                        state.prior_hours, state.protect_until, state.prior_on)
        found = self.rates.get(key, self)  # one lookup: ``self`` stands for "not asked yet"
        if found is self:
            try:
                annual = self.pricing.annual_amount(state, day)
                found = round_half_up(annual.base + annual.protection)
            except MissingTerms:
                found = None
            self.rates[key] = found
        return found  # type: ignore[return-value]

    def added(self) -> list[str]:
        """While extending: the periods after ``after`` up to the horizon's."""
        if self.after is None:
            return []
        start = self.after.start
        return [p.id for p in self.periods_from(start) if p.start > start]

    def settled_for(self, facts: list[RecordedFact]) -> Period | None:
        """The last period the plan is known to be paid exactly as due, if any."""
        if self.settled is None or not facts or facts[-1].position > self.settled_at:
            return None
        return self.settled

    def period(self, period_id: str) -> Period | None:
        if period_id not in self.by_id:
            try:
                start = parse_year(period_id.split("/", 1)[0], "period")
                calendar = with_default_terms(self.ref.calendars, date(start, 9, 1),
                                              date(start + 1, 8, 31))
                self.by_id[period_id] = calendar.period(period_id)
            except RuleError:
                self.by_id[period_id] = None
        return self.by_id[period_id]
