"""The annual amount of a plan on a day (docs/rules.md §3, §10).

- hours basis: hours a week × hourly rate × weeks a year, less the school's notional
  threshold (the first £6,000 that mainstream schools meet from their own budget), never
  below zero; rate, weeks and threshold are those of the financial year of the day.
- band basis: the band's value for the financial year of the day, or the value for the
  school's setting type where the tariff sets one.
- protection: while a protected amount applies, the larger of it and the band amount; the
  difference is paid as its own line so that schools and the LA can see what protection costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import financial_year_of, financial_years_within, parse_year
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.plan import PlanState

# Special schools and specialist units get £10,000 place funding instead; only mainstream
# schools meet the notional threshold themselves.
THRESHOLD_SETTINGS = frozenset({"mainstream"})


@dataclass(frozen=True)
class Annual:
    """A plan's annual amount on a day, split into what the basis pays and protection."""

    base: Fraction
    protection: Fraction = Fraction(0)


@dataclass
class Terms:
    """The reference data as known: schools, hourly rates and tariffs by financial year.

    Later facts for the same year replace earlier ones (a tariff revision), so folding the
    facts in ledger order gives the terms as known at any point.
    """

    schools: dict[str, ev.SchoolAdded] = field(default_factory=dict)
    # Each financial year's latest hourly rate, and its tariff with every revision applied:
    # the year's values as last set, whatever day a revision took effect from.
    rates: dict[str, ev.HourlyRateSet] = field(default_factory=dict)
    # (financial year, setting or None for every setting) → band → pence
    tariffs: dict[tuple[str, str | None], dict[str, int]] = field(default_factory=dict)
    # Every rate and tariff fact in ledger order with its position, for the values in force
    # on a given day (and as known at a given position).
    rate_facts: dict[str, list[tuple[int, ev.HourlyRateSet]]] = field(default_factory=dict)
    tariff_facts: dict[tuple[str, str | None], list[tuple[int, ev.TariffSet]]] = field(
        default_factory=dict)
    # (position, id) of the facts that set each year's rates and tariffs
    sources: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # every rate and tariff fact with its position and id, in ledger order, for the causes
    # of a line (``bearing_on``)
    priced_by: list[tuple[int, str, ev.HourlyRateSet | ev.TariffSet]] = field(default_factory=list)
    # Each rate and tariff fact as (position, basis it prices, financial year, first day it
    # prices): an hourly rate prices days on hours, a tariff days on a band.
    revisions: list[tuple[int, str, str, date]] = field(default_factory=list)
    # The LA's protection policy (docs/rules.md §10): "recomputed" (the prior at each
    # protected day's rate) or "frozen" (at the terms of the day before the transfer), and
    # the (position, id) of the facts that set it.
    protection_prior: str = "recomputed"
    protection_policy: list[tuple[int, str]] = field(default_factory=list)

    def apply(self, fact: ev.Fact, event_id: str = "", position: int = 0) -> None:
        if isinstance(fact, ev.SchoolAdded):
            self.schools[fact.urn] = fact
        elif isinstance(fact, ev.HourlyRateSet):
            self.rates[fact.year] = fact
            self.rate_facts.setdefault(fact.year, []).append((position, fact))
            self.sources.setdefault(fact.year, []).append((position, event_id))
            self.priced_by.append((position, event_id, fact))
            self.revisions.append((position, "hours", fact.year, prices_from(fact)))
        elif isinstance(fact, ev.TariffSet):
            bands = self.tariffs.setdefault((fact.year, fact.setting), {})
            bands.update(dict(fact.bands))
            self.tariff_facts.setdefault((fact.year, fact.setting), []).append((position, fact))
            self.sources.setdefault(fact.year, []).append((position, event_id))
            self.priced_by.append((position, event_id, fact))
            self.revisions.append((position, "band", fact.year, prices_from(fact)))
        elif isinstance(fact, ev.ProtectionPolicySet):
            self.protection_prior = fact.prior
            self.protection_policy.append((position, event_id))

    def in_year_changes(self, start: date, end_exclusive: date) -> list[date]:
        """The days inside (start, end_exclusive) from which a revision changes a value."""
        return sorted({fact.effective for facts in (*self.rate_facts.values(),
                                                     *self.tariff_facts.values())
                       for _, fact in facts
                       if fact.effective is not None and start < fact.effective < end_exclusive})

    def in_force_since(self, year: str, day: date) -> date | None:
        """The latest day, up to ``day``, from which a revision of ``year``'s terms took
        effect inside the year (None: the values on ``day`` are the whole year's): the
        days from it to ``day`` are priced alike."""
        found = None
        for facts in (self.rate_facts.get(year, ()), *(
                facts for (y, _), facts in self.tariff_facts.items() if y == year)):
            for _, fact in facts:
                if fact.effective is not None and fact.effective <= day and (
                        found is None or fact.effective > found):
                    found = fact.effective
        return found

    def rate_on(self, year: str, day: date | None = None,
                known_at: int | None = None) -> ev.HourlyRateSet | None:
        """The hourly rate in force on ``day`` (the latest set for the year if no day), as
        known at position ``known_at`` (now if not given)."""
        found = None
        for position, fact in self.rate_facts.get(year, ()):
            if known_at is not None and position > known_at:
                break
            if day is None or fact.effective is None or fact.effective <= day:
                found = fact
        return found

    def bearing_on(self, school: str, basis: str, band_or_hours: str, protected: bool,
                   start: date, end_exclusive: date, after: int) -> list[tuple[int, str]]:
        """The rate and tariff facts recorded after position ``after`` that price the days
        [start, end_exclusive) of a plan in this state (docs/rules.md §9): an hourly rate
        prices days on hours (and a protected band's prior); a tariff prices days on a band
        it names, for the school's setting or every setting. A revision prices only from its
        own day. A band F revision is not a cause of a band C line."""
        added = self.schools.get(school)
        years = financial_years_within(start, end_exclusive)
        found = []
        for position, event_id, fact in self.priced_by:
            if position <= after or fact.year not in years or (
                    fact.effective is not None and fact.effective >= end_exclusive):
                continue
            if isinstance(fact, ev.HourlyRateSet):
                bears = basis == "hours" or protected
            else:
                setting = added.setting if added else None
                bears = (basis == "band" and band_or_hours in dict(fact.bands)
                         and fact.setting in (None, setting))
            if bears:
                found.append((position, event_id))
        if protected:  # the protection policy prices the prior
            found += [(position, event_id) for position, event_id in self.protection_policy
                      if position > after]
        return found

    def setting_of(self, urn: str) -> str:
        try:
            return self.schools[urn].setting
        except KeyError:
            raise RuleError("school", f"school {urn} is not in the ledger (add it first)") from None

    def band_rate(self, year: str, setting: str, band: str, day: date | None = None,
                  known_at: int | None = None) -> int | None:
        """The band's value in ``year`` for the setting (or for every setting), in force on
        ``day`` (as last set for the year if no day), as known at position ``known_at``
        (now if not given)."""
        for key in ((year, setting), (year, None)):
            rate = None
            for position, fact in self.tariff_facts.get(key, ()):
                if known_at is not None and position > known_at:
                    break
                if day is None or fact.effective is None or fact.effective <= day:
                    rate = dict(fact.bands).get(band, rate)
            if rate is not None:
                return rate
        return None

    def require_band(self, band: str, day: date, urn: str) -> None:
        year = financial_year_of(day)
        if self.band_rate(year, self.setting_of(urn), band) is None:
            raise RuleError("band", f"band {band} has no tariff for financial year {year}")

    def annual_amount(self, state: PlanState, day: date) -> Annual:
        """The plan's annual amount on ``day`` (docs/rules.md §3, §10); raises MissingTerms
        naming what the ledger would need to price it."""
        missing = self.missing_for(state, day)
        if missing:
            raise MissingTerms(missing)
        year = financial_year_of(day)
        setting = self.setting_of(state.school)
        if state.basis == "hours":
            assert state.hours is not None
            base = self.hours_amount(state.hours, year, setting, day)
        else:
            assert state.band is not None
            rate = self.band_rate(year, setting, state.band, day)
            assert rate is not None
            base = Fraction(rate)
        protection = Fraction(0)
        if state.prior_hours is not None and state.protected_on(day):
            # The prior is what the plan's hours before its transfer would be paid on this
            # day: at this financial year's rate, unless the LA's policy freezes it at the
            # terms of the day before the transfer (§10).
            priced_on = self.prior_priced_on(state, day)
            prior = self.hours_amount(state.prior_hours, financial_year_of(priced_on), setting,
                                      priced_on)
            protection = max(Fraction(0), prior - base)
        return Annual(base, protection)

    def prior_priced_on(self, state: PlanState, day: date) -> date:
        """The day whose hourly rate, weeks and threshold price a protected plan's prior on
        ``day`` (docs/rules.md §10): ``day`` itself, or the day before the transfer where
        the LA's protection policy freezes the prior."""
        if self.protection_prior == "frozen" and state.prior_on is not None:
            return state.prior_on
        return day

    def hours_amount(self, hours: Decimal, year: str, setting: str,
                     day: date | None = None, known_at: int | None = None) -> Fraction:
        """Hours a week × hourly rate × weeks, less the threshold where the school meets it,
        never below zero; the terms of financial year ``year`` in force on ``day`` (as known
        at position ``known_at``)."""
        rate = self.rate_on(year, day, known_at)
        assert rate is not None
        gross = Fraction(hours) * rate.hourly_rate * Fraction(rate.weeks)
        threshold = rate.threshold if setting in THRESHOLD_SETTINGS else 0
        return max(Fraction(0), gross - threshold)

    def missing_for(self, state: PlanState, day: date) -> list[str]:
        """What the ledger would need to know to price ``state`` on ``day``."""
        year = financial_year_of(day)
        if state.school not in self.schools:
            return [f"school {state.school} is not in the ledger"]
        no_rate = [] if self.rate_on(year, day) else [f"no hourly rate for financial year {year}"
                                                       + (f" on {day}" if year in self.rates else "")]
        if state.basis == "hours":
            return no_rate
        assert state.band is not None
        missing = []
        if self.band_rate(year, self.setting_of(state.school), state.band, day) is None:
            missing.append(f"no tariff for band {state.band} in financial year {year}")
        if state.prior_hours is not None and state.protected_on(day):
            # the protected prior is priced on hours
            priced_on = self.prior_priced_on(state, day)
            prior_year = financial_year_of(priced_on)
            if not self.rate_on(prior_year, priced_on):
                missing.append(f"no hourly rate for financial year {prior_year}"
                               + (f" on {priced_on}" if prior_year in self.rates else ""))
        return missing


def prices_from(fact: ev.HourlyRateSet | ev.TariffSet) -> date:
    """The first day a rate or tariff fact prices: its ``effective`` day, or 1 April."""
    return fact.effective or date(parse_year(fact.year), 4, 1)
