"""Money is integer pence; exact fractions in between; rounding half up to whole pence.

Floats never touch money: an amount typed by a person is parsed from text into pence.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

Pence = int

_AMOUNT = re.compile(r"^-?\d+(\.\d{1,2})?$")


def round_half_up(amount: Fraction) -> Pence:
    """Round an exact amount of pence to whole pence, halves away from zero."""
    if amount >= 0:
        return int((amount + Fraction(1, 2)) // 1)
    return -int((-amount + Fraction(1, 2)) // 1)


def parse_pounds(text: str) -> Pence:
    """'£1,234.50' or '1234.5' → 123450 pence. Raises ValueError on anything else."""
    cleaned = text.strip().replace("£", "").replace(",", "")
    if not _AMOUNT.match(cleaned):
        raise ValueError(f"{text!r} is not an amount in pounds (e.g. 1234.50)")
    return int(Decimal(cleaned) * 100)


def parse_decimal(text: str) -> Decimal:
    """A plain decimal number such as hours '32.5' or weeks '38'."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a number")
    return value


def pounds(pence: Pence) -> str:
    """123450 → '1234.50' (no symbol, no separators: for files that machines read)."""
    sign = "-" if pence < 0 else ""
    whole, part = divmod(abs(pence), 100)
    return f"{sign}{whole}.{part:02d}"


def pounds_for_people(pence: Pence) -> str:
    """123450 → '£1,234.50'; −500 → '−£5.00'."""
    sign = "−" if pence < 0 else ""
    whole, part = divmod(abs(pence), 100)
    return f"{sign}£{whole:,}.{part:02d}"
