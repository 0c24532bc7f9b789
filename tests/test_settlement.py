"""What a payment run and the projections need not work out again (docs/rules.md §8).

Worked by hand: the terms revised since the last run reprice only the days of their own
financial year on their own basis, and a period stays settled until something reaches a
day of its academic year up to its end.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import termly_periods
from topup_ledger.domain.plan import Plan, RecordedFact
from topup_ledger.domain.rules import Terms
from topup_ledger.domain.settlement import Revisions, settled_plan, still_settled

OAK = "100001"
PERIODS = (*termly_periods("2025-26"), *termly_periods("2026-27"))
AUTUMN_25, SPRING_26, SUMMER_26, AUTUMN_26, SPRING_27, SUMMER_27 = PERIODS


def plan_of(*facts: ev.Fact) -> Plan:
    return Plan([RecordedFact(f"P1/{i}", f, i) for i, f in enumerate(facts, start=1)])


ON_HOURS = plan_of(ev.PlanIssued("P1", "R1", OAK, date(2025, 9, 1), hours=Decimal(20)))
ON_BAND = plan_of(ev.PlanIssued("P1", "R1", OAK, date(2025, 9, 1), band="C"))
# Hours until 31 October 2025, then band D.
TRANSFERRED = plan_of(ev.PlanIssued("P1", "R1", OAK, date(2025, 9, 1), hours=Decimal(20)),
                      ev.TransferredToBand("P1", date(2025, 11, 1), "D", 297_560))
CEASED = plan_of(ev.PlanIssued("P1", "R1", OAK, date(2025, 9, 1), band="C"),
                 ev.PlanCeased("P1", date(2026, 1, 1), "moved out of the area"))


def test_revisions_since_a_position_are_the_years_set_again_after_it_by_basis() -> None:
    terms = Terms()
    terms.apply(ev.HourlyRateSet("2025-26", 1181, Decimal(38), 600_000), "rate:2025-26/1", 3)
    terms.apply(ev.TariffSet("2025-26", (("C", 500_000),)), "tariff:2025-26/1", 4)
    terms.apply(ev.TariffSet("2026-27", (("C", 520_000),)), "tariff:2026-27/1", 9)
    terms.apply(ev.TariffSet("2026-27", (("C", 530_000),), effective=date(2027, 1, 1)),
                "tariff:2026-27/2", 12)
    assert Revisions.since(terms, 4).years == {"band": {"2026-27": date(2026, 4, 1)}}
    assert Revisions.since(terms, 2).years == {
        "hours": {"2025-26": date(2025, 4, 1)},
        "band": {"2025-26": date(2025, 4, 1), "2026-27": date(2026, 4, 1)}}
    # An uplift from January reprices from January only.
    assert Revisions.since(terms, 9).years == {"band": {"2026-27": date(2027, 1, 1)}}
    assert not Revisions.since(terms, 12)


def test_a_tariff_revision_reprices_days_on_a_band_in_its_own_year_only() -> None:
    revised = Revisions({"band": {"2026-27": date(2026, 4, 1)}})
    assert revised.first_repriced_day(ON_BAND) == date(2026, 4, 1)
    assert revised.first_repriced_day(ON_HOURS) is None  # hours are priced by the rate alone
    assert revised.first_repriced_day(CEASED) is None  # funded to 31 Dec 2025 only
    assert revised.first_day() == date(2026, 4, 1)


def test_a_revision_reaches_a_transferred_plan_from_the_day_it_is_on_that_basis() -> None:
    assert Revisions({"band": {"2025-26": date(2025, 4, 1)}}).first_repriced_day(TRANSFERRED) == \
        date(2025, 11, 1)
    assert Revisions({"hours": {"2025-26": date(2025, 4, 1)}}).first_repriced_day(TRANSFERRED) == \
        date(2025, 9, 1)
    # An hourly rate for 2026-27 prices nothing: the plan is on a band all that year.
    assert Revisions({"hours": {"2026-27": date(2026, 4, 1)}}).first_repriced_day(TRANSFERRED) is None
    # An uplift of the rate from 1 January 2026 reaches none of its days on hours either.
    assert Revisions({"hours": {"2025-26": date(2026, 1, 1)}}).first_repriced_day(TRANSFERRED) is None


def test_an_hourly_rate_reprices_the_protected_days_of_a_plan_on_a_band() -> None:
    """Protection pays the prior hours at each day's rate (docs/rules.md §10)."""
    protected = plan_of(ev.PlanIssued("P1", "R1", OAK, date(2025, 9, 1), hours=Decimal(20)),
                        ev.TransferredToBand("P1", date(2025, 11, 1), "D", 297_560, date(2026, 8, 31)))
    rate_2026_27 = Revisions({"hours": {"2026-27": date(2026, 4, 1)}})
    assert rate_2026_27.first_repriced_day(protected) == date(2026, 4, 1)
    uplift_after_protection = Revisions({"hours": {"2026-27": date(2026, 9, 1)}})
    assert uplift_after_protection.first_repriced_day(protected) is None


def test_a_period_stays_settled_until_a_change_reaches_a_day_before_its_end() -> None:
    # The last run paid up to 2026-27 autumn.
    assert still_settled(AUTUMN_26, PERIODS, None) == AUTUMN_26
    assert still_settled(AUTUMN_26, PERIODS, date(2026, 4, 1)) == SPRING_26
    assert still_settled(AUTUMN_26, PERIODS, date(2026, 4, 2)) == SPRING_26  # summer ends 31 Aug
    assert still_settled(AUTUMN_26, PERIODS, date(2025, 9, 1)) is None
    assert still_settled(SPRING_26, PERIODS, date(2027, 1, 1)) == SPRING_26


def test_a_plans_own_change_and_a_revision_settle_up_to_the_earlier() -> None:
    known_then = ON_BAND
    now = plan_of(ev.PlanIssued("P1", "R1", OAK, date(2025, 9, 1), band="C"),
                  ev.BandChanged("P1", date(2027, 1, 1), "D", "annual-review"))
    none = Revisions()
    assert settled_plan(AUTUMN_26, PERIODS, now, none, known_then) == AUTUMN_26
    band_2026_27 = Revisions({"band": {"2026-27": date(2026, 4, 1)}})
    assert settled_plan(AUTUMN_26, PERIODS, now, band_2026_27, known_then) == SPRING_26
    backdated = plan_of(ev.PlanIssued("P1", "R1", OAK, date(2025, 9, 1), band="C"),
                        ev.BandChanged("P1", date(2026, 2, 1), "D", "tribunal"))
    assert settled_plan(AUTUMN_26, PERIODS, backdated, none, known_then) == AUTUMN_25
