"""The money oracle's own tests (tests/oracle.py; issue 27).

The oracle must land on the figures already worked out by hand elsewhere in the suite (each
test below names its source) and on new worked examples: exact half pennies, cumulative
rounding, a leap-year February, moves, backdated changes, cushions, and DESIGN's precise
protection. No database: the oracle reads plain facts. Every expected amount is worked out
in the comments, to the penny.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from oracle import (
    DESIGN,
    PRODUCT_TODAY,
    DayState,
    DueKey,
    LedgerState,
    OracleError,
    Policy,
    RunResult,
    annual_on,
    dues,
    fold_reference,
    numbered,
    paid_from,
    periods_through,
    round_half_up,
    run,
)
from topup_ledger.domain import events as ev

OAK, ELM, BEACON, ASH = "100001", "100002", "100003", "100004"
SCHOOLS = (ev.SchoolAdded(OAK, "Oak Primary", "mainstream"), ev.SchoolAdded(ELM, "Elm Academy", "mainstream"),
           ev.SchoolAdded(BEACON, "Beacon Special", "special"),
           ev.SchoolAdded(ASH, "Ash Academy (resourced provision)", "resourced"))
AUTUMN, SPRING, SUMMER = "2025-26/autumn", "2025-26/spring", "2025-26/summer"
BANDS = {"B": 310_000, "C": 500_000, "D": 700_000}  # as tests/test_payments.py
YEARS = ("2025-26", "2026-27")
D = date
FIRST_DAY = D(2025, 9, 1)


def reference(*, rate: int = 1200, rates: dict[str, int] | None = None,
              tariffs: dict[str, dict[str, int]] | None = None,
              special: dict[str, dict[str, int]] | None = None,
              extra: tuple[ev.Fact, ...] = ()) -> list[ev.Fact]:
    """The four schools; an hourly rate (pence) × 38 weeks less £6,000 for each year; tariffs."""
    facts: list[ev.Fact] = list(SCHOOLS)
    for year, pence in (rates or dict.fromkeys(YEARS, rate)).items():
        facts.append(ev.HourlyRateSet(year, pence, Decimal(38), 600_000))
    for year, bands in (tariffs or dict.fromkeys(YEARS, BANDS)).items():
        facts.append(ev.TariffSet(year, tuple(sorted(bands.items()))))
    for year, bands in (special or {}).items():
        facts.append(ev.TariffSet(year, tuple(sorted(bands.items())), "special"))
    return [*facts, *extra]


def issued(school: str = OAK, effective: date = FIRST_DAY, *, band: str | None = None,
           hours: str | None = None, plan: str = "P1") -> ev.PlanIssued:
    return ev.PlanIssued(plan, f"PR-{plan}", school, effective, band=band,
                         hours=Decimal(hours) if hours else None)


def one_plan(ref: list[ev.Fact], *facts: ev.Fact) -> LedgerState:
    return LedgerState(ref, {"P1": numbered("P1", *facts)})


def due_of(ledger: LedgerState, through: str,
           policy: Policy = PRODUCT_TODAY) -> dict[tuple[str, str, str], int]:
    """(period, school, component) → pence for plan P1."""
    return {(k.period, k.school, k.component): v for k, v in dues(ledger, through, policy).items()
            if k.plan == "P1"}


def lines(result: RunResult) -> list[tuple[str, str, str, int, str]]:
    """(school, kind, period, pence, component), as tests/test_payments.py compares them."""
    return [(line.school, line.kind, line.period, line.amount, line.component) for line in result.lines]


def state(school: str = OAK, *, band: str | None = None, hours: str | None = None) -> DayState:
    return DayState(school, "band" if band else "hours", Decimal(hours) if hours else None, band)


def rate_1181(tariffs: dict[str, dict[str, int]] | None = None, *,
              special: dict[str, dict[str, int]] | None = None,
              years: tuple[str, ...] = YEARS) -> list[ev.Fact]:
    """tests/test_entitlement.py's terms: £11.81 an hour × 38 weeks less £6,000."""
    return reference(rates=dict.fromkeys(years, 1181), tariffs=tariffs or {"2025-26": {}}, special=special)


# Money.


@pytest.mark.parametrize(("exact", "pence"), [
    (Fraction(1, 2), 1), (Fraction(5, 2), 3), (Fraction(249, 100), 2), (Fraction(251, 100), 3),
    (Fraction(-5, 2), -3), (Fraction(-1, 3), 0), (Fraction(310_000 * 5, 12), 129_167),
])
def test_round_half_up(exact: Fraction, pence: int) -> None:
    # The cases of tests/test_money.py::test_round_half_up_whole_pence_halves_away_from_zero.
    assert round_half_up(exact) == pence


# Annual amounts: reproducing tests/test_entitlement.py.


def test_hours_basis_figures_of_the_entitlement_tests() -> None:
    ref = fold_reference([*rate_1181(), ev.HourlyRateSet("2026-27", 1250, Decimal(39), 600_000)])

    def base(s: DayState, day: date) -> Fraction:
        return annual_on(ref, s, day, PRODUCT_TODAY)[0]

    # test_hours_basis_is_hours_times_rate_times_weeks_less_the_threshold_at_mainstream:
    # 20 × 1181 × 38 − 600000 = 297560p; 32.5 × 1181 × 38 − 600000 = 858535p.
    assert base(state(hours="20"), D(2025, 9, 1)) == 297_560
    assert base(state(hours="32.5"), D(2026, 3, 31)) == 858_535
    # test_hours_basis_is_never_below_zero: 10 h → 0; 13.36 h → 0; 13.37 h → 18.86p.
    assert base(state(hours="10"), D(2025, 9, 1)) == 0
    assert base(state(hours="13.36"), D(2025, 9, 1)) == 0
    assert base(state(hours="13.37"), D(2025, 9, 1)) == Fraction(1886, 100)
    # test_hours_basis_has_no_threshold_outside_mainstream: 897560p, 448780p, 549755.5p.
    assert base(state(BEACON, hours="20"), D(2025, 9, 1)) == 897_560
    assert base(state(BEACON, hours="10"), D(2025, 9, 1)) == 448_780
    assert base(state(BEACON, hours="12.25"), D(2025, 9, 1)) == Fraction(1_099_511, 2)
    # test_hours_basis_uses_the_rate_of_the_financial_year_of_the_day:
    # 31 Mar 2026: 297560p; 1 Apr 2026: 20 × 1250 × 39 − 600000 = 375000p.
    assert base(state(hours="20"), D(2026, 3, 31)) == 297_560
    assert base(state(hours="20"), D(2026, 4, 1)) == 375_000


