"""The reference data as known: what prices plans and shapes periods, folded once.

Schools, hourly rates and tariffs (the ``Terms``), the recorded payment calendars and the
schools' transitional cushions. Folding the reference facts in ledger order gives them as
known at any position; a later fact for the same year (a revision) or school replaces the
earlier one (docs/rules.md §2, §3, §11). Every reader of the ledger folds them here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import (
    Calendar,
    Period,
    financial_year_of,
    periods_of,
    with_default_terms,
)
from topup_ledger.domain.cushion import Cushion
from topup_ledger.domain.rules import Terms

REFERENCE_FACTS = (ev.SchoolAdded, ev.CalendarSet, ev.HourlyRateSet, ev.TariffSet, ev.CushionSet,
                   ev.ProtectionPolicySet)


@dataclass
class Reference:
    terms: Terms = field(default_factory=Terms)
    calendars: dict[str, tuple[Period, ...]] = field(default_factory=dict)  # by academic year
    cushions: dict[str, Cushion] = field(default_factory=dict)  # by school: the latest
    position: int = 0  # of the last reference fact folded
    # The position of the latest fact that can change any plan's due in any year: a school,
    # a calendar or the protection policy. Rates and tariffs change only their own financial year's days (told
    # apart by ``terms.set_at``); a cushion is a line of its own, worked out afresh.
    reshaped_at: int = 0

    def apply(self, fact: ev.Fact, event_id: str, position: int) -> None:
        """Fold one reference fact recorded at ``position`` as ``event_id``."""
        self.position = position
        if isinstance(fact, ev.CalendarSet):
            self.calendars[fact.year] = periods_of(fact)
            self.reshaped_at = position
        elif isinstance(fact, ev.CushionSet):
            self.cushions[fact.school] = Cushion(
                fact.school, fact.effective, fact.until, fact.share_percent, event_id,
                fact.year or financial_year_of(fact.effective))
        else:
            self.terms.apply(fact, event_id, position)
            if isinstance(fact, ev.SchoolAdded | ev.ProtectionPolicySet):
                self.reshaped_at = position  # a policy reprices every protected day

    def calendar(self, first: date, last: date) -> Calendar:
        """The recorded calendars, and the default terms for the other academic years from
        ``first`` to ``last``."""
        return with_default_terms(self.calendars, first, last)
