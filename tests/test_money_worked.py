"""Worked examples through the product: half pennies and the cushion's boundaries (issue 27).

Each example records its facts with ``Ledger``'s commands and pays with ``pay``; every run's
lines must equal the figures worked out by hand in the test's docstring AND the oracle's run
(``money_support.Driver.pay`` checks the product, with its fast paths on and off, against
``tests/oracle.py`` before the hand figures are compared). The oracle alone is checked on
some of these figures in tests/test_oracle.py; here the product has to land on them too.

Unless an example says otherwise: Oak and Elm are mainstream schools, Beacon a special one;
£12.00 an hour × 38 weeks less a £6,000 threshold; bands B £3,100, C £5,000, D £7,000 and
H £3,000.03 (300,003p, which halves and sixths into half pennies) for 2025-26 and 2026-27;
the default terms (autumn 122 days, 4/12; spring 90, 3/12; summer 153, 5/12). Hours at Oak
before the move to bands: 25 h = 25 × 1,200 × 38 − 600,000 = 540,000p; 20 h = 312,000p;
30 h = 768,000p. Rounding is half up, cumulatively per plan, school and component within
the academic year (docs/rules.md §6). Lines are (plan, school, period, component, kind, pence);
a cushion line's plan is "".
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from money_support import Driver, LineKey

OAK, ELM, BEACON = "100001", "100002", "100003"
AUTUMN, SPRING, SUMMER = "2025-26/autumn", "2025-26/spring", "2025-26/summer"
YEARS = ("2025-26", "2026-27")
BANDS = {"B": 310_000, "C": 500_000, "D": 700_000, "H": 300_003}
D = date


@pytest.fixture
def driver(ledger: object) -> Driver:
    return Driver(ledger)  # type: ignore[arg-type]


def set_up(driver: Driver, *, hourly: int = 1200, bands: dict[str, int] | None = None) -> None:
    for urn, setting in ((OAK, "mainstream"), (ELM, "mainstream"), (BEACON, "special")):
        assert driver.add_school(urn, setting)
    for year in YEARS:
        assert driver.set_rate(year, hourly, Decimal(38), 600_000, "the year's rate")
        assert driver.set_tariff(year, bands or BANDS, None, "the year's tariff")


def paid(driver: Driver, period: str, monkeypatch: pytest.MonkeyPatch) -> list[LineKey]:
    """The run's lines, once the product (fast paths on and off) has matched the oracle."""
    outcome = driver.pay(period, monkeypatch)
    assert outcome.refused is None, outcome.refused
    return outcome.lines


def base(plan: str, school: str, period: str, kind: str, pence: int) -> LineKey:
    return (plan, school, period, "base", kind, pence)


def regular(plan: str, school: str, period: str, pence: int) -> LineKey:
    return base(plan, school, period, "regular", pence)


def cushion(school: str, period: str, kind: str, pence: int) -> LineKey:
    return ("", school, period, "cushion", kind, pence)


# Half pennies.


