"""Cost neutrality on the full cost of the move from hours to bands (docs/rules.md §13).

The move is judged on what it costs: for each plan moved to a band, its band, its protection
and (per school) the cushion, against its prior hours-based amount, all at one financial
year's prices (each value as last set for that year), over the days the plan is actually
funded from its transfer up to a horizon (the end of the latest priced year), a day being
worth 1/365 (1/366 in a year with 29 February) of a year.

- prior: the plan's hours before the transfer (as known now, §10), priced at the year's
  hourly rate, weeks and threshold at the setting of the school the plan is at that day;
- band: the band of that day at that setting;
- protection: prior − band where more, on the days the plan is protected (§10);
- cushion: a school's cushion (§11) reworked at the year's prices: its share of the net
  reduction (prior − band) of the plans moved at that school in the cushion's year, on the
  cushion's days up to the horizon.

Each amount is exact here; readers round a plan's or a school's amounts half up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import parse_year
from topup_ledger.domain.cushion import Cushion
from topup_ledger.domain.errors import MissingTerms
from topup_ledger.domain.plan import Plan
from topup_ledger.domain.rules import Terms

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Funded:
    """Days after a plan's transfer on which it is funded alike: how many, at a school of
    which setting, on which band, protected or not."""

    days: int
    setting: str
    band: str
    protected: bool


@dataclass(frozen=True)
class Cost:
    """A plan's (or a school's cushion's) cost over its funded days at one year's prices."""

    days: int = 0
    protected_days: int = 0
    prior: Fraction = Fraction(0)
    band: Fraction = Fraction(0)
    protection: Fraction = Fraction(0)


def priced_years(terms: Terms) -> list[str]:
    """The financial years with both an hourly rate and a tariff, in order."""
    banded = {year for year, _ in terms.tariffs}
    return sorted(year for year in terms.rates if year in banded)


def year_end(year: str) -> date:
    return date(parse_year(year) + 1, 3, 31)


def days_in_year(year: str) -> int:
    start = parse_year(year)
    return (date(start + 1, 4, 1) - date(start, 4, 1)).days


def funded_after_transfer(plan: Plan, terms: Terms, horizon: date
                          ) -> tuple[Decimal, list[Funded]] | None:
    """The plan's hours before its transfer, and its funded days from the transfer up to and
    including ``horizon`` (None if it never moved from hours to a band)."""
    transfer = next((fact for _, fact in plan.in_effect_order()
                     if isinstance(fact, ev.TransferredToBand)), None)
    if transfer is None:
        return None
    state = plan.state_on(transfer.effective)
    if state is None or state.prior_hours is None:
        return None  # ceased the day it would have moved
    hours = state.prior_hours
    found: list[Funded] = []
    for start, end, state in plan.clipped(transfer.effective, horizon + ONE_DAY):
        if state.basis != "band" or state.band is None:
            continue
        setting = terms.setting_of(state.school)
        protected_to = state.protect_until if state.prior_hours is not None else None
        cut = min(end, protected_to + ONE_DAY) if protected_to is not None else start
        if cut > start:
            found.append(Funded((cut - start).days, setting, state.band, True))
        if end > max(cut, start):
            found.append(Funded((end - max(cut, start)).days, setting, state.band, False))
    return hours, found


def plan_cost(hours: Decimal, funded: Iterable[Funded], terms: Terms, year: str) -> Cost:
    """What the funded days cost at ``year``'s prices; raises MissingTerms naming what the
    year does not price."""
    per_day = Fraction(1, days_in_year(year))
    days = protected_days = 0
    prior = band = protection = Fraction(0)
    missing = []
    for stretch in funded:
        value = terms.band_rate(year, stretch.setting, stretch.band)
        if value is None or year not in terms.rates:
            missing.append(f"band {stretch.band} is not priced in financial year {year}"
                           if value is None else f"no hourly rate for financial year {year}")
            continue
        worth = stretch.days * per_day
        was = terms.hours_amount(hours, year, stretch.setting)
        days += stretch.days
        prior += was * worth
        band += value * worth
        if stretch.protected:
            protected_days += stretch.days
            protection += max(Fraction(0), was - value) * worth
    if missing:
        raise MissingTerms(sorted(set(missing)))
    return Cost(days, protected_days, prior, band, protection)


def reduction_at_prices(hours: Decimal, band: str, setting: str, terms: Terms, year: str) -> Fraction:
    """A plan's prior less its band at the transfer, priced at ``year``'s values."""
    value = terms.band_rate(year, setting, band)
    if value is None or year not in terms.rates:
        raise MissingTerms([f"band {band} at a {setting} school is not priced in financial year {year}"])
    return terms.hours_amount(hours, year, setting) - value


def cushion_cost(cushion: Cushion, reductions: Iterable[Fraction], year: str, horizon: date
                 ) -> Fraction:
    """The cushion's share of the net reduction (at ``year``'s prices, gains netting losses,
    never below zero) on its days up to ``horizon``."""
    net = max(Fraction(0), sum(reductions, Fraction(0)))
    days = cushion.days_within(cushion.start, horizon + ONE_DAY)
    return Fraction(cushion.share_percent) / 100 * net * days / days_in_year(year)
