"""Money is integer pence; exact fractions in between; rounding half up to whole pence.

Floats never touch money: an amount typed by a person is parsed from text into pence.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

Pence = int

# An optional minus and £, then whole pounds with commas only between thousands (so the
# European "12,50" is refused, not read as £1,250), then at most two decimal places.
_AMOUNT = re.compile(r"^(-?)£?(\d{1,3}(?:,\d{3})+|\d+)((?:\.\d{1,2})?)$", re.ASCII)


def round_half_up(amount: Fraction) -> Pence:
    """Round an exact amount of pence to whole pence, halves away from zero."""
    return round_half_up_parts(amount.numerator, amount.denominator)


def round_half_up_parts(n: int, d: int) -> Pence:
    """``round_half_up(Fraction(n, d))`` for a positive ``d``, from the parts themselves."""
    # Integer arithmetic on the fraction's parts: the same answer as adding a half and
    # flooring, without building more Fractions (rounding runs for every due).
    if n >= 0:
        return (2 * n + d) // (2 * d)
    return -((-2 * n + d) // (2 * d))


def parse_pounds(text: str) -> Pence:
    """'£1,234.50' or '1234.5' → 123450 pence. Raises ValueError on anything else."""
    match = _AMOUNT.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an amount in pounds (e.g. 1234.50)")
    sign, whole, part = match.groups()
    return int(Decimal(sign + whole.replace(",", "") + part) * 100)


_PLAIN_DECIMAL = re.compile(r"\d{1,9}(\.\d{1,6})?", re.ASCII)


def parse_decimal(text: str) -> Decimal:
    """A plain decimal number such as hours '32.5' or weeks '38': digits and a point only,
    so that '1e1' or '٣' never reach the ledger in a form people would not recognise."""
    cleaned = text.strip()
    if cleaned.startswith("-") and _PLAIN_DECIMAL.fullmatch(cleaned[1:]):
        return -Decimal(cleaned[1:])
    if not _PLAIN_DECIMAL.fullmatch(cleaned):
        raise ValueError(f"{text!r} is not a number (write it plainly, e.g. 32.5)")
    try:
        return Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise ValueError(f"{text!r} is not a number") from None


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