def test_band_basis_figures_of_the_entitlement_tests() -> None:
    # test_band_basis_uses_the_tariff_of_the_financial_year_with_a_setting_override and
    # test_a_tariff_revision_replaces_the_bands_it_names.
    facts = rate_1181({"2025-26": {"B": 310_000, "D": 700_000}, "2026-27": {"B": 320_000}},
                      special={"2025-26": {"B": 450_000}})
    ref = fold_reference(facts)

    def base(s: DayState, day: date) -> Fraction:
        return annual_on(ref, s, day, PRODUCT_TODAY)[0]

    assert base(state(band="B"), D(2026, 3, 31)) == 310_000
    assert base(state(band="B"), D(2026, 4, 1)) == 320_000  # FY 2026-27
    assert base(state(BEACON, band="B"), D(2025, 9, 1)) == 450_000  # the special-school override
    assert base(state(ASH, band="B"), D(2025, 9, 1)) == 310_000  # resourced: no override
    assert base(state(BEACON, band="D"), D(2025, 9, 1)) == 700_000  # override names no D
    assert base(state(BEACON, band="B"), D(2026, 4, 1)) == 320_000  # no special tariff that year
    revised = fold_reference([*facts, ev.TariffSet("2025-26", (("B", 315_000),), reason="revision")])
    assert annual_on(revised, state(band="B"), D(2025, 9, 1), PRODUCT_TODAY)[0] == 315_000
    assert annual_on(revised, state(band="D"), D(2025, 9, 1), PRODUCT_TODAY)[0] == 700_000
    with pytest.raises(OracleError, match="no tariff for band C in financial year 2025-26"):
        annual_on(ref, state(band="C"), D(2025, 9, 1), PRODUCT_TODAY)


# Dues: reproducing tests/test_entitlement.py.


def test_band_b_autumn_and_a_band_change_on_1_november() -> None:
    # test_band_b_at_mainstream_for_the_autumn_term: 310000 × 4/12 = 103333.33 → 103333.
    ref = rate_1181({"2025-26": {"B": 310_000, "D": 700_000}})
    assert due_of(one_plan(ref, issued(band="B")), AUTUMN) == {(AUTUMN, OAK, "base"): 103_333}
    # test_a_band_change_on_1_november_splits_the_autumn_term_61_and_61_days:
    # (310000 + 700000)/6 = 168333.33 → 168333.
    changed = one_plan(ref, issued(band="B"), ev.BandChanged("P1", D(2025, 11, 1), "D", "annual-review"))
    assert due_of(changed, AUTUMN) == {(AUTUMN, OAK, "base"): 168_333}


def test_cumulative_rounding_across_three_terms_and_again_each_academic_year() -> None:
    # test_cumulative_rounding_across_the_three_terms_of_a_year: band X = 310009p a year:
    # 103336.33 → 103336; 180838.58 → 180839 (77503); 310009 (129170); the year adds up.
    # test_cumulative_rounding_starts_again_each_academic_year: 2026-27 again 103336, 77503.
    ref = rate_1181({y: {"X": 310_009} for y in ("2025-26", "2026-27", "2027-28")})
    due = due_of(one_plan(ref, issued(band="X")), "2026-27/summer")
    assert {k: v for k, v in due.items() if k[0].startswith("2025-26")} == {
        (AUTUMN, OAK, "base"): 103_336, (SPRING, OAK, "base"): 77_503, (SUMMER, OAK, "base"): 129_170}
    assert due["2026-27/autumn", OAK, "base"] == 103_336
    assert due["2026-27/spring", OAK, "base"] == 77_503
    assert sum(v for k, v in due.items() if k[0].startswith("2026-27")) == 310_009


def test_a_move_mid_term_and_rounding_kept_per_school() -> None:
    # test_a_move_mid_term_splits_the_due_between_two_schools: B £3,100, £4,500 at special
    # schools; moved Oak → special from 1 Nov: 310000/6 = 51666.67 → 51667; 450000/6 = 75000;
    # spring at the special school 112500.
    ref = rate_1181({"2025-26": {"B": 310_000}}, special={"2025-26": {"B": 450_000}})
    moved = one_plan(ref, issued(band="B"), ev.PlacementMoved("P1", D(2025, 11, 1), BEACON))
    assert due_of(moved, SPRING) == {
        (AUTUMN, OAK, "base"): 51_667, (AUTUMN, BEACON, "base"): 75_000, (SPRING, BEACON, "base"): 112_500}
    # test_cumulative_rounding_is_kept_per_school: X = 310009p, Oak for autumn (103336), Ash
    # from 1 Jan: 77502.25 → 77502; then 206672.67 → 206673, 129171.
    ref = rate_1181({y: {"X": 310_009} for y in YEARS})
    moved = one_plan(ref, issued(band="X"), ev.PlacementMoved("P1", D(2026, 1, 1), ASH))
    assert due_of(moved, SUMMER) == {
        (AUTUMN, OAK, "base"): 103_336, (SPRING, ASH, "base"): 77_502, (SUMMER, ASH, "base"): 129_171}


def test_summer_is_priced_in_the_new_financial_year() -> None:
    # test_summer_starts_on_the_financial_year_boundary_and_uses_the_new_tariff: from 1 Jan on
    # B (£3,100 then £3,200): 77500; 320000 × 5/12 = 133333.33, cumulative 210833.33 → 133333.
    ref = rate_1181({"2025-26": {"B": 310_000}, "2026-27": {"B": 320_000}})
    assert due_of(one_plan(ref, issued(OAK, D(2026, 1, 1), band="B")), SUMMER) == {
        (SPRING, OAK, "base"): 77_500, (SUMMER, OAK, "base"): 133_333}
    # test_the_financial_year_boundary_changes_nothing_when_tariffs_are_the_same: 77500, 129167.
    ref = rate_1181({y: {"B": 310_000} for y in YEARS})
    assert due_of(one_plan(ref, issued(OAK, D(2026, 1, 1), band="B")), SUMMER) == {
        (SPRING, OAK, "base"): 77_500, (SUMMER, OAK, "base"): 129_167}


def test_a_recorded_period_spanning_1_april_is_priced_in_both_financial_years() -> None:
    # test_a_period_spanning_1_april_is_cut_at_the_financial_year_boundary: a period 15 Mar –
    # 14 Apr 2026 (31 days), share 1/12: (310000 × 17 + 320000 × 14) / 372 = 26209.68 → 26210.
    spec = ev.PeriodSpec("2025-26/easter", D(2026, 3, 15), D(2026, 4, 14), "1/12")
    easter = ev.CalendarSet("2025-26", (spec,))
    ref = reference(tariffs={"2025-26": {"B": 310_000}, "2026-27": {"B": 320_000}}, extra=(easter,))
    plan = one_plan(ref, issued(OAK, D(2026, 3, 15), band="B"))
    assert due_of(plan, "2025-26/easter") == {("2025-26/easter", OAK, "base"): 26_210}


