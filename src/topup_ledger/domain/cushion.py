"""The per-school transitional cushion (docs/rules.md §11).

While a cushion applies, the school is paid a share (e.g. 50%) of its net reduction from
the move to bands: over its transferred plans, the prior hours-based amounts less what the
bands (with any per-plan protection) now pay. Gains on some plans offset losses on others;
a school that gains overall gets no cushion. It is paid as the school's own line, rounded
cumulatively within the year like every other due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from topup_ledger.domain.entitlement import Stretch


@dataclass(frozen=True)
class Cushion:
    school: str
    start: date
    until: date  # inclusive
    share_percent: Decimal
    because: str

    def days_within(self, start: date, end_exclusive: date) -> int:
        first = max(start, self.start)
        last = min(end_exclusive, self.until + timedelta(days=1))
        return max(0, (last - first).days)


def net_reduction(cushion: Cushion, found: Iterable[Stretch]) -> Fraction:
    """Σ (prior − band − protection) × period share × days ÷ days in period, over the
    stretches of the school's plans that moved from hours to a band, on the days under the
    cushion. A sum over plans, so it may be taken plan by plan and added up."""
    total = Fraction(0)
    for stretch in found:
        if stretch.prior_annual is None or stretch.basis != "band" or stretch.school != cushion.school:
            continue
        days = cushion.days_within(stretch.start, stretch.end_exclusive)
        if days:
            reduction = stretch.prior_annual - stretch.annual.base - stretch.annual.protection
            total += reduction * stretch.period.share * days / stretch.period.days
    return total


def cushion_exact(cushion: Cushion, found: Iterable[Stretch]) -> Fraction:
    """share × the school's net reduction over the period's days under the cushion; never
    below zero."""
    total = net_reduction(cushion, found)
    return Fraction(cushion.share_percent) / 100 * max(Fraction(0), total)
