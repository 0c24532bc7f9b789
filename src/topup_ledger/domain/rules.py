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
from fractions import Fraction

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import financial_year_of
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
    rates: dict[str, ev.HourlyRateSet] = field(default_factory=dict)
    # (financial year, setting or None for every setting) → band → pence
    tariffs: dict[tuple[str, str | None], dict[str, int]] = field(default_factory=dict)
    # (position, id) of the facts that set each year's rates and tariffs, for "caused by"
    sources: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # the ledger position of the latest fact setting each (basis it prices, financial year):
    # an hourly rate prices days on hours, a tariff days on a band
    set_at: dict[tuple[str, str], int] = field(default_factory=dict)

    def apply(self, fact: ev.Fact, event_id: str = "", position: int = 0) -> None:
        if isinstance(fact, ev.SchoolAdded):
            self.schools[fact.urn] = fact
        elif isinstance(fact, ev.HourlyRateSet):
            self.rates[fact.year] = fact
            self.sources.setdefault(fact.year, []).append((position, event_id))
            self.set_at["hours", fact.year] = position
        elif isinstance(fact, ev.TariffSet):
            bands = self.tariffs.setdefault((fact.year, fact.setting), {})
            bands.update(dict(fact.bands))
            self.sources.setdefault(fact.year, []).append((position, event_id))
            self.set_at["band", fact.year] = position

    def setting_of(self, urn: str) -> str:
        try:
            return self.schools[urn].setting
        except KeyError:
            raise RuleError("school", f"school {urn} is not in the ledger (add it first)") from None

    def band_rate(self, year: str, setting: str, band: str) -> int | None:
        for key in ((year, setting), (year, None)):
            rate = self.tariffs.get(key, {}).get(band)
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
            base = self.hours_amount(state, year, setting)
        else:
            assert state.band is not None
            rate = self.band_rate(year, setting, state.band)
            assert rate is not None
            base = Fraction(rate)
        protection = Fraction(0)
        if state.prior_annual is not None and state.protected_on(day):
            protection = max(Fraction(0), state.prior_annual - base)
        return Annual(base, protection)

    def hours_amount(self, state: PlanState, year: str, setting: str) -> Fraction:
        assert state.hours is not None
        rate = self.rates[year]
        gross = Fraction(state.hours) * rate.hourly_rate * Fraction(rate.weeks)
        threshold = rate.threshold if setting in THRESHOLD_SETTINGS else 0
        return max(Fraction(0), gross - threshold)

    def missing_for(self, state: PlanState, day: date) -> list[str]:
        """What the ledger would need to know to price ``state`` on ``day``."""
        year = financial_year_of(day)
        if state.school not in self.schools:
            return [f"school {state.school} is not in the ledger"]
        if state.basis == "hours":
            return [] if year in self.rates else [f"no hourly rate for financial year {year}"]
        assert state.band is not None
        if self.band_rate(year, self.setting_of(state.school), state.band) is None:
            return [f"no tariff for band {state.band} in financial year {year}"]
        return []