def test_a_plan_ceasing_from_1_march_and_nothing_outside_a_plans_life() -> None:
    # test_a_plan_ceasing_from_1_march_is_funded_to_28_february: 103333; spring 59 of 90 days,
    # 50805.56, cumulative 154138.89 → 154139, due 50806; summer nothing.
    ref = rate_1181({y: {"B": 310_000} for y in YEARS})
    ceased = one_plan(ref, issued(band="B"), ev.PlanCeased("P1", D(2026, 3, 1), "left the LA"))
    assert due_of(ceased, SUMMER) == {(AUTUMN, OAK, "base"): 103_333, (SPRING, OAK, "base"): 50_806}
    # test_nothing_is_due_outside_the_plans_life: issued 1 Apr 2026: nothing for autumn or
    # spring; issued on the last day of spring: 77500/90 = 861.11 → 861.
    assert due_of(one_plan(ref, issued(OAK, D(2026, 4, 1), band="B")), SPRING) == {}
    last_day = one_plan(ref, issued(OAK, D(2026, 3, 31), band="B"))
    assert due_of(last_day, SPRING) == {(SPRING, OAK, "base"): 861}


def test_hours_then_protected_band_in_product_today_mode() -> None:
    # test_hours_then_protected_band_pays_base_and_protection_components: 25 h at £11.81 is
    # 521950p; band C £4,000 from 1 Nov, prior 521950 protected to 31 Jan 2026.
    # autumn base 921950/6 → 153658, protection 121950/6 = 20325; spring base 100000,
    # protection 10501.25 cumulative 30826.25 → 30826, 10501; summer base 166667.
    ref = rate_1181({y: {"C": 400_000} for y in YEARS})
    plan = one_plan(ref, issued(hours="25"),
                    ev.TransferredToBand("P1", D(2025, 11, 1), "C", 521_950, D(2026, 1, 31)))
    assert due_of(plan, SUMMER) == {
        (AUTUMN, OAK, "base"): 153_658, (AUTUMN, OAK, "protection"): 20_325,
        (SPRING, OAK, "base"): 100_000, (SPRING, OAK, "protection"): 10_501,
        (SUMMER, OAK, "base"): 166_667,
    }


# Payment runs: reproducing tests/test_payments.py (£12.00 an hour; B £3,100, C £5,000, D £7,000).


def runs(ledgers: list[tuple[LedgerState, str]], policy: Policy = PRODUCT_TODAY) -> list[RunResult]:
    """Runs one after the other, each as known in its own ledger state, paid carried over."""
    paid: dict[DueKey, int] = {}
    results = []
    for ledger, period in ledgers:
        result = run(ledger, period, paid, policy)
        paid = result.paid
        results.append(result)
    return results


def test_band_b_is_paid_its_annual_amount_over_the_year() -> None:
    # test_band_b_is_paid_a_third_in_autumn_and_exactly_its_annual_amount_over_the_year:
    # 103333, 77500, 129167 = 310000.
    ledger = one_plan(reference(), issued(band="B"))
    autumn, spring, summer = runs([(ledger, AUTUMN), (ledger, SPRING), (ledger, SUMMER)])
    assert lines(autumn) == [(OAK, "regular", AUTUMN, 103_333, "base")]
    assert lines(spring) == [(OAK, "regular", SPRING, 77_500, "base")]
    assert lines(summer) == [(OAK, "regular", SUMMER, 129_167, "base")]
    assert sum(summer.paid.values()) == 310_000
    assert autumn.school_totals == {OAK: 103_333}


def test_runs_of_the_payment_tests_on_calendar_days_and_the_new_years_tariff() -> None:
    # test_summer_is_priced_on_the_financial_year_of_its_days: summer 320000 × 5/12;
    # cumulative 314166.67 → 314167, less 180833 = 133334.
    ledger = one_plan(reference(tariffs={"2025-26": BANDS, "2026-27": {"B": 320_000}}), issued(band="B"))
    assert lines(runs([(ledger, SPRING), (ledger, SUMMER)])[1]) == [(OAK, "regular", SUMMER, 133_334, "base")]
    # test_a_plan_issued_mid_term_is_paid_pro_rata_by_calendar_days: 15 Oct, 78 of 122 days:
    # 310000 × 78/366 = 66065.57 → 66066.
    ledger = one_plan(reference(), issued(OAK, D(2025, 10, 15), band="B"))
    assert lines(run(ledger, AUTUMN, {})) == [(OAK, "regular", AUTUMN, 66_066, "base")]
    # test_hours_basis_less_the_threshold_at_mainstream_but_not_at_a_special_school:
    # 25 h × £12 × 38 = £11,400; Oak 540000/3 = 180000; Beacon 1140000/3 = 380000.
    ledger = LedgerState(reference(), {"P1": numbered("P1", issued(OAK, hours="25")),
                                       "P2": numbered("P2", issued(BEACON, hours="25", plan="P2"))})
    assert run(ledger, AUTUMN, {}).school_totals == {OAK: 180_000, BEACON: 380_000}


def test_backdated_band_change_is_arrears_to_the_school_of_that_term() -> None:
    # test_backdated_band_change_is_paid_as_arrears_to_the_school_of_that_term: autumn 103333
    # at Oak; the 1 Nov review B → D recorded later: autumn 505000/3 → 168333, arrears 65000
    # to Oak; spring at Elm on D 175000.
    before = [issued(band="B"), ev.PlacementMoved("P1", D(2026, 1, 1), ELM)]
    first = one_plan(reference(), *before)
    later = one_plan(reference(), *before, ev.BandChanged("P1", D(2025, 11, 1), "D", "annual-review"))
    autumn, spring = runs([(first, AUTUMN), (later, SPRING)])
    assert lines(autumn) == [(OAK, "regular", AUTUMN, 103_333, "base")]
    assert lines(spring) == [(OAK, "arrears", AUTUMN, 65_000, "base"),
                             (ELM, "regular", SPRING, 175_000, "base")]
    assert spring.paid == {DueKey("P1", AUTUMN, OAK, "base"): 168_333,
                           DueKey("P1", SPRING, ELM, "base"): 175_000}


def test_backdated_cessation_and_move_are_clawed_back() -> None:
    # test_backdated_cessation_is_clawed_back: ceased from 1 Feb, known after spring's run:
    # spring 31 of 90 days, cumulative 130027.78 → 130028, due 26695; 26695 − 77500 = −50805.
    facts = [issued(band="B")]
    ceased = one_plan(reference(), *facts, ev.PlanCeased("P1", D(2026, 2, 1), "left the LA"))
    plain = one_plan(reference(), *facts)
    *_, summer = runs([(plain, AUTUMN), (plain, SPRING), (ceased, SUMMER)])
    assert lines(summer) == [(OAK, "clawback", SPRING, -50_805, "base")]
    assert sum(summer.paid.values()) == 103_333 + 26_695
    # test_backdated_move_is_clawed_back_from_one_school_and_paid_to_the_other: moved to Elm
    # from 1 Nov after autumn's run: 51667 each; Oak −51666, Elm +51667, spring 77500.
    moved = one_plan(reference(), *facts, ev.PlacementMoved("P1", D(2025, 11, 1), ELM))
    _, spring = runs([(plain, AUTUMN), (moved, SPRING)])
    assert lines(spring) == [(OAK, "clawback", AUTUMN, -51_666, "base"),
                             (ELM, "arrears", AUTUMN, 51_667, "base"),
                             (ELM, "regular", SPRING, 77_500, "base")]
    assert spring.school_totals == {OAK: -51_666, ELM: 51_667 + 77_500}


