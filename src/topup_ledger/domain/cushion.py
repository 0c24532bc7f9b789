"""The per-school transitional cushion (docs/rules.md §11).

The cushion belongs to the school that lost money when its plans moved from hours to
bands: for the financial year of the cushion's start, a share (e.g. 50%) of the school's
net reduction at transfer, the sum over its plans moved to a band with effect that year of
their prior hours-based amount less their band's, both as at the transfer (gains net
losses; never below zero). That is a yearly amount, paid pro rata on the cushion's days as
the school's own line, rounded cumulatively within the year like every due. Later
reviews, moves and tariffs do not change it; a plan moving in brings none of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import Period, financial_year_of
from topup_ledger.domain.errors import MissingTerms
from topup_ledger.domain.plan import Plan
from topup_ledger.domain.rules import Terms


@dataclass(frozen=True)
class Cushion:
    school: str
    start: date
    until: date  # inclusive
    share_percent: Decimal
    because: str
    year: str  # the financial year whose transfers it cushions

    def days_within(self, start: date, end_exclusive: date) -> int:
        first = max(start, self.start)
        last = min(end_exclusive, self.until + timedelta(days=1))
        return max(0, (last - first).days)


def reduction_at_transfer(plan: Plan, school: str, year: str, terms: Terms) -> Fraction | None:
    """What ``plan``'s move from hours to a band cost ``school`` a year, as at the transfer:
    its prior (its hours before the transfer at that day's rate) less its band's value, both
    priced with the rates and tariffs as known when the transfer was recorded (later
    revisions do not change a cushion). None unless the plan moved to a band at that school
    with effect in financial year ``year``. Raises MissingTerms if it cannot be priced."""
    recorded_at = {r.id: r.position for r in plan.facts}
    for event_id, fact in plan.in_effect_order():
        if not isinstance(fact, ev.TransferredToBand) or financial_year_of(fact.effective) != year:
            continue
        state = plan.state_after(event_id)
        if state is None or state.school != school or plan.state_on(fact.effective) is None:
            continue  # moved at another school, or ceased on the day it would have moved
        if state.prior_hours is None or state.band is None:
            continue
        setting = terms.setting_of(school)
        known_at = recorded_at.get(event_id) or None  # 0: a plan read without positions
        band = terms.band_rate(year, setting, state.band, fact.effective, known_at)
        if terms.rate_on(year, fact.effective, known_at) is None or band is None:
            raise MissingTerms([f"the transfer of plan {plan.ref} on {fact.effective} cannot be "
                                f"priced for the cushion of school {school}"])
        return terms.hours_amount(state.prior_hours, year, setting, fact.effective, known_at) - band
    return None


def cushion_annual(cushion: Cushion, reductions: Iterable[Fraction]) -> Fraction:
    """share × the school's net reduction at transfer (its plans' reductions summed, gains
    netting losses), never below zero: the cushion a year."""
    return Fraction(cushion.share_percent) / 100 * max(Fraction(0), sum(reductions, Fraction(0)))


def cushion_exact(cushion: Cushion, annual: Fraction, period: Period) -> Fraction:
    """The cushion's exact due for ``period``: its annual amount × the period's share × the
    days under the cushion ÷ the period's days (school days where the calendar holds them)."""
    if not period.weight_total:
        return Fraction(0)  # a period with no school days pays nothing
    first = max(period.start, cushion.start)
    end = min(period.end_exclusive, cushion.until + timedelta(days=1))
    if end <= first:
        return Fraction(0)
    return annual * period.share * period.weight(first, end) / period.weight_total