def test_a_half_penny_due_is_rounded_up(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """H (300,003p) at Oak from 1 Nov 2025: 61 of autumn's 122 days.

    autumn  300,003 × 4/12 × 61/122 = 300,003/6 = 50,000.5p exactly → 50,001p (half up;
            half down or Python's round() would pay 50,000p)
    spring  + 300,003 × 3/12 = 75,000.75p: cumulative 125,001.25p → 125,001p; 75,000p
    summer  + 300,003 × 5/12 = 125,001.25p: cumulative 250,002.5p → 250,003p; 125,002p
    """
    set_up(driver)
    driver.issue("P1", OAK, D(2025, 11, 1), band="H")
    assert paid(driver, AUTUMN, monkeypatch) == [regular("P1", OAK, AUTUMN, 50_001)]
    assert paid(driver, SPRING, monkeypatch) == [regular("P1", OAK, SPRING, 75_000)]
    assert paid(driver, SUMMER, monkeypatch) == [regular("P1", OAK, SUMMER, 125_002)]


def test_a_half_penny_year_on_hours_at_a_special_school(driver: Driver,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """12.25 h at Beacon (no threshold at a special school) at £11.81 × 38 weeks:
    12.25 × 1,181 × 38 = 549,755.5p a year exactly.

    autumn  549,755.5 × 4/12 = 183,251.83p → 183,252p
    spring  cumulative × 7/12 = 320,690.71p → 320,691p; 137,439p
    summer  cumulative 549,755.5p → 549,756p (the year's half rounds up); 229,065p
    """
    set_up(driver, hourly=1181)
    driver.issue("P1", BEACON, D(2025, 9, 1), hours=Decimal("12.25"))
    assert [paid(driver, period, monkeypatch) for period in (AUTUMN, SPRING, SUMMER)] == [
        [regular("P1", BEACON, AUTUMN, 183_252)], [regular("P1", BEACON, SPRING, 137_439)],
        [regular("P1", BEACON, SUMMER, 229_065)]]


def test_a_claw_back_that_lands_on_a_half_penny(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """H at Oak from 1 Sep 2025: autumn 300,003 × 4/12 = 100,001p exactly, paid. Recorded
    after the autumn run: the plan ceased from 1 Nov 2025.

    autumn  now 61 days: 300,003/6 = 50,000.5p → 50,001p; claw-back 50,001 − 100,001
            = −50,000p (half down would claw back 50,001p)
    spring  nothing: cumulative 50,000.5p → 50,001p, already paid
    """
    set_up(driver)
    driver.issue("P1", OAK, D(2025, 9, 1), band="H")
    assert paid(driver, AUTUMN, monkeypatch) == [regular("P1", OAK, AUTUMN, 100_001)]
    assert driver.cease("P1", D(2025, 11, 1))
    assert paid(driver, SPRING, monkeypatch) == [base("P1", OAK, AUTUMN, "clawback", -50_000)]


def test_a_move_on_1_november_pays_each_school_its_own_rounded_half(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """H at Oak from 1 Sep 2025, moving to Elm from 1 Nov: 61 days at each school.

    autumn  Oak 300,003 × 4/12 × 61/122 = 50,000.5p → 50,001p; Elm the same, 50,001p:
            100,002p in all, a penny more than the term's 100,001p (each school is its own
            series, docs/rules.md §6)
    spring  Elm cumulative 50,000.5 + 75,000.75 = 125,001.25p → 125,001p; 75,000p
    """
    set_up(driver)
    driver.issue("P1", OAK, D(2025, 9, 1), band="H")
    driver.move("P1", ELM, D(2025, 11, 1))
    assert paid(driver, AUTUMN, monkeypatch) == [regular("P1", OAK, AUTUMN, 50_001),
                                                 regular("P1", ELM, AUTUMN, 50_001)]
    assert paid(driver, SPRING, monkeypatch) == [regular("P1", ELM, SPRING, 75_000)]


def test_protection_rounded_with_the_base_pays_the_prior_to_the_penny(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/rules.md §6: 32.5 h at Oak at £11.81 × 38 weeks: prior 32.5 × 1,181 × 38 − 600,000
    = 858,535p. Moved to D (700,000p) from 1 Nov 2025, protected to 31 Aug 2026. Base and
    total (base + protection) are each rounded cumulatively; protection is what the rounded
    total adds to the rounded base.

    autumn  base 858,535/6 + 700,000/6 = 259,755.83p → 259,756p
            total 858,535/3 = 286,178.33p → 286,178p; protection 286,178 − 259,756 = 26,422p
            (rounded on its own, 158,535/6 = 26,422.5p would round up to 26,423p)
    spring  base cumulative 434,755.83p → 434,756p; 175,000p
            total + 214,633.75 = 500,812.08p → 500,812p; protection so far 66,056p; 39,634p
    summer  base cumulative 726,422.5p → 726,423p (half up); 291,667p
            total 858,535p; protection so far 132,112p; 66,056p
    The year pays 726,423 + 132,112 = 858,535p: the prior exactly.
    """
    set_up(driver, hourly=1181)
    driver.issue("P1", OAK, D(2025, 9, 1), hours=Decimal("32.5"))
    assert driver.transfer("P1", "D", D(2025, 11, 1), D(2026, 8, 31))
    protection = ("P1", OAK, AUTUMN, "protection", "protection", 26_422)
    assert paid(driver, AUTUMN, monkeypatch) == [regular("P1", OAK, AUTUMN, 259_756), protection]
    assert paid(driver, SPRING, monkeypatch) == [
        regular("P1", OAK, SPRING, 175_000), ("P1", OAK, SPRING, "protection", "protection", 39_634)]
    assert paid(driver, SUMMER, monkeypatch) == [
        regular("P1", OAK, SUMMER, 291_667), ("P1", OAK, SUMMER, "protection", "protection", 66_056)]
    assert driver.model.plans["P1"][1][1].prior_annual == 858_535  # type: ignore[attr-defined]


def test_protection_ending_mid_term_pays_up_to_its_last_day(driver: Driver,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/rules.md §10: P1, 25 h at Oak from 1 Sep 2025 (540,000p), moved to B from 1 Jan
    2026 with protection until 14 Feb 2026 (inclusive).

    autumn  on hours: 540,000 × 4/12 = 180,000p
    spring  base 310,000 × 3/12 = 77,500p; protection for 1 Jan – 14 Feb, 31 + 14 = 45 of
            90 days: (540,000 − 310,000) × 3/12 × 45/90 = 28,750p (to 15 Feb, 46 days, it
            would be 29,388.89p → 29,389p; to 13 Feb, 28,111p)
    summer  base cumulative 180,000 + 77,500 + 129,166.67 = 386,666.67p → 386,667p, less
            257,500p = 129,167p; no protection
    """
    set_up(driver)
    driver.issue("P1", OAK, D(2025, 9, 1), hours=Decimal(25))
    assert driver.transfer("P1", "B", D(2026, 1, 1), D(2026, 2, 14))
    assert paid(driver, AUTUMN, monkeypatch) == [regular("P1", OAK, AUTUMN, 180_000)]
    assert paid(driver, SPRING, monkeypatch) == [
        regular("P1", OAK, SPRING, 77_500), ("P1", OAK, SPRING, "protection", "protection", 28_750)]
    assert paid(driver, SUMMER, monkeypatch) == [regular("P1", OAK, SUMMER, 129_167)]


def test_protection_to_the_first_day_of_a_term_pays_that_one_day(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """P1, 25 h at Oak (540,000p), moved to B from 1 Sep 2025, protected until 1 Jan 2026:
    spring's first day is its last protected day.

    autumn  base 310,000/3 = 103,333.33p → 103,333p; total (the prior) 180,000p;
            protection 76,667p
    spring  one protected day of 90: total + 77,500 + 230,000 × 3/12 × 1/90 = 258,138.89p
            → 258,139p; base cumulative 180,833.33p → 180,833p (77,500p); protection so far
            258,139 − 180,833 = 77,306p: 639p (all 90 days would be 57,500p)
    summer  total 387,305.56p → 387,306p; base 310,000p (129,167p); protection so far
            77,306p: no protection line
    """
    one_transfer(driver, protect_until=D(2026, 1, 1))
    assert paid(driver, AUTUMN, monkeypatch) == [
        regular("P1", OAK, AUTUMN, 103_333), ("P1", OAK, AUTUMN, "protection", "protection", 76_667)]
    assert paid(driver, SPRING, monkeypatch) == [
        regular("P1", OAK, SPRING, 77_500), ("P1", OAK, SPRING, "protection", "protection", 639)]
    assert paid(driver, SUMMER, monkeypatch) == [regular("P1", OAK, SUMMER, 129_167)]


def test_a_period_after_protection_may_pay_minus_a_penny_of_it(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/rules.md §6: base and total (base + protection) are each rounded cumulatively;
    protection is what the rounded total adds to the rounded base, so after protection ends
    it may be −1p. A band Z worth 1p a year (a tariff may price a band at anything from £0).
    P1, 12.5 h at Beacon (no threshold) at £11.81 × 38 weeks: prior 12.5 × 1,181 × 38 =
    560,975p; moved to Z from 1 Sep 2025, protected for that one day.

    autumn  base 1 × 4/12 = 0.33p → 0p; total 0.33 + (560,975 − 1) × 4/12 × 1/122 =
            0.33 + 1,532.72 = 1,533.05p → 1,533p; protection 1,533p
    spring  base cumulative 0.58p → 1p (1p); total + 0.25 = 1,533.30p → 1,533p (nothing):
            protection 0 − 1 = −1p
    summer  base cumulative 1p (nothing); total + 0.42 = 1,533.72p → 1,534p: protection 1p
    The year: 1,534p, its exact 1,533.72p rounded once.
    """
    set_up(driver, hourly=1181, bands={**BANDS, "Z": 1})
    driver.issue("P1", BEACON, D(2025, 9, 1), hours=Decimal("12.5"))
    assert driver.transfer("P1", "Z", D(2025, 9, 1), D(2025, 9, 1))
    protection = [("P1", BEACON, period, "protection", "protection", pence)
                  for period, pence in ((AUTUMN, 1_533), (SPRING, -1), (SUMMER, 1))]
    assert paid(driver, AUTUMN, monkeypatch) == [protection[0]]
    assert paid(driver, SPRING, monkeypatch) == [regular("P1", BEACON, SPRING, 1), protection[1]]
    assert paid(driver, SUMMER, monkeypatch) == [protection[2]]


def test_a_band_worth_nothing_pays_the_prior_as_protection_alone(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tariff may price a band at £0. P1, 25 h at Oak (540,000p), moved to band Z (0p)
    from 1 Sep 2025, protected to 31 Aug 2026: no base, and protection is the prior.

    autumn  protection 540,000 × 4/12 = 180,000p; no base line
    spring  protection 540,000 × 3/12 = 135,000p
    """
    set_up(driver, bands={**BANDS, "Z": 0})
    driver.issue("P1", OAK, D(2025, 9, 1), hours=Decimal(25))
    assert driver.transfer("P1", "Z", D(2025, 9, 1), D(2026, 8, 31))
    assert paid(driver, AUTUMN, monkeypatch) == [("P1", OAK, AUTUMN, "protection", "protection", 180_000)]
    assert paid(driver, SPRING, monkeypatch) == [("P1", OAK, SPRING, "protection", "protection", 135_000)]


def test_a_line_names_the_facts_that_change_its_amount(driver: Driver,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/rules.md §9. From 1 Sep 2025 at Oak: P1 on C; P2 25 h moved to B (no protection);
    P3 25 h at Elm moved to B, protected to 31 Aug 2026. Autumn paid. Then recorded: the
    hourly rate for 2025-26 revised to £12.50 (rate:2025-26/2) and uplifted to £13.00 from
    1 Jan 2026 (rate:2025-26/3), D for 2025-26 revised to £7,100 (tariff:2025-26/2), P1
    moved to D from 1 Nov (P1/2), P2 reviewed to C from 1 Nov (P2/3). The spring run:

    P1  autumn (500,000 × 61 + 710,000 × 61) ÷ 122 × 4/12 = 201,666.67p → 201,667p, less
        166,667p: arrears 35,000p, naming P1/2 and the D revision (it prices its D days);
        spring 710,000 × 3/12 = 177,500p, its first spring payment: P1/2, the state's start
    P2  autumn (310,000 + 500,000)/6 = 135,000p, less 103,333p: arrears 31,667p, naming P2/3
        alone (on a band unprotected, no hourly rate prices it); spring 125,000p: P2/3
    P3  the prior at £12.50: 25 × 1,250 × 38 − 600,000 = 587,500p. Autumn total 587,500/3 =
        195,833.33p → 195,833p, base 103,333p: protection 92,500p, less 76,667p paid:
        arrears 15,833p, naming the whole-year rate revision alone (it prices the protected
        prior; the uplift from 1 Jan prices none of autumn's days). Spring at £13.00: prior
        25 × 1,300 × 38 − 600,000 = 635,000p; total 195,833.33 + 635,000 × 3/12 = 354,583.33p
        → 354,583p; base 180,833p (77,500p); protection so far 173,750p: 81,250p. Both first
        spring payments: P3/2.
    """
    set_up(driver)
    driver.issue("P1", OAK, D(2025, 9, 1), band="C")
    for plan, school, protect in (("P2", OAK, None), ("P3", ELM, D(2026, 8, 31))):
        driver.issue(plan, school, D(2025, 9, 1), hours=Decimal(25))
        assert driver.transfer(plan, "B", D(2025, 9, 1), protect)
    paid(driver, AUTUMN, monkeypatch)
    assert driver.set_rate("2025-26", 1250, Decimal(38), 600_000, "revised")
    assert driver.set_rate("2025-26", 1300, Decimal(38), 600_000, "uplift", D(2026, 1, 1))
    assert driver.set_tariff("2025-26", {"D": 710_000}, None, "revised")
    assert driver.change_band("P1", "D", D(2025, 11, 1))
    assert driver.change_band("P2", "C", D(2025, 11, 1))
    result = driver.pay(SPRING, monkeypatch).result
    assert result is not None
    lines = sorted((line.plan, paid_to.school, line.for_period, line.component, line.kind, line.amount,
                    line.caused_by) for paid_to in result.school_paid for line in paid_to.lines)
    assert lines == [
        ("P1", OAK, AUTUMN, "base", "arrears", 35_000, ("P1/2", "tariff:2025-26/2")),
        ("P1", OAK, SPRING, "base", "regular", 177_500, ("P1/2",)),
        ("P2", OAK, AUTUMN, "base", "arrears", 31_667, ("P2/3",)),
        ("P2", OAK, SPRING, "base", "regular", 125_000, ("P2/3",)),
        ("P3", ELM, AUTUMN, "protection", "arrears", 15_833, ("rate:2025-26/2",)),
        ("P3", ELM, SPRING, "base", "regular", 77_500, ("P3/2",)),
        ("P3", ELM, SPRING, "protection", "protection", 81_250, ("P3/2",)),
    ]


def test_plans_alike_but_for_their_first_day_are_each_paid_their_own_days(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six plans on B at Oak, none paid before: P1 and P2 from 1 Sep 2025, P3 from 15 Oct, P4
    from 1 Nov, P5 and P6 from 1 Sep ceasing from 1 Nov and 1 Dec. (A run works out once the
    lines of plans in one state on every day of its periods, and shares them: P1's and
    P2's. The others' days differ.)

    P1, P2  310,000 × 4/12 = 103,333.33p → 103,333p each
    P3      15 Oct – 31 Dec, 78 of 122 days: 310,000 × 78/366 = 66,065.57p → 66,066p
    P4      1 Nov – 31 Dec, 61 days: 310,000/6 = 51,666.67p → 51,667p
    P5      1 Sep – 31 Oct, 61 days: 51,667p
    P6      1 Sep – 30 Nov, 91 days: 310,000 × 91/366 = 77,076.50p → 77,077p
    """
    set_up(driver)
    for plan, first in (("P1", D(2025, 9, 1)), ("P2", D(2025, 9, 1)), ("P3", D(2025, 10, 15)),
                        ("P4", D(2025, 11, 1)), ("P5", D(2025, 9, 1)), ("P6", D(2025, 9, 1))):
        driver.issue(plan, OAK, first, band="B")
    assert driver.cease("P5", D(2025, 11, 1)) and driver.cease("P6", D(2025, 12, 1))
    assert paid(driver, AUTUMN, monkeypatch) == [
        regular("P1", OAK, AUTUMN, 103_333), regular("P2", OAK, AUTUMN, 103_333),
        regular("P3", OAK, AUTUMN, 66_066), regular("P4", OAK, AUTUMN, 51_667),
        regular("P5", OAK, AUTUMN, 51_667), regular("P6", OAK, AUTUMN, 77_077)]


def test_a_recorded_calendar_of_two_halves_rounds_the_first_half_penny_up(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recorded calendar for 2025-26: 1 Sep 2025 – 31 Jan 2026 and 1 Feb – 31 Aug 2026,
    97 school days each (shares 97/194 = 1/2). H at Oak from 1 Sep 2025.

    first   300,003 × 1/2 = 150,001.5p → 150,002p
    second  cumulative 300,003p; 300,003 − 150,002 = 150,001p
    """
    set_up(driver)
    assert driver.set_calendar("2025-26", [("first", D(2025, 9, 1), D(2026, 1, 31), 97),
                                           ("second", D(2026, 2, 1), D(2026, 8, 31), 97)], "two halves")
    driver.issue("P1", OAK, D(2025, 9, 1), band="H")
    assert paid(driver, "2025-26/first", monkeypatch) == [regular("P1", OAK, "2025-26/first", 150_002)]
    assert paid(driver, "2025-26/second", monkeypatch) == [regular("P1", OAK, "2025-26/second", 150_001)]


# The cushion's boundaries (docs/rules.md §11).


def one_transfer(driver: Driver, *, school: str = OAK, protect_until: date | None = None) -> None:
    """P1: 25 h at ``school`` (540,000p) moved to B (310,000p) from 1 Sep 2025: it loses
    230,000p a year (unless protected)."""
    set_up(driver)
    driver.issue("P1", school, D(2025, 9, 1), hours=Decimal(25))
    assert driver.transfer("P1", "B", D(2025, 9, 1), protect_until)


def cushion_lines(lines: list[LineKey]) -> list[LineKey]:
    return [line for line in lines if line[3] == "cushion"]


def test_a_cushion_starting_on_1_november(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """P1 at Oak loses 230,000p a year; a 50% cushion from 1 Nov 2025 to 31 Aug 2026.

    autumn  61 of 122 days: 50% × 230,000 × 4/12 × 61/122 = 19,166.67p → 19,167p
            (from 2 Nov, 60 days, it would be 18,852p)
    spring  50% × 230,000 × 3/12 = 28,750p; cumulative 47,916.67p → 47,917p; 28,750p
    summer  + 47,916.67p: cumulative 95,833.33p → 95,833p; 47,916p
    """
    one_transfer(driver)
    driver.set_cushion(OAK, D(2025, 11, 1), D(2026, 8, 31), Decimal(50), "first year of bands")
    autumn = paid(driver, AUTUMN, monkeypatch)
    assert autumn == [cushion(OAK, AUTUMN, "cushion", 19_167), regular("P1", OAK, AUTUMN, 103_333)]
    assert cushion_lines(paid(driver, SPRING, monkeypatch)) == [cushion(OAK, SPRING, "cushion", 28_750)]
    assert cushion_lines(paid(driver, SUMMER, monkeypatch)) == [cushion(OAK, SUMMER, "cushion", 47_916)]


def test_a_cushion_ending_mid_term_pays_its_last_day(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 50% cushion from 1 Sep 2025 to 14 Feb 2026, inclusive.

    autumn  50% × 230,000 × 4/12 = 38,333.33p → 38,333p
    spring  1 Jan – 14 Feb, 45 of 90 days: 50% × 230,000 × 3/12 × 45/90 = 14,375p;
            cumulative 52,708.33p → 52,708p; 14,375p (to 13 Feb, 44 days: 14,056p)
    summer  no day under the cushion: no cushion line
    """
    one_transfer(driver)
    driver.set_cushion(OAK, D(2025, 9, 1), D(2026, 2, 14), Decimal(50), "first months of bands")
    assert cushion_lines(paid(driver, AUTUMN, monkeypatch)) == [cushion(OAK, AUTUMN, "cushion", 38_333)]
    assert cushion_lines(paid(driver, SPRING, monkeypatch)) == [cushion(OAK, SPRING, "cushion", 14_375)]
    assert paid(driver, SUMMER, monkeypatch) == [regular("P1", OAK, SUMMER, 129_167)]


def test_a_cushion_for_part_of_a_year(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 50% cushion from 15 Oct 2025 to 15 Mar 2026.

    autumn  15 Oct – 31 Dec = 17 + 30 + 31 = 78 days: 115,000 × 4/12 × 78/122
            = 24,508.20p → 24,508p
    spring  1 Jan – 15 Mar = 31 + 28 + 15 = 74 of 90 days: 115,000 × 3/12 × 74/90
            = 23,638.89p; cumulative 48,147.09p → 48,147p; 23,639p
    summer  no cushion line
    """
    one_transfer(driver)
    driver.set_cushion(OAK, D(2025, 10, 15), D(2026, 3, 15), Decimal(50), "part of a year")
    lines = [cushion_lines(paid(driver, period, monkeypatch)) for period in (AUTUMN, SPRING, SUMMER)]
    assert lines == [[cushion(OAK, AUTUMN, "cushion", 24_508)], [cushion(OAK, SPRING, "cushion", 23_639)], []]


def test_a_cushion_nets_gains_against_losses_over_several_plans(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three plans at Oak moved to bands from 1 Sep 2025: P1 25 h → B loses 230,000p, P2
    20 h → C gains 188,000p, P3 30 h → D loses 68,000p. Net reduction 110,000p a year; a 50%
    cushion for the year: 55,000p.

    autumn  55,000 × 4/12 = 18,333.33p → 18,333p (base: 103,333 + 166,667 + 233,333)
    spring  cumulative 32,083.33p → 32,083p; 13,750p
    summer  cumulative 55,000p; 22,917p
    """
    set_up(driver)
    for plan, hours, band in (("P1", 25, "B"), ("P2", 20, "C"), ("P3", 30, "D")):
        driver.issue(plan, OAK, D(2025, 9, 1), hours=Decimal(hours))
        assert driver.transfer(plan, band, D(2025, 9, 1), None)
    driver.set_cushion(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "first year of bands")
    assert paid(driver, AUTUMN, monkeypatch) == [
        cushion(OAK, AUTUMN, "cushion", 18_333), regular("P1", OAK, AUTUMN, 103_333),
        regular("P2", OAK, AUTUMN, 166_667), regular("P3", OAK, AUTUMN, 233_333)]
    assert cushion_lines(paid(driver, SPRING, monkeypatch)) == [cushion(OAK, SPRING, "cushion", 13_750)]
    assert cushion_lines(paid(driver, SUMMER, monkeypatch)) == [cushion(OAK, SUMMER, "cushion", 22_917)]


def test_a_cushion_where_gains_outweigh_losses_pays_nothing(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """At Oak: P1 25 h → C loses 540,000 − 500,000 = 40,000p; P2 20 h → C gains 188,000p.
    Net gain 148,000p: the period's net reduction counts as 0, no cushion line.

    autumn  base 500,000 × 4/12 = 166,666.67p → 166,667p each
    """
    set_up(driver)
    for plan, hours in (("P1", 25), ("P2", 20)):
        driver.issue(plan, OAK, D(2025, 9, 1), hours=Decimal(hours))
        assert driver.transfer(plan, "C", D(2025, 9, 1), None)
    driver.set_cushion(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(100), "first year of bands")
    assert paid(driver, AUTUMN, monkeypatch) == [regular("P1", OAK, AUTUMN, 166_667),
                                                 regular("P2", OAK, AUTUMN, 166_667)]


def test_a_cushion_stays_with_the_school_where_the_plan_moved_to_a_band(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """P1 moved to B at Elm from 1 Sep 2025 (its loss 230,000p a year), then to Oak from 1 Jan
    2026; Elm and Oak each have a 50% cushion for the year. The cushion belongs to the school
    that lost the money (docs/rules.md §11): a plan moving in brings none of its own.

    Elm     115,000p a year: autumn 115,000 × 4/12 = 38,333.33p → 38,333p; spring
            cumulative 67,083.33p → 67,083p, 28,750p; summer 115,000p, 47,917p
    Oak     nothing, in any period
    """
    one_transfer(driver, school=ELM)
    driver.move("P1", OAK, D(2026, 1, 1))
    for school in (OAK, ELM):
        driver.set_cushion(school, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "first year of bands")
    assert cushion_lines(paid(driver, AUTUMN, monkeypatch)) == [cushion(ELM, AUTUMN, "cushion", 38_333)]
    assert cushion_lines(paid(driver, SPRING, monkeypatch)) == [cushion(ELM, SPRING, "cushion", 28_750)]
    assert cushion_lines(paid(driver, SUMMER, monkeypatch)) == [cushion(ELM, SUMMER, "cushion", 47_917)]


def test_a_plan_moving_out_backdated_leaves_the_cushion_as_it_was(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """P1 at Oak on B (loss 230,000p a year), 50% cushion at Oak for the year. Autumn and
    spring are paid: cushion 38,333p and 28,750p; base 103,333p and 77,500p. Recorded after
    the spring run: P1 moved to Elm from 1 Feb 2026. The summer run:

    cushion unchanged (a plan that moves away still counts for the school it left): summer
            cumulative 115,000p, less 67,083p: 47,917p
    base    Oak, spring: 310,000 × 3/12 × 31/90 = 26,694.44p; cumulative 130,027.78p →
            130,028p; due 26,695p, paid 77,500p: claw-back −50,805p.
            Elm, spring: 310,000 × 3/12 × 59/90 = 50,805.56p → 50,806p arrears; summer
            cumulative 50,805.56 + 129,166.67 = 179,972.22p → 179,972p; 129,166p regular.
    """
    one_transfer(driver)
    driver.set_cushion(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "first year of bands")
    assert cushion_lines(paid(driver, AUTUMN, monkeypatch)) == [cushion(OAK, AUTUMN, "cushion", 38_333)]
    assert cushion_lines(paid(driver, SPRING, monkeypatch)) == [cushion(OAK, SPRING, "cushion", 28_750)]
    driver.move("P1", ELM, D(2026, 2, 1))
    assert paid(driver, SUMMER, monkeypatch) == [
        cushion(OAK, SUMMER, "cushion", 47_917),
        base("P1", OAK, SPRING, "clawback", -50_805),
        base("P1", ELM, SPRING, "arrears", 50_806),
        regular("P1", ELM, SUMMER, 129_166),
    ]


def test_protection_does_not_change_the_cushion(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """P1 25 h → B from 1 Sep 2025, protected to 31 Dec 2025; a 50% cushion for the year.
    The cushion is the loss at transfer, whatever protection pays (docs/rules.md §11).

    autumn  base 103,333p; total (protected: the prior) 540,000/3 = 180,000p, so protection
            180,000 − 103,333 = 76,667p; cushion 115,000 × 4/12 = 38,333.33p → 38,333p
    spring  cushion 28,750p
    summer  cushion cumulative 115,000p, less 67,083p: 47,917p
    """
    one_transfer(driver, protect_until=D(2025, 12, 31))
    driver.set_cushion(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "first year of bands")
    assert paid(driver, AUTUMN, monkeypatch) == [
        cushion(OAK, AUTUMN, "cushion", 38_333), regular("P1", OAK, AUTUMN, 103_333),
        ("P1", OAK, AUTUMN, "protection", "protection", 76_667)]
    assert cushion_lines(paid(driver, SPRING, monkeypatch)) == [cushion(OAK, SPRING, "cushion", 28_750)]
    assert cushion_lines(paid(driver, SUMMER, monkeypatch)) == [cushion(OAK, SUMMER, "cushion", 47_917)]


def test_a_review_or_a_tariff_revision_after_the_transfer_does_not_change_the_cushion(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/rules.md §11's example: at Oak, P1 (25 h, prior 540,000p) moves to B and P2 (20 h,
    prior 312,000p) to C, both from 1 Sep 2025; a 50% cushion for the year. Net reduction at
    transfer (540,000 − 310,000) + (312,000 − 500,000) = 42,000p; 21,000p a year.

    autumn  21,000 × 4/12 = 7,000p
    Recorded next: a review moves P2 to B from 1 Apr 2026, and B for 2025-26 is revised to
    £3,200 for the whole year. Neither changes the cushion (the transfer is priced with the
    tariff known when it was recorded).
    spring  21,000 × 3/12 = 5,250p; P1's base: autumn arrears 320,000 × 4/12 = 106,666.67p
            → 106,667p, less 103,333p = 3,334p; spring cumulative 186,666.67p → 186,667p,
            less 106,667p = 80,000p
    summer  21,000 × 5/12 = 8,750p
    """
    set_up(driver)
    for plan, hours, band in (("P1", 25, "B"), ("P2", 20, "C")):
        driver.issue(plan, OAK, D(2025, 9, 1), hours=Decimal(hours))
        assert driver.transfer(plan, band, D(2025, 9, 1), None)
    driver.set_cushion(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "first year of bands")
    assert cushion_lines(paid(driver, AUTUMN, monkeypatch)) == [cushion(OAK, AUTUMN, "cushion", 7_000)]
    assert driver.change_band("P2", "B", D(2026, 4, 1))
    assert driver.set_tariff("2025-26", {"B": 320_000}, None, "revised")
    spring = paid(driver, SPRING, monkeypatch)
    assert cushion_lines(spring) == [cushion(OAK, SPRING, "cushion", 5_250)]
    assert [line for line in spring if line[0] == "P1"] == [
        base("P1", OAK, AUTUMN, "arrears", 3_334), regular("P1", OAK, SPRING, 80_000)]
    assert cushion_lines(paid(driver, SUMMER, monkeypatch)) == [cushion(OAK, SUMMER, "cushion", 8_750)]


def two_years_of_transfers(driver: Driver) -> None:
    """At Oak: P1 25 h → B from 1 Sep 2025 (FY 2025-26, loss 230,000p); P2 30 h (768,000p) →
    D from 1 Apr 2026 (FY 2026-27, loss 68,000p)."""
    set_up(driver)
    driver.issue("P1", OAK, D(2025, 9, 1), hours=Decimal(25))
    assert driver.transfer("P1", "B", D(2025, 9, 1), None)
    driver.issue("P2", OAK, D(2025, 9, 1), hours=Decimal(30))
    assert driver.transfer("P2", "D", D(2026, 4, 1), None)


def test_a_cushion_counts_the_transfers_of_the_year_it_starts_in(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """two_years_of_transfers; a 50% cushion from 1 Sep 2025 to 31 Aug 2026 is for the
    transfers of FY 2025-26, the year it starts in: P1 alone, 115,000p a year.

    autumn 38,333p; spring 28,750p; summer 47,917p (P2's transfer in April changes nothing)
    """
    two_years_of_transfers(driver)
    driver.set_cushion(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "first year of bands")
    lines = [cushion_lines(paid(driver, period, monkeypatch)) for period in (AUTUMN, SPRING, SUMMER)]
    assert lines == [[cushion(OAK, AUTUMN, "cushion", 38_333)], [cushion(OAK, SPRING, "cushion", 28_750)],
                     [cushion(OAK, SUMMER, "cushion", 47_917)]]


def test_a_cushion_for_another_financial_year_counts_that_years_transfers(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """two_years_of_transfers; the same 50% cushion recorded for year 2026-27 counts P2
    alone: 34,000p a year, paid on the cushion's days (from 1 Sep 2025).

    autumn  34,000 × 4/12 = 11,333.33p → 11,333p
    spring  cumulative 19,833.33p → 19,833p; 8,500p
    summer  cumulative 34,000p; 14,167p
    """
    two_years_of_transfers(driver)
    driver.set_cushion(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "the second year's", "2026-27")
    lines = [cushion_lines(paid(driver, period, monkeypatch)) for period in (AUTUMN, SPRING, SUMMER)]
    assert lines == [[cushion(OAK, AUTUMN, "cushion", 11_333)], [cushion(OAK, SPRING, "cushion", 8_500)],
                     [cushion(OAK, SUMMER, "cushion", 14_167)]]


def test_a_cushion_landing_on_half_pennies(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """B at £3,099.99 (309,999p). P1, 25 h at Oak (540,000p), moved to B from 1 Sep 2025: a
    loss of 230,001p; a 50% cushion for the year: 115,000.5p a year.

    autumn  115,000.5 × 4/12 = 38,333.5p → 38,334p (half up)
    spring  cumulative × 7/12 = 67,083.625p → 67,084p; 28,750p
    summer  cumulative 115,000.5p → 115,001p (half up); 47,917p
    """
    set_up(driver, bands={**BANDS, "B": 309_999})
    driver.issue("P1", OAK, D(2025, 9, 1), hours=Decimal(25))
    assert driver.transfer("P1", "B", D(2025, 9, 1), None)
    driver.set_cushion(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "first year of bands")
    lines = [cushion_lines(paid(driver, period, monkeypatch)) for period in (AUTUMN, SPRING, SUMMER)]
    assert lines == [[cushion(OAK, AUTUMN, "cushion", 38_334)], [cushion(OAK, SPRING, "cushion", 28_750)],
                     [cushion(OAK, SUMMER, "cushion", 47_917)]]


def test_a_cushion_whose_transfer_was_recorded_before_its_years_rate_refuses_every_run(
        ledger: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/rules.md §11 prices a cushion's transfers with the rates known when each was
    recorded. P1 (25 h at Oak) moves to B from 1 Apr 2026, recorded while only 2025-26 has an
    hourly rate (the prior is priced on 31 Mar 2026); 2026-27's rate is recorded next, then
    a cushion at Oak for 2026-27. The transfer can never be priced for the cushion (the rate
    was not known when it was recorded), so every run is refused, naming it: the product
    and the oracle agree; what an LA does next is for the rule book to say."""
    driver = Driver(ledger)  # type: ignore[arg-type]
    assert driver.add_school(OAK, "mainstream")
    assert driver.set_rate("2025-26", 1200, Decimal(38), 600_000, "the year's rate")
    for year in YEARS:
        assert driver.set_tariff(year, BANDS, None, "the year's tariff")
    driver.issue("P1", OAK, D(2025, 9, 1), hours=Decimal(25))
    assert driver.transfer("P1", "B", D(2026, 4, 1), None)
    assert driver.set_rate("2026-27", 1200, Decimal(38), 600_000, "the year's rate, late")
    driver.set_cushion(OAK, D(2026, 4, 1), D(2026, 8, 31), Decimal(50), "first year of bands")
    refused = driver.pay(SUMMER, monkeypatch).refused
    assert refused is not None
    assert "the transfer of plan P1 on 2026-04-01 cannot be priced for the cushion of school 100001" \
        in refused


def test_a_later_cushion_replaces_the_earlier_and_is_paid_again_from_the_start(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 50% cushion for the year pays autumn 38,333p. Recorded next: Oak's cushion is 100%
    from 1 Jan 2026 to 31 Aug 2026, replacing it.

    spring  autumn now has no day under the cushion: claw-back −38,333p;
            spring 230,000 × 3/12 = 57,500p
    summer  cumulative 230,000 × 8/12 = 153,333.33p → 153,333p; 95,833p
    """
    one_transfer(driver)
    driver.set_cushion(OAK, D(2025, 9, 1), D(2026, 8, 31), Decimal(50), "first year of bands")
    assert cushion_lines(paid(driver, AUTUMN, monkeypatch)) == [cushion(OAK, AUTUMN, "cushion", 38_333)]
    driver.set_cushion(OAK, D(2026, 1, 1), D(2026, 8, 31), Decimal(100), "the Forum's decision")
    assert cushion_lines(paid(driver, SPRING, monkeypatch)) == [
        cushion(OAK, AUTUMN, "clawback", -38_333), cushion(OAK, SPRING, "cushion", 57_500)]
    assert cushion_lines(paid(driver, SUMMER, monkeypatch)) == [cushion(OAK, SUMMER, "cushion", 95_833)]