def test_corrections_of_a_move_and_of_the_issue() -> None:
    # test_move_mid_term_then_backdated_by_a_correction: moved 1 Dec: Oak 91 days
    # 310000 × 91/366 = 77076.50 → 77077, Elm 31 days 26256.83 → 26257; corrected to 1 Nov:
    # 51667 each: Oak −25410, Elm +25410, spring 77500.
    facts = numbered("P1", issued(band="B"), ev.PlacementMoved("P1", D(2025, 12, 1), ELM))
    fixed = [*facts, ("P1/3",
                     ev.Corrected("P1", "P1/2", "the move was on 1 November", effective=D(2025, 11, 1)))]
    autumn, spring = runs([(LedgerState(reference(), {"P1": facts}), AUTUMN),
                           (LedgerState(reference(), {"P1": fixed}), SPRING)])
    assert lines(autumn) == [(OAK, "regular", AUTUMN, 77_077, "base"),
                             (ELM, "regular", AUTUMN, 26_257, "base")]
    assert lines(spring) == [(OAK, "clawback", AUTUMN, -25_410, "base"),
                             (ELM, "arrears", AUTUMN, 25_410, "base"),
                             (ELM, "regular", SPRING, 77_500, "base")]
    # test_correction_of_the_band_the_plan_was_issued_on: C, not B: 166667 − 103333 = 63334
    # arrears; spring 291667 − 166667 = 125000.
    plain = numbered("P1", issued(band="B"))
    c_not_b = [*plain, ("P1/2", ev.Corrected("P1", "P1/1", "it was C", band="C"))]
    _, spring = runs([(LedgerState(reference(), {"P1": plain}), AUTUMN),
                      (LedgerState(reference(), {"P1": c_not_b}), SPRING)])
    assert lines(spring) == [(OAK, "arrears", AUTUMN, 63_334, "base"),
                             (OAK, "regular", SPRING, 125_000, "base")]
    # test_a_correction_that_moves_the_issue_date_into_an_earlier_year_pays_those_days:
    # issued 1 Jun 2025: summer 2024-25 (153 days, FY 2025-26), 92 days:
    # 310000 × 5/12 × 92/153 = 77669.28 → 77669 arrears; autumn 103333.
    june = [*plain, ("P1/2", ev.Corrected("P1", "P1/1", "issued in June", effective=D(2025, 6, 1)))]
    assert lines(run(LedgerState(reference(), {"P1": june}), AUTUMN, {})) == [
        (OAK, "arrears", "2024-25/summer", 77_669, "base"), (OAK, "regular", AUTUMN, 103_333, "base")]


def test_tariff_revision_after_a_run_is_arrears() -> None:
    # test_tariff_revision_after_a_run_is_paid_as_arrears_naming_the_tariff_event: B revised to
    # 320000: autumn 106667 − 103333 = 3334; spring 186667 − 106667 = 80000.
    revised = reference(extra=(ev.TariffSet("2025-26", (("B", 320_000),), reason="revision"),))
    _, spring = runs([(one_plan(reference(), issued(band="B")), AUTUMN),
                      (one_plan(revised, issued(band="B")), SPRING)])
    assert lines(spring) == [(OAK, "arrears", AUTUMN, 3_334, "base"),
                             (OAK, "regular", SPRING, 80_000, "base")]


def test_protection_lines_of_the_payment_tests() -> None:
    # test_protection_is_its_own_line_while_it_applies_and_none_after: 25 h = 540000p; B from
    # 1 Jan protected to 14 Feb: autumn 180000; spring base 77500, protection
    # 230000 × 3/12 × 45/90 = 28750; summer 386666.67 → 386667 − 257500 = 129167.
    ledger = one_plan(reference(), issued(hours="25"),
                      ev.TransferredToBand("P1", D(2026, 1, 1), "B", 540_000, D(2026, 2, 14)))
    autumn, spring, summer = runs([(ledger, AUTUMN), (ledger, SPRING), (ledger, SUMMER)])
    assert lines(autumn) == [(OAK, "regular", AUTUMN, 180_000, "base")]
    assert lines(spring) == [(OAK, "regular", SPRING, 77_500, "base"),
                             (OAK, "protection", SPRING, 28_750, "protection")]
    assert lines(summer) == [(OAK, "regular", SUMMER, 129_167, "base")]
    # test_protection_for_a_whole_term: protected to 31 Dec from 1 Sep: 230000/3 → 76667;
    # base 103333; spring 77500 only.
    ledger = one_plan(reference(), issued(hours="25"),
                      ev.TransferredToBand("P1", D(2025, 9, 1), "B", 540_000, D(2025, 12, 31)))
    autumn, spring = runs([(ledger, AUTUMN), (ledger, SPRING)])
    assert lines(autumn) == [(OAK, "regular", AUTUMN, 103_333, "base"),
                             (OAK, "protection", AUTUMN, 76_667, "protection")]
    assert lines(spring) == [(OAK, "regular", SPRING, 77_500, "base")]


def test_same_run_twice_pays_nothing_and_a_supplementary_run_pays_the_difference() -> None:
    # test_the_same_run_twice_records_nothing_the_second_time and
    # test_a_later_run_for_the_same_term_is_supplementary_and_pays_only_the_difference:
    # 103333 + 166667 = 270000; then B → D from 1 Nov: 168333 − 103333 = 65000, regular.
    two = {"P1": numbered("P1", issued(band="B")), "P2": numbered("P2", issued(ELM, band="C", plan="P2"))}
    reviewed = {**two, "P1": [*two["P1"],
                       ("P1/2", ev.BandChanged("P1", D(2025, 11, 1), "D", "annual-review"))]}
    first, again, supplementary = runs([(LedgerState(reference(), two), AUTUMN),
                                        (LedgerState(reference(), two), AUTUMN),
                                        (LedgerState(reference(), reviewed), AUTUMN)])
    assert first.total == 270_000
    assert again.lines == () and again.total == 0
    assert lines(supplementary) == [(OAK, "regular", AUTUMN, 65_000, "base")]


def test_a_run_for_a_later_year_pays_the_earlier_terms_as_arrears() -> None:
    # test_a_run_for_an_earlier_term_after_a_later_one: 2026-27/autumn first: arrears 103333,
    # 77500, 129167 and regular 103333; then autumn finds nothing; B → D from 1 Nov: autumn
    # +65000 and spring 343333 − 168333 = 175000 less 77500 = 97500.
    ref = reference(tariffs=dict.fromkeys(("2025-26", "2026-27", "2027-28"), BANDS))
    plain = one_plan(ref, issued(band="B"))
    reviewed = one_plan(ref, issued(band="B"), ev.BandChanged("P1", D(2025, 11, 1), "D", "annual-review"))
    later, earlier, after = runs([(plain, "2026-27/autumn"), (plain, AUTUMN), (reviewed, SPRING)])
    assert [line[1:4] for line in lines(later)] == [
        ("arrears", AUTUMN, 103_333), ("arrears", SPRING, 77_500), ("arrears", SUMMER, 129_167),
        ("regular", "2026-27/autumn", 103_333)]
    assert earlier.lines == ()
    assert lines(after) == [(OAK, "arrears", AUTUMN, 65_000, "base"),
                            (OAK, "regular", SPRING, 97_500, "base")]


