"""Money: integer pence, exact fractions in between, rounding half up (DESIGN §3).

Domain only: no store, no CLI.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from topup_ledger.domain.money import (
    parse_decimal,
    parse_pounds,
    pounds,
    pounds_for_people,
    round_half_up,
)


@pytest.mark.parametrize(
    ("exact", "pence"),
    [
        (Fraction(0), 0),
        (Fraction(1, 2), 1),  # 0.5p: a half goes up
        (Fraction(5, 2), 3),  # 2.5p → 3p (not banker's 2p)
        (Fraction(7, 2), 4),  # 3.5p → 4p
        (Fraction(249, 100), 2),  # 2.49p → 2p
        (Fraction(251, 100), 3),  # 2.51p → 3p
        (Fraction(103_333 * 3 + 1, 3), 103_333),  # 103333⅓p → 103333p
        (Fraction(310_000 * 5, 12), 129_167),  # £3,100 × 5/12 = 129166.67p → 129167p
        (Fraction(-1, 2), -1),  # −0.5p: halves go away from zero
        (Fraction(-5, 2), -3),  # −2.5p → −3p
        (Fraction(-249, 100), -2),  # −2.49p → −2p
        (Fraction(-251, 100), -3),  # −2.51p → −3p
        (Fraction(-1, 3), 0),  # −0.33p → 0p
    ],
)
def test_round_half_up_whole_pence_halves_away_from_zero(exact: Fraction, pence: int) -> None:
    assert round_half_up(exact) == pence
    assert isinstance(round_half_up(exact), int)


def test_round_half_up_is_symmetric_around_zero() -> None:
    for numerator in range(-400, 401):
        exact = Fraction(numerator, 8)
        assert round_half_up(-exact) == -round_half_up(exact)


@pytest.mark.parametrize(
    ("text", "pence"),
    [
        ("£1,234.50", 123_450),  # 1234 × 100 + 50
        ("1234.5", 123_450),  # one decimal place means tens of pence
        ("1234", 123_400),
        ("0.01", 1),
        ("  £3,100  ", 310_000),
        ("£1,000,000.00", 100_000_000),
        ("-5", -500),
        ("-£5", -500),
        ("1,234", 123_400),
        ("7000.99", 700_099),
    ],
)
def test_parse_pounds(text: str, pence: int) -> None:
    assert parse_pounds(text) == pence


@pytest.mark.parametrize(
    "text",
    [
        "",
        "£",
        "abc",
        "12.345",  # a fraction of a penny
        "1.2.3",
        "1e3",
        "£12.3p",
        "$12",
        "12,50",  # a European decimal comma: not £1,250
        "1,2,3",  # commas that are not thousands separators
        "1,23",
        "12 34",
        "\u0661\u0662\u0663",  # Arabic-Indic digits are not pounds
        "NaN",
        "Infinity",
    ],
)
def test_parse_pounds_refuses_what_is_not_an_amount(text: str) -> None:
    with pytest.raises(ValueError, match="not an amount in pounds"):
        parse_pounds(text)


def test_parse_pounds_never_goes_through_float() -> None:
    # 0.29 × 100 in floats is 28.999999999999996, which int() would truncate to 28.
    assert parse_pounds("0.29") == 29
    assert parse_pounds("1234567.89") == 123_456_789


def test_parse_decimal() -> None:
    assert parse_decimal(" 32.5 ") == Decimal("32.5")
    # A minus is read (the rules then refuse negative hours with their own message).
    assert parse_decimal("-12.5") == Decimal("-12.5") and parse_decimal("-7") == Decimal(-7)
    for bad in ("", "x", "NaN", "Infinity", "1,5", "-", "--5", "-x"):
        with pytest.raises(ValueError, match="not a number"):
            parse_decimal(bad)


@pytest.mark.parametrize(
    ("pence", "machine", "people"),
    [
        (0, "0.00", "£0.00"),
        (1, "0.01", "£0.01"),
        (5, "0.05", "£0.05"),
        (-1, "-0.01", "−£0.01"),
        (-5, "-0.05", "−£0.05"),
        (-500, "-5.00", "−£5.00"),
        (123_450, "1234.50", "£1,234.50"),
        (103_333, "1033.33", "£1,033.33"),
        (123_456_789, "1234567.89", "£1,234,567.89"),
    ],
)
def test_pounds_formatting(pence: int, machine: str, people: str) -> None:
    assert pounds(pence) == machine
    assert pounds_for_people(pence) == people


def test_pounds_round_trips_through_parse_pounds() -> None:
    for pence in (-100_001, -1, 0, 1, 99, 100, 123_450, 99_999_999):
        assert parse_pounds(pounds(pence)) == pence
