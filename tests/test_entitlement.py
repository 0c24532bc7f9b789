"""The annual amount of a plan on a day and its entitlement for a period, by hand
(DESIGN §3 "Annual amount" and "Entitlement"; domain/rules.py, domain/entitlement.py).

Domain only: no store, no CLI. Every expected amount is worked out in the comments.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import Period, termly_periods
from topup_ledger.domain.entitlement import dues, exact_due, stretches
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.plan import Plan, PlanState, RecordedFact
from topup_ledger.domain.rules import Annual, Terms

OAK = "100001"  # mainstream
ELM = "100002"  # special
ASH = "100003"  # resourced provision

AUTUMN, SPRING, SUMMER = termly_periods("2025-26")
YEAR = (AUTUMN, SPRING, SUMMER)


def make_terms(tariffs: dict[str, dict[str, int]] | None = None, *, rates: tuple[str, ...] = ("2025-26",),
               special: dict[str, dict[str, int]] | None = None) -> Terms:
    """Three schools; £11.81 an hour × 38 weeks less £6,000; the tariffs given per FY."""
    terms = Terms()
    terms.apply(ev.SchoolAdded(OAK, "Oak Primary", "mainstream"))
    terms.apply(ev.SchoolAdded(ELM, "Elm Special", "special"))
    terms.apply(ev.SchoolAdded(ASH, "Ash Academy (resourced provision)", "resourced"))
    for year in rates:
        terms.apply(ev.HourlyRateSet(year, 1181, Decimal(38), 600_000), f"rate:{year}/1")
    for year, bands in (tariffs or {}).items():
        terms.apply(ev.TariffSet(year, tuple(sorted(bands.items()))), f"tariff:{year}/1")
    for year, bands in (special or {}).items():
        terms.apply(ev.TariffSet(year, tuple(sorted(bands.items())), "special"),
                    f"tariff:{year}:special/1")
    return terms


def plan_of(*facts: ev.Fact) -> Plan:
    return Plan([RecordedFact(f"P1/{n}", fact, n) for n, fact in enumerate(facts, start=1)])


def issued(band: str | None = "B", hours: Decimal | None = None, effective: date = date(2025, 9, 1),
           school: str = OAK) -> ev.PlanIssued:
    return ev.PlanIssued("P1", "pupil-1", school, effective, hours=hours, band=band)


def state(school: str = OAK, *, band: str | None = None, hours: str | None = None,
          prior_hours: str | None = None, protect_until: date | None = None) -> PlanState:
    return PlanState("pupil-1", school, "ehcp", "band" if band else "hours",
                     Decimal(hours) if hours else None, band,
                     prior_hours=Decimal(prior_hours) if prior_hours else None,
                     protect_until=protect_until)


BASE_OAK, BASE_ELM = (OAK, "base"), (ELM, "base")
PROT_OAK = (OAK, "protection")

# Annual amounts (rules.Terms).


def test_hours_basis_is_hours_times_rate_times_weeks_less_the_threshold_at_mainstream() -> None:
    terms = make_terms()
    # 20 h × 1181p × 38 weeks = 23620 × 38 = 897560p; less 600000p = 297560p (£2,975.60).
    assert terms.annual_amount(state(hours="20"), date(2025, 9, 1)) == Annual(Fraction(297_560))
    # 32.5 h × 1181 × 38 = 38382.5 × 38 = 1458535p; less 600000 = 858535p.
    assert terms.annual_amount(state(hours="32.5"), date(2026, 3, 31)) == Annual(Fraction(858_535))


def test_hours_basis_is_never_below_zero() -> None:
    terms = make_terms()
    # 10 h × 1181 × 38 = 448780p, under the 600000p threshold: 0, not −151220p.
    assert terms.annual_amount(state(hours="10"), date(2025, 9, 1)) == Annual(Fraction(0))
    # Just under the threshold: 13.36 h × 1181 × 38 = 15778.16 × 38 = 599570.08p → 0;
    # just over: 13.37 h × 1181 × 38 = 15789.97 × 38 = 600018.86p → 18.86p.
    assert terms.annual_amount(state(hours="13.36"), date(2025, 9, 1)).base == 0
    assert terms.annual_amount(state(hours="13.37"), date(2025, 9, 1)).base == Fraction(1886, 100)


def test_hours_basis_has_no_threshold_outside_mainstream() -> None:
    terms = make_terms()
    # A special school receives place funding instead: 20 × 1181 × 38 = 897560p, nothing off.
    assert terms.annual_amount(state(ELM, hours="20"), date(2025, 9, 1)) == Annual(Fraction(897_560))
    # 10 h at a special school: 448780p (at mainstream it would be 0).
    assert terms.annual_amount(state(ELM, hours="10"), date(2025, 9, 1)).base == 448_780
    # Fractions of a penny stay exact: 12.25 × 1181 × 38 = 14467.25 × 38 = 549755.5p.
    assert terms.annual_amount(state(ELM, hours="12.25"), date(2025, 9, 1)).base == Fraction(1_099_511, 2)


def test_hours_basis_uses_the_rate_of_the_financial_year_of_the_day() -> None:
    terms = make_terms(rates=("2025-26",))
    terms.apply(ev.HourlyRateSet("2026-27", 1250, Decimal(39), 600_000), "rate:2026-27/1")
    # 31 Mar 2026 (FY 2025-26): 20 × 1181 × 38 − 600000 = 297560p.
    assert terms.annual_amount(state(hours="20"), date(2026, 3, 31)).base == 297_560
    # 1 Apr 2026 (FY 2026-27): 20 × 1250 × 39 − 600000 = 975000 − 600000 = 375000p.
    assert terms.annual_amount(state(hours="20"), date(2026, 4, 1)).base == 375_000
    # A revised rate for 2025-26 replaces the first: 20 × 1200 × 38 − 600000 = 312000p.
    terms.apply(ev.HourlyRateSet("2025-26", 1200, Decimal(38), 600_000), "rate:2025-26/2")
    assert terms.annual_amount(state(hours="20"), date(2026, 3, 31)).base == 312_000


def test_band_basis_uses_the_tariff_of_the_financial_year_with_a_setting_override() -> None:
    terms = make_terms({"2025-26": {"B": 310_000, "D": 700_000}, "2026-27": {"B": 320_000}},
                       special={"2025-26": {"B": 450_000}})
    assert terms.annual_amount(state(band="B"), date(2025, 9, 1)) == Annual(Fraction(310_000))
    assert terms.annual_amount(state(band="B"), date(2026, 3, 31)).base == 310_000
    assert terms.annual_amount(state(band="B"), date(2026, 4, 1)).base == 320_000  # FY 2026-27
    # The special-school value overrides the general one for special schools only.
    assert terms.annual_amount(state(ELM, band="B"), date(2025, 9, 1)).base == 450_000
    assert terms.annual_amount(state(ASH, band="B"), date(2025, 9, 1)).base == 310_000
    # Where the override names no value for a band, the general value applies.
    assert terms.annual_amount(state(ELM, band="D"), date(2025, 9, 1)).base == 700_000
    # ... and in a year with no special-school tariff, too.
    assert terms.annual_amount(state(ELM, band="B"), date(2026, 4, 1)).base == 320_000


def test_a_tariff_revision_replaces_the_bands_it_names() -> None:
    terms = make_terms({"2025-26": {"B": 310_000, "D": 700_000}})
    terms.apply(ev.TariffSet("2025-26", (("B", 315_000),), reason="Schools Forum revision"))
    assert terms.band_rate("2025-26", "mainstream", "B") == 315_000
    assert terms.band_rate("2025-26", "mainstream", "D") == 700_000  # not named: unchanged


def test_protection_pays_the_larger_of_prior_and_band_while_it_applies() -> None:
    terms = make_terms({"2025-26": {"C": 400_000, "F": 900_000}, "2026-27": {"C": 400_000}})
    terms.apply(ev.HourlyRateSet("2026-27", 1250, Decimal(38), 600_000), "rate:2026-27/1")
    protected = state(band="C", prior_hours="25", protect_until=date(2026, 8, 31))
    # The prior is the 25 hours a week priced on the day: in 2025-26 25 × 1181 × 38 − 600000
    # = 521950p > band C 400000p, so base 400000 + protection 521950 − 400000 = 121950p.
    assert terms.annual_amount(protected, date(2026, 1, 1)) == Annual(Fraction(400_000), Fraction(121_950))
    # In 2026-27 at £12.50: 25 × 1250 × 38 − 600000 = 587500p; protection 187500p.
    assert terms.annual_amount(protected, date(2026, 8, 31)) == Annual(Fraction(400_000), Fraction(187_500))
    # From the day after protect_until: the band amount only.
    assert terms.annual_amount(protected, date(2026, 9, 1)) == Annual(Fraction(400_000), Fraction(0))
    # A band above the prior amount needs no protection: max(521950, 900000) = 900000 + 0.
    higher = state(band="F", prior_hours="25", protect_until=date(2026, 8, 31))
    assert terms.annual_amount(higher, date(2026, 1, 1)) == Annual(Fraction(900_000), Fraction(0))
    # No protection recorded: none paid.
    assert terms.annual_amount(state(band="C", prior_hours="25"), date(2026, 1, 1)).protection == 0


def test_missing_terms_and_unknown_schools() -> None:
    terms = make_terms({"2025-26": {"B": 310_000}})
    with pytest.raises(MissingTerms, match="no tariff for band D in financial year 2025-26"):
        terms.annual_amount(state(band="D"), date(2025, 9, 1))
    with pytest.raises(MissingTerms, match="no hourly rate for financial year 2026-27"):
        terms.annual_amount(state(hours="20"), date(2026, 4, 1))
    with pytest.raises(MissingTerms, match="school 999999 is not in the ledger"):
        terms.annual_amount(state("999999", band="B"), date(2025, 9, 1))
    with pytest.raises(RuleError, match="no tariff") as refused:
        terms.require_band("D", date(2025, 9, 1), OAK)
    assert refused.value.field == "band"
    with pytest.raises(RuleError, match="not in the ledger") as refused:
        terms.setting_of("999999")
    assert refused.value.field == "school"


# Entitlement: stretches, due and cumulative rounding.


def test_band_b_at_mainstream_for_the_autumn_term() -> None:
    # £3,100 × 4/12 × 122/122 = 310000 / 3 = 103333.33p → 103333p = £1,033.33.
    plan = plan_of(issued("B"))
    terms = make_terms({"2025-26": {"B": 310_000}})
    found = stretches(plan, AUTUMN, terms)
    assert [(s.start, s.end_exclusive, s.days, s.band_or_hours) for s in found] == [
        (date(2025, 9, 1), date(2026, 1, 1), 122, "B")]
    assert exact_due(found) == {BASE_OAK: Fraction(310_000, 3)}
    assert dues(plan, [AUTUMN], terms) == {"2025-26/autumn": {BASE_OAK: 103_333}}


def test_a_band_change_on_1_november_splits_the_autumn_term_61_and_61_days() -> None:
    # 1 Sep - 31 Oct = 30 + 31 = 61 days on B (£3,100); 1 Nov - 31 Dec = 30 + 31 = 61 on D (£7,000).
    # B: 310000 × 4/12 × 61/122 = 310000/6 = 51666.67p
    # D: 700000 × 4/12 × 61/122 = 700000/6 = 116666.67p
    # due = 1010000/6 = 168333.33p → 168333p.
    plan = plan_of(issued("B"), ev.BandChanged("P1", date(2025, 11, 1), "D", "annual-review"))
    terms = make_terms({"2025-26": {"B": 310_000, "D": 700_000}})
    found = stretches(plan, AUTUMN, terms)
    assert [(s.start, s.days, s.band_or_hours, s.because) for s in found] == [
        (date(2025, 9, 1), 61, "B", "P1/1"), (date(2025, 11, 1), 61, "D", "P1/2")]
    assert exact_due(found) == {BASE_OAK: Fraction(1_010_000, 6)}
    assert dues(plan, [AUTUMN], terms)["2025-26/autumn"] == {BASE_OAK: 168_333}


def test_cumulative_rounding_across_the_three_terms_of_a_year() -> None:
    # Band X = £3,100.09 = 310009p a year, the same in both financial years.
    # autumn: 310009 × 4/12 = 103336.33p → 103336p
    # spring: cumulative 310009 × 7/12 = 180838.58p → 180839p; due 180839 − 103336 = 77503p
    #         (on its own, 310009 × 3/12 = 77502.25p would round to 77502p)
    # summer: cumulative 310009 × 12/12 = 310009p; due 310009 − 180839 = 129170p
    # total 103336 + 77503 + 129170 = 310009p: exactly the annual amount. Rounding each term
    # on its own would pay 103336 + 77502 + 129170 = 310008p, a penny short.
    plan = plan_of(issued("X"))
    terms = make_terms({"2025-26": {"X": 310_009}, "2026-27": {"X": 310_009}})
    assert dues(plan, YEAR, terms) == {
        "2025-26/autumn": {BASE_OAK: 103_336},
        "2025-26/spring": {BASE_OAK: 77_503},
        "2025-26/summer": {BASE_OAK: 129_170},
    }


def test_cumulative_rounding_starts_again_each_academic_year() -> None:
    # Two years of band X (310009p): each year pays 310009p, the second year's autumn
    # again 103336p (rounding does not carry 2025-26's remainders into 2026-27).
    plan = plan_of(issued("X"))
    terms = make_terms({y: {"X": 310_009} for y in ("2025-26", "2026-27", "2027-28")})
    due = dues(plan, [*YEAR, *termly_periods("2026-27")], terms)
    assert due["2026-27/autumn"] == {BASE_OAK: 103_336}
    assert due["2026-27/spring"] == {BASE_OAK: 77_503}
    assert sum(d[BASE_OAK] for p, d in due.items() if p.startswith("2026-27")) == 310_009


def test_a_move_mid_term_splits_the_due_between_two_schools() -> None:
    # Band B: £3,100 generally, £4,500 at special schools. Moved from Oak (mainstream) to
    # Elm (special) from 1 Nov: 61 days at each in the autumn term.
    # Oak: 310000 × 4/12 × 61/122 = 310000/6 = 51666.67p → 51667p
    # Elm: 450000 × 4/12 × 61/122 = 450000/6 = 75000p
    # Spring at Elm: 450000 × 3/12 = 112500p (cumulative 187500p, nothing to round);
    # nothing more is due to Oak.
    plan = plan_of(issued("B"), ev.PlacementMoved("P1", date(2025, 11, 1), ELM))
    terms = make_terms({"2025-26": {"B": 310_000}}, special={"2025-26": {"B": 450_000}})
    assert dues(plan, [AUTUMN, SPRING], terms) == {
        "2025-26/autumn": {BASE_OAK: 51_667, BASE_ELM: 75_000},
        "2025-26/spring": {BASE_ELM: 112_500},
    }


def test_cumulative_rounding_is_kept_per_school() -> None:
    # Band X (310009p) at Oak for the autumn, moved to Ash (resourced, no override) from 1 Jan.
    # Oak autumn: 310009/3 = 103336.33p → 103336p.
    # Ash spring: 310009/4 = 77502.25p → 77502p (its own cumulative, not Oak's remainder).
    # Ash summer: cumulative 310009 × 8/12 = 206672.67p → 206673p; due 206673 − 77502 = 129171p.
    plan = plan_of(issued("X"), ev.PlacementMoved("P1", date(2026, 1, 1), ASH))
    terms = make_terms({"2025-26": {"X": 310_009}, "2026-27": {"X": 310_009}})
    assert dues(plan, YEAR, terms) == {
        "2025-26/autumn": {BASE_OAK: 103_336},
        "2025-26/spring": {(ASH, "base"): 77_502},
        "2025-26/summer": {(ASH, "base"): 129_171},
    }


def test_summer_starts_on_the_financial_year_boundary_and_uses_the_new_tariff() -> None:
    # Issued 1 Jan 2026 on band B: £3,100 in 2025-26, £3,200 in 2026-27.
    # spring (FY 2025-26): 310000 × 3/12 = 77500p
    # summer (FY 2026-27): 320000 × 5/12 = 133333.33p; cumulative 210833.33p → 210833p;
    #                      due 210833 − 77500 = 133333p
    plan = plan_of(issued("B", effective=date(2026, 1, 1)))
    terms = make_terms({"2025-26": {"B": 310_000}, "2026-27": {"B": 320_000}})
    assert [(s.start, s.annual.base) for s in stretches(plan, SUMMER, terms)] == [
        (date(2026, 4, 1), 320_000)]  # one stretch: no cut inside summer
    assert dues(plan, YEAR, terms) == {
        "2025-26/spring": {BASE_OAK: 77_500},
        "2025-26/summer": {BASE_OAK: 133_333},
    }


def test_the_financial_year_boundary_changes_nothing_when_tariffs_are_the_same() -> None:
    # Same £3,100 in both years: spring 77500p; summer 310000 × 5/12 = 129166.67p,
    # cumulative 206666.67p → 206667p; due 206667 − 77500 = 129167p.
    plan = plan_of(issued("B", effective=date(2026, 1, 1)))
    terms = make_terms({"2025-26": {"B": 310_000}, "2026-27": {"B": 310_000}})
    assert dues(plan, YEAR, terms) == {
        "2025-26/spring": {BASE_OAK: 77_500},
        "2025-26/summer": {BASE_OAK: 129_167},
    }


def test_a_period_spanning_1_april_is_cut_at_the_financial_year_boundary() -> None:
    # An LA's own period 15 Mar - 14 Apr 2026 (17 + 14 = 31 days), share 1/12.
    # 15-31 Mar: 310000 × 1/12 × 17/31;  1-14 Apr: 320000 × 1/12 × 14/31
    # = (5270000 + 4480000) / 372 = 9750000/372 = 26209.68p → 26210p.
    easter = Period(date(2026, 3, 15), date(2026, 4, 14), "2025-26/easter", Fraction(1, 12))
    plan = plan_of(issued("B"))
    terms = make_terms({"2025-26": {"B": 310_000}, "2026-27": {"B": 320_000}})
    found = stretches(plan, easter, terms)
    assert [(s.start, s.days, s.annual.base) for s in found] == [
        (date(2026, 3, 15), 17, 310_000), (date(2026, 4, 1), 14, 320_000)]
    assert dues(plan, [easter], terms) == {"2025-26/easter": {BASE_OAK: 26_210}}


def test_a_plan_ceasing_from_1_march_is_funded_to_28_february() -> None:
    # autumn: 310000/3 = 103333.33p → 103333p
    # spring: 1 Jan - 28 Feb = 31 + 28 = 59 of 90 days: 310000 × 3/12 × 59/90
    #         = 18290000/360 = 50805.56p; cumulative 154138.89p → 154139p;
    #         due 154139 − 103333 = 50806p
    # summer: nothing.
    plan = plan_of(issued("B"), ev.PlanCeased("P1", date(2026, 3, 1), "left the LA"))
    terms = make_terms({"2025-26": {"B": 310_000}})
    assert [(s.start, s.end_exclusive, s.days) for s in stretches(plan, SPRING, terms)] == [
        (date(2026, 1, 1), date(2026, 3, 1), 59)]
    assert stretches(plan, SUMMER, terms) == []
    assert dues(plan, YEAR, terms) == {
        "2025-26/autumn": {BASE_OAK: 103_333},
        "2025-26/spring": {BASE_OAK: 50_806},
    }


def test_hours_then_protected_band_pays_base_and_protection_components() -> None:
    # 25 h at Oak from 1 Sep 2025: 25 × 1181 × 38 − 600000 = 1121950 − 600000 = 521950p.
    # Transferred to band C (£4,000) from 1 Nov, prior 521950p protected to 31 Jan 2026.
    # autumn base: 521950/6 (hours, 61 days) + 400000/6 (band, 61 days) = 921950/6
    #              = 153658.33p → 153658p
    # autumn protection: (521950 − 400000)/6 = 121950/6 = 20325p
    # spring base: 400000 × 3/12 = 100000p; cumulative 253658.33p → 253658p → 100000p
    # spring protection: 1-31 Jan only (31 of 90 days): 121950 × 3/12 × 31/90 = 10501.25p.
    #   Base and protection are rounded as one: the total so far 173983.33 + 110501.25
    #   = 284484.58p → 284485p, less the base so far 253658p = 30827p of protection,
    #   due 30827 − 20325 = 10502p
    # summer base: 400000 × 5/12 = 166666.67p; cumulative 420325p; due 420325 − 253658 = 166667p
    #   total so far 451151.25p → 451151p, less 420325p = 30826p of protection for the year,
    #   due 30826 − 30827 = −1p: the year's total, 451151p, is its exact total rounded once
    plan = plan_of(issued(None, hours=Decimal(25)),
                   ev.TransferredToBand("P1", date(2025, 11, 1), "C", 521_950, date(2026, 1, 31)))
    terms = make_terms({"2025-26": {"C": 400_000}, "2026-27": {"C": 400_000}})
    spring = stretches(plan, SPRING, terms)
    assert [(s.start, s.days, s.annual) for s in spring] == [
        (date(2026, 1, 1), 31, Annual(Fraction(400_000), Fraction(121_950))),
        (date(2026, 2, 1), 59, Annual(Fraction(400_000), Fraction(0))),
    ]
    assert dues(plan, YEAR, terms) == {
        "2025-26/autumn": {BASE_OAK: 153_658, PROT_OAK: 20_325},
        "2025-26/spring": {BASE_OAK: 100_000, PROT_OAK: 10_502},
        "2025-26/summer": {BASE_OAK: 166_667, PROT_OAK: -1},
    }


def test_missing_terms_lists_every_missing_item_in_one_error() -> None:
    # On hours from 1 Sep 2025 with no hourly rate for 2025-26, then band D from 1 Jan 2026
    # with a tariff for D in 2025-26 only: autumn lacks the rate, summer lacks D in 2026-27.
    plan = plan_of(issued(None, hours=Decimal(20)),
                   ev.TransferredToBand("P1", date(2026, 1, 1), "D", 297_560))
    terms = make_terms({"2025-26": {"D": 700_000}}, rates=())
    with pytest.raises(MissingTerms) as missing:
        dues(plan, YEAR, terms)
    assert missing.value.missing == [
        "no hourly rate for financial year 2025-26 (plan P1, 2025-26/autumn)",
        "no tariff for band D in financial year 2026-27 (plan P1, 2025-26/summer)",
    ]
    assert "no hourly rate for financial year 2025-26" in str(missing.value)
    assert "no tariff for band D in financial year 2026-27" in str(missing.value)


def test_missing_terms_within_one_period_lists_both_financial_years() -> None:
    # A period across 1 April with no tariff for band D in either financial year.
    easter = Period(date(2026, 3, 15), date(2026, 4, 14), "2025-26/easter", Fraction(1, 12))
    plan = plan_of(issued("D"))
    with pytest.raises(MissingTerms) as missing:
        stretches(plan, easter, make_terms({"2025-26": {"B": 310_000}}))
    assert missing.value.missing == [
        "no tariff for band D in financial year 2025-26 (plan P1, 2025-26/easter)",
        "no tariff for band D in financial year 2026-27 (plan P1, 2025-26/easter)",
    ]


def test_nothing_is_due_outside_the_plans_life() -> None:
    plan = plan_of(issued("B", effective=date(2026, 4, 1)))
    terms = make_terms({"2025-26": {"B": 310_000}, "2026-27": {"B": 310_000}})
    assert stretches(plan, AUTUMN, terms) == []
    assert dues(plan, [AUTUMN, SPRING], terms) == {}
    # A plan starting on the last day of a term: 1 of 90 spring days of 310000 × 3/12
    # = 77500/90 = 861.11p → 861p.
    last_day = plan_of(issued("B", effective=date(2026, 3, 31)))
    assert dues(last_day, [SPRING], terms) == {"2025-26/spring": {BASE_OAK: 861}}