def test_a_plan_corrected_to_another_school_then_transferred() -> None:
    # test_a_line_says_in_words_every_state_behind_it_and_where_it_is_no_longer_funded: 30 h
    # = 768000p at Oak, autumn 256000 paid; corrected to Elm from the start and to C from 1 Feb:
    # Oak −256000, Elm +256000; spring 768000 × 3/12 × 31/90 + 500000 × 3/12 × 59/90
    # = 66133.33 + 81944.44; cumulative 404077.78 → 404078 − 256000 = 148078.
    facts = numbered("P1", issued(hours="30"))
    known = [*facts, ("P1/2", ev.Corrected("P1", "P1/1", "placed at Elm", school=ELM)),
             ("P1/3", ev.TransferredToBand("P1", D(2026, 2, 1), "C", 768_000))]
    _, spring = runs([(LedgerState(reference(), {"P1": facts}), AUTUMN),
                      (LedgerState(reference(), {"P1": known}), SPRING)])
    assert lines(spring) == [(OAK, "clawback", AUTUMN, -256_000, "base"),
                             (ELM, "arrears", AUTUMN, 256_000, "base"),
                             (ELM, "regular", SPRING, 148_078, "base")]


def test_a_settled_cushion_of_the_payment_tests() -> None:
    # test_a_settled_cushion_pays_nothing_twice: 25 h (540000p) → B from 1 Sep, 50% cushion:
    # base 103333; cushion 50% × 230000 × 4/12 = 38333.33 → 38333; then nothing again.
    cushion = ev.CushionSet(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "first year")
    ledger = one_plan(reference(extra=(cushion,)), issued(hours="25"),
                      ev.TransferredToBand("P1", D(2025, 9, 1), "B", 540_000))
    for policy in (PRODUCT_TODAY, DESIGN):
        first, again = runs([(ledger, AUTUMN), (ledger, AUTUMN)], policy)
        assert lines(first) == [(OAK, "cushion", AUTUMN, 38_333, "cushion"),
                                (OAK, "regular", AUTUMN, 103_333, "base")]
        assert first.lines[0].plan == ""  # a school-level line
        assert again.lines == ()


# Recorded calendars: reproducing tests/test_calendar_monthly_payments.py.

SCHOOL_DAYS = (("apr", 13), ("may", 19), ("jun", 21), ("jul", 16), ("aug", 1), ("sep", 20),
               ("oct", 18), ("nov", 20), ("dec", 15), ("jan", 19), ("feb", 15), ("mar", 17))  # 194


def monthly(start_year: int, days: tuple[tuple[str, int], ...] = SCHOOL_DAYS) -> ev.CalendarSet:
    """Financial year ``start_year``'s months, each's share its school days over 194."""
    year = f"{start_year}-{(start_year + 1) % 100:02d}"
    specs = []
    first = D(start_year, 4, 1)
    total = sum(n for _, n in days)
    for name, n in days:
        after = D(first.year + (first.month == 12), first.month % 12 + 1, 1)
        specs.append(ev.PeriodSpec(f"{year}/{name}", first, after - timedelta(days=1), f"{n}/{total}", n))
        first = after
    return ev.CalendarSet(year, tuple(specs), "we pay monthly")


def test_termly_pro_rata_by_calendar_days() -> None:
    # test_termly_payments_are_pro_rata_by_calendar_days_within_the_term: D from 20 Nov,
    # 42 of 122 days: 700000 × 42/366 = 80327.87 → 80328; 255328 − 80328 = 175000;
    # 546994.54 → 546995 − 255328 = 291667.
    ledger = one_plan(reference(), issued(OAK, D(2025, 11, 20), band="D"))
    assert due_of(ledger, SUMMER) == {(AUTUMN, OAK, "base"): 80_328, (SPRING, OAK, "base"): 175_000,
                                      (SUMMER, OAK, "base"): 291_667}


def test_monthly_calendar_figures() -> None:
    # test_a_month_is_paid_its_school_days_over_the_years_pro_rata_by_calendar_days: from 15 Oct
    # 310000 × 18/194 × 17/31 = 3060000/194 = 15773.19 → 15773; November cumulative
    # 9260000/194 = 47731.96 → 47732 − 15773 = 31959.
    ledger = one_plan(reference(extra=(monthly(2025),)), issued(OAK, D(2025, 10, 15), band="B"))
    assert due_of(ledger, "2025-26/nov") == {("2025-26/oct", OAK, "base"): 15_773,
                                             ("2025-26/nov", OAK, "base"): 31_959}
    # test_a_whole_year_of_months_adds_up_to_the_annual_amount: from 1 Apr 2025: April 20773,
    # May 30361, August 1598, the year 310000; April 2026 restarts: 20773.
    ref = reference(extra=(monthly(2025), monthly(2026)))
    due = due_of(one_plan(ref, issued(OAK, D(2025, 4, 1), band="B")), "2026-27/apr")
    assert [due[f"2025-26/{m}", OAK, "base"] for m in ("apr", "may", "aug")] == [20_773, 30_361, 1_598]
    assert sum(v for k, v in due.items() if k[0].startswith("2025-26")) == 310_000
    assert due["2026-27/apr", OAK, "base"] == 20_773
    # test_a_month_with_no_school_days_pays_nothing_and_is_stored_as_its_schema_says: August's
    # day moved to March: August 0; September 27590000/194 = 142216.49 → 142216 − 110258 = 31958.
    no_august = tuple((name, {"aug": 0, "mar": n + 1}.get(name, n)) for name, n in SCHOOL_DAYS)
    ledger = one_plan(reference(extra=(monthly(2025, no_august),)), issued(OAK, D(2025, 4, 1), band="B"))
    due = due_of(ledger, "2025-26/mar")
    assert ("2025-26/aug", OAK, "base") not in due and due["2025-26/sep", OAK, "base"] == 31_958
    assert sum(due.values()) == 310_000


def test_a_backdated_move_within_a_month() -> None:
    # test_a_backdated_move_within_a_month_calendar_splits_the_month_by_calendar_days:
    # November 31959 at Oak; moved to Elm from 16 Nov: 15 of 30 days each, 15979.38 → 15979;
    # December at Elm 39948.45 → 39948 − 15979 = 23969.
    ref = reference(extra=(monthly(2025),))
    facts = [issued(OAK, D(2025, 11, 1), band="B")]
    nov, dec = runs([(one_plan(ref, *facts), "2025-26/nov"),
                     (one_plan(ref, *facts, ev.PlacementMoved("P1", D(2025, 11, 16), ELM)), "2025-26/dec")])
    assert lines(nov) == [(OAK, "regular", "2025-26/nov", 31_959, "base")]
    assert lines(dec) == [(OAK, "clawback", "2025-26/nov", 15_979 - 31_959, "base"),
                          (ELM, "arrears", "2025-26/nov", 15_979, "base"),
                          (ELM, "regular", "2025-26/dec", 23_969, "base")]


def test_a_recorded_calendar_replaces_the_default_terms_it_overlaps() -> None:
    # test_a_recorded_calendar_replaces_the_default_terms_it_overlaps: FY 2025-26's months
    # displace the terms of academic years 2024-25 and 2025-26; 2026-27's terms remain.
    ledger = one_plan(reference(extra=(monthly(2025),)), issued(band="B"))
    with pytest.raises(OracleError, match="not a period in the payment calendar"):
        dues(ledger, AUTUMN)
    assert [p.id for p in periods_through(ledger, "2026-27/summer")][-4:] == [
        "2025-26/mar", "2026-27/autumn", "2026-27/spring", "2026-27/summer"]
    # … and 1 Apr – 31 Aug 2026 is in no period: a plan funded then cannot be priced.
    with pytest.raises(OracleError, match="no payment period in the calendar covers 2026-04-01"):
        dues(ledger, "2026-27/autumn")


# New worked examples.


def test_a_half_penny_due_rounds_up() -> None:
    """Band H = £3,000.03 = 300003p, from 1 Nov 2025 (61 of autumn's 122 days):

    autumn  300003 × 4/12 × 61/122 = 300003/6 = 50000.5p exactly → 50001p half up
            (half down, or Python's round-half-even, would give 50000p);
    spring  + 300003 × 3/12 = 75000.75p: cumulative 125001.25 → 125001; due 75000p;
    summer  + 300003 × 5/12 = 125001.25p: cumulative 250002.5p exactly → 250003;
            due 250003 − 125001 = 125002p.
    The year pays 250003p: its exact 300003 × 5/6 = 250002.5p, half up.
    """
    ref = reference(tariffs={year: {"H": 300_003} for year in YEARS})
    due = due_of(one_plan(ref, issued(OAK, D(2025, 11, 1), band="H")), SUMMER)
    assert due == {(AUTUMN, OAK, "base"): 50_001, (SPRING, OAK, "base"): 75_000,
                   (SUMMER, OAK, "base"): 125_002}
    assert round(Fraction(100_001, 2)) == 50_000  # what round-half-even would have paid


def test_a_half_penny_annual_amount_on_hours() -> None:
    """12.25 h at a special school (no threshold) at £11.81 × 38 weeks:
    12.25 × 1181 × 38 = 549755.5p a year exactly (tests/test_entitlement.py's figure).

    autumn  549755.5 × 4/12 = 183251.83p → 183252p
    spring  cumulative 549755.5 × 7/12 = 320690.71p → 320691p; due 137439p
    summer  cumulative 549755.5p → 549756p (half up); due 549756 − 320691 = 229065p
    """
    ref = rate_1181()
    due = due_of(one_plan(ref, issued(BEACON, hours="12.25")), SUMMER)
    assert due == {(AUTUMN, BEACON, "base"): 183_252, (SPRING, BEACON, "base"): 137_439,
                   (SUMMER, BEACON, "base"): 229_065}
    assert sum(due.values()) == 549_756


@pytest.mark.parametrize("annual", [310_000, 310_001, 310_002, 310_009, 300_003, 1, 7, 11])
def test_cumulative_rounding_over_three_terms_adds_up_to_the_annual_amount(annual: int) -> None:
    """A plan on one band at one school all year is paid exactly its annual amount, whatever
    the thirds and twelfths round to; e.g. 310001p: autumn 103333.67 → 103334; spring
    cumulative 180833.92 → 180834, 77500; summer 310001 − 180834 = 129167."""
    ref = reference(tariffs={year: {"X": annual} for year in YEARS})
    due = due_of(one_plan(ref, issued(band="X")), SUMMER)
    assert sum(due.values()) == annual
    if annual == 310_001:
        assert due == {(AUTUMN, OAK, "base"): 103_334, (SPRING, OAK, "base"): 77_500,
                       (SUMMER, OAK, "base"): 129_167}


def test_a_leap_year_february_ceasing() -> None:
    """Academic year 2027-28: spring 1 Jan – 31 Mar 2028 has 91 days (29 February).

    Band B £3,100 from 1 Sep 2027, ceasing with effect from 1 Mar 2028: funded to 29 Feb,
    31 + 29 = 60 of 91 days.
    autumn  310000 × 4/12 = 103333.33p → 103333p
    spring  310000 × 3/12 × 60/91 = 4650000/91 = 51098.90p; cumulative 154432.23 → 154432;
            due 154432 − 103333 = 51099p
    Ceasing from 29 Feb instead: 59 of 91 days, 77500 × 59/91 = 50247.25p; cumulative
    153580.59 → 153581; due 50248p.
    """
    ref = reference(tariffs={"2027-28": {"B": 310_000}})
    on_1_march = one_plan(ref, issued(OAK, D(2027, 9, 1), band="B"),
                          ev.PlanCeased("P1", D(2028, 3, 1), "left the LA"))
    assert due_of(on_1_march, "2027-28/summer") == {
        ("2027-28/autumn", OAK, "base"): 103_333, ("2027-28/spring", OAK, "base"): 51_099}
    on_29_february = one_plan(ref, issued(OAK, D(2027, 9, 1), band="B"),
                              ev.PlanCeased("P1", D(2028, 2, 29), "left the LA"))
    assert due_of(on_29_february, "2027-28/spring")["2027-28/spring", OAK, "base"] == 50_248


def test_a_move_mid_term_splits_the_year_between_two_schools() -> None:
    """Band D £7,000, Oak to Elm (both mainstream) from 16 Nov 2025.

    autumn  Oak 1 Sep – 15 Nov = 30 + 31 + 15 = 76 days: 700000 × 4/12 × 76/122
            = 53200000/366 = 145355.19p → 145355p
            Elm 16 Nov – 31 Dec = 15 + 31 = 46 days: 32200000/366 = 87978.14p → 87978p
    spring  Elm cumulative 87978.14 + 175000 = 262978.14 → 262978; due 175000p
    summer  Elm cumulative 262978.14 + 291666.67 = 554644.81 → 554645; due 291667p
    Oak 145355p + Elm 554645p = 700000p: the year's amount, split by days.
    """
    ledger = one_plan(reference(), issued(band="D"), ev.PlacementMoved("P1", D(2025, 11, 16), ELM))
    autumn, spring, summer = runs([(ledger, AUTUMN), (ledger, SPRING), (ledger, SUMMER)])
    assert lines(autumn) == [(OAK, "regular", AUTUMN, 145_355, "base"),
                             (ELM, "regular", AUTUMN, 87_978, "base")]
    assert lines(spring) == [(ELM, "regular", SPRING, 175_000, "base")]
    assert lines(summer) == [(ELM, "regular", SUMMER, 291_667, "base")]
    paid = summer.paid
    assert sum(v for k, v in paid.items() if k.school == OAK) == 145_355
    assert sum(v for k, v in paid.items() if k.school == ELM) == 554_645


def test_a_backdated_band_change_down_is_clawed_back_in_a_later_run() -> None:
    """Band D from 1 Sep; autumn paid 700000/3 = 233333.33 → 233333p. Recorded in January:
    the 1 Nov review moved the child to B.

    autumn as known now: (700000 × 61 + 310000 × 61) / 366 = 168333.33 → 168333p;
            claw-back 168333 − 233333 = −65000p
    spring  on B: cumulative 168333.33 + 77500 = 245833.33 → 245833; regular 77500p
    After the run, paid equals due for autumn and spring.
    """
    facts = [issued(band="D")]
    reviewed = one_plan(reference(), *facts, ev.BandChanged("P1", D(2025, 11, 1), "B", "annual-review"))
    autumn, spring = runs([(one_plan(reference(), *facts), AUTUMN), (reviewed, SPRING)])
    assert lines(autumn) == [(OAK, "regular", AUTUMN, 233_333, "base")]
    assert lines(spring) == [(OAK, "clawback", AUTUMN, -65_000, "base"),
                             (OAK, "regular", SPRING, 77_500, "base")]
    assert spring.school_totals == {OAK: 12_500}
    assert spring.paid == dues(reviewed, SPRING)


CUSHION = ev.CushionSet(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "first year of bands")


def three_transfers(protect_first_until: date | None = None) -> LedgerState:
    """Three plans at Oak (£12.00 an hour × 38 weeks − £6,000), each moved to a band on 1 Sep:
    P1 25 h = 540000p → B 310000p: a loss of 230000p
    P2 20 h = 312000p → C 500000p: a gain of 188000p
    P3 30 h = 768000p → D 700000p: a loss of 68000p"""
    plans = {}
    for plan, hours, band, prior in (("P1", "25", "B", 540_000), ("P2", "20", "C", 312_000),
                                     ("P3", "30", "D", 768_000)):
        protect = protect_first_until if plan == "P1" else None
        plans[plan] = numbered(plan, issued(hours=hours, plan=plan),
                               ev.TransferredToBand(plan, D(2025, 9, 1), band, prior, protect))
    return LedgerState(reference(extra=(CUSHION,)), plans)


def cushion_due(ledger: LedgerState, policy: Policy) -> dict[str, int]:
    return {k.period: v for k, v in dues(ledger, SUMMER, policy).items() if k.component == "cushion"}


def test_a_cushion_over_several_plans_nets_gains_against_losses() -> None:
    """The school's net reduction: 230000 − 188000 + 68000 = 110000p a year; 50% = 55000p.

    autumn  55000 × 4/12 = 18333.33p → 18333p
    spring  cumulative 55000 × 7/12 = 32083.33 → 32083; due 13750p
    summer  cumulative 55000p; due 55000 − 32083 = 22917p
    Both policies agree here (no protection; the same prices every year).
    """
    for policy in (PRODUCT_TODAY, DESIGN):
        assert cushion_due(three_transfers(), policy) == {AUTUMN: 18_333, SPRING: 13_750, SUMMER: 22_917}
    result = run(three_transfers(), AUTUMN, {})
    # base 310000/3 → 103333, 500000/3 → 166667, 700000/3 → 233333; cushion 18333.
    assert result.school_totals == {OAK: 103_333 + 166_667 + 233_333 + 18_333}
    assert [line.kind for line in result.lines if line.plan == ""] == ["cushion"]


def test_a_cushion_when_one_plan_is_also_protected_differs_between_policies() -> None:
    """P1 (the 230000p loss) is also protected to 31 Aug 2026.

    product-today: the reduction is prior − base − protection, so P1 loses nothing while
    protected; the others net 68000 − 188000 = −120000p: no cushion at all.
    design: the cushion is the school's net reduction at transfer, 110000p, whatever
    protection pays: 50% → 18333, 13750, 22917 as before.
    """
    ledger = three_transfers(protect_first_until=D(2026, 8, 31))
    assert cushion_due(ledger, PRODUCT_TODAY) == {}
    assert cushion_due(ledger, DESIGN) == {AUTUMN: 18_333, SPRING: 13_750, SUMMER: 22_917}


def test_design_32_5_hours_to_band_d_protected_is_paid_exactly_the_years_total() -> None:
    """32.5 h at Oak at £11.81 × 38 weeks: 32.5 × 1181 × 38 − 600000 = 858535p a year (both
    FYs). Band D £7,000 from 1 Nov 2025, protected to 31 Aug 2026. The year's total is
    858535p: hours to 31 Oct, then the larger of prior and D, which is the prior.

    design (base and protection rounded as one amount):
    autumn  base exact 858535/6 + 700000/6 = 259755.83 → 259756; total exact 858535/3
            = 286178.33 → 286178; protection 286178 − 259756 = 26422
    spring  base cumulative 434755.83 → 434756 (175000); total 286178.33 + 214633.75
            = 500812.08 → 500812; protection so far 500812 − 434756 = 66056; due 39634
    summer  base cumulative 434755.83 + 291666.67 = 726422.5 → 726423 (291667); total
            858535; protection so far 858535 − 726423 = 132112; due 66056
    year    726423 + 132112 = 858535p exactly.

    product-today (protection rounded on its own): exact 158535/6 = 26422.5 → 26423;
    cumulative 66056.25 → 66056 (39633); 132112.5 → 132113 (66057): the year pays
    726423 + 132113 = 858536p, a penny more than its total.
    """
    ref = rate_1181({year: {"D": 700_000} for year in YEARS})
    ledger = one_plan(ref, issued(hours="32.5"),
                      ev.TransferredToBand("P1", D(2025, 11, 1), "D", 858_535, D(2026, 8, 31)))
    design = due_of(ledger, SUMMER, DESIGN)
    assert design == {
        (AUTUMN, OAK, "base"): 259_756, (AUTUMN, OAK, "protection"): 26_422,
        (SPRING, OAK, "base"): 175_000, (SPRING, OAK, "protection"): 39_634,
        (SUMMER, OAK, "base"): 291_667, (SUMMER, OAK, "protection"): 66_056,
    }
    assert sum(design.values()) == 858_535
    product = due_of(ledger, SUMMER, PRODUCT_TODAY)
    assert [product[p, OAK, "protection"] for p in (AUTUMN, SPRING, SUMMER)] == [26_423, 39_633, 66_057]
    assert sum(product.values()) == 858_536


def test_design_protection_ends_at_a_band_change_product_today_keeps_it() -> None:
    """25 h (540000p) → B from 1 Sep 2025, protected to 31 Aug 2026; reviewed to C (500000p)
    from 1 Jan 2026.

    autumn  both: base 310000/3 → 103333; protection 230000/3 = 76666.67 → 76667
            (design: total 540000/3 = 180000 less base 103333 = 76667)
    spring  product-today: protection continues, (540000 − 500000) × 3/12 = 10000p;
            design: the review ends protection: nothing.
    """
    ledger = one_plan(reference(), issued(hours="25"),
                      ev.TransferredToBand("P1", D(2025, 9, 1), "B", 540_000, D(2026, 8, 31)),
                      ev.BandChanged("P1", D(2026, 1, 1), "C", "annual-review"))
    for policy in (PRODUCT_TODAY, DESIGN):
        assert due_of(ledger, AUTUMN, policy)[AUTUMN, OAK, "protection"] == 76_667
    assert due_of(ledger, SPRING, PRODUCT_TODAY)[SPRING, OAK, "protection"] == 10_000
    assert (SPRING, OAK, "protection") not in due_of(ledger, SPRING, DESIGN)
    # A move ends it too (design): moved to Elm from 1 Jan instead of the review.
    moved = one_plan(reference(), issued(hours="25"),
                     ev.TransferredToBand("P1", D(2025, 9, 1), "B", 540_000, D(2026, 8, 31)),
                     ev.PlacementMoved("P1", D(2026, 1, 1), ELM))
    assert (SPRING, ELM, "protection") not in due_of(moved, SPRING, DESIGN)
    # product-today: 230000 × 3/12 = 57500 at Elm.
    assert due_of(moved, SPRING, PRODUCT_TODAY)[SPRING, ELM, "protection"] == 57_500


def test_design_prior_follows_corrected_hours_and_each_years_rate() -> None:
    """25 h → B from 1 Sep 2025, protected to 31 Aug 2026; prior 540000p on the event.

    A correction says the plan was 30 h all along: design's prior is 30 h as known now,
    30 × 1200 × 38 − 600000 = 768000p; product-today keeps the event's 540000p.
    autumn  design: total 768000/3 = 256000, base 103333 → protection 152667;
            product-today: 230000/3 → 76667.

    And priced at each protected day's rate: with £12.50 in 2026-27, 25 h in summer is
    25 × 1250 × 38 − 600000 = 587500p.
    summer  design: total cumulative 180000 + 135000 + 587500 × 5/12 (244791.67) = 559791.67
            → 559792; base cumulative 310000; protection so far 249792, less the 134167
            due for autumn and spring (76667 + 57500) = 115625p
            product-today: 230000 × 5/12 = 95833.33; cumulative 230000; due 230000 − 134167
            = 95833p.
    """
    transfer = ev.TransferredToBand("P1", D(2025, 9, 1), "B", 540_000, D(2026, 8, 31))
    facts = numbered("P1", issued(hours="25"), transfer)
    thirty = ev.Corrected("P1", "P1/1", "30 hours all along", hours=Decimal(30))
    corrected = LedgerState(reference(), {"P1": [*facts, ("P1/3", thirty)]})
    assert due_of(corrected, AUTUMN, DESIGN)[AUTUMN, OAK, "protection"] == 152_667
    assert due_of(corrected, AUTUMN, PRODUCT_TODAY)[AUTUMN, OAK, "protection"] == 76_667
    dearer = LedgerState(reference(rates={"2025-26": 1200, "2026-27": 1250}), {"P1": facts})
    design = due_of(dearer, SUMMER, DESIGN)
    assert [design[p, OAK, "protection"] for p in (AUTUMN, SPRING, SUMMER)] == [76_667, 57_500, 115_625]
    product = due_of(dearer, SUMMER, PRODUCT_TODAY)
    assert [product[p, OAK, "protection"] for p in (AUTUMN, SPRING, SUMMER)] == [76_667, 57_500, 95_833]


def test_school_day_hook_pays_the_school_days_on_roll() -> None:
    """DESIGN's monthly rule (not the product's yet): September 2025 has 20 school days, the
    weekdays 3–30 Sep; a plan from Monday 15 Sep is on roll for 12 of them (15–19, 22–26,
    29, 30).

    school days   310000 × 20/194 × 12/20 = 3720000/194 = 19175.26p → 19175p
    calendar days 310000 × 20/194 × 16/30 = 99200000/5820 = 17044.67p → 17045p
    """
    september = frozenset(d for d in (D(2025, 9, 1) + timedelta(days=n) for n in range(30))
                          if d.weekday() < 5 and d.day >= 3)
    assert len(september) == 20
    facts = {"P1": numbered("P1", issued(OAK, D(2025, 9, 15), band="B"))}
    by_school_days = LedgerState(reference(extra=(monthly(2025),)), facts, {"2025-26/sep": september})
    assert due_of(by_school_days, "2025-26/sep") == {("2025-26/sep", OAK, "base"): 19_175}
    by_calendar_days = LedgerState(reference(extra=(monthly(2025),)), facts)
    assert due_of(by_calendar_days, "2025-26/sep") == {("2025-26/sep", OAK, "base"): 17_045}


def test_after_every_run_paid_equals_due() -> None:
    """DESIGN: after any run, for every plan and period up to its own, paid equals due; here
    over a year of changes recorded late (a move, a review, a correction, a cessation)."""
    base = [issued(band="B"), ev.PlacementMoved("P1", D(2025, 11, 16), ELM)]
    known = [
        (base, AUTUMN),
        ([*base, ev.BandChanged("P1", D(2025, 10, 1), "D", "annual-review")], SPRING),
        ([*base, ev.BandChanged("P1", D(2025, 10, 1), "C", "annual-review"),
          ev.PlanCeased("P1", D(2026, 6, 1), "needs met")], SUMMER),
    ]
    paid: dict[DueKey, int] = {}
    for facts, period in known:
        ledger = one_plan(reference(), *facts)
        result = run(ledger, period, paid)
        paid = result.paid
        assert {k: v for k, v in paid.items() if v} == dues(ledger, period)
        assert run(ledger, period, paid).lines == ()


def test_paid_from_the_products_recorded_payments() -> None:
    """``paid_from`` keys the product's SchoolPaid lines as the oracle keys dues, so a
    differential test can carry the product's payments into the oracle's next run: here the
    autumn run of test_a_settled_cushion_pays_nothing_twice (103333 base, 38333 cushion)."""
    def line(plan: str, amount: int, component: str) -> ev.PaymentLine:
        return ev.PaymentLine(plan, "PR-P1" if plan else "", "regular", AUTUMN, amount, "band", "B", 122, "",
                              component=component)

    paid = paid_from([ev.SchoolPaid("2025-26-autumn-r1", AUTUMN, OAK,
                                    (line("", 38_333, "cushion"), line("P1", 103_333, "base")))])
    assert paid == {DueKey("", AUTUMN, OAK, "cushion"): 38_333, DueKey("P1", AUTUMN, OAK, "base"): 103_333}
    cushion = ev.CushionSet(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "first year")
    ledger = one_plan(reference(extra=(cushion,)), issued(hours="25"),
                      ev.TransferredToBand("P1", D(2025, 9, 1), "B", 540_000))
    assert run(ledger, AUTUMN, paid).lines == ()
