"""A payment calendar from CSV: period,start,end and either share (4/12) or school_days."""

from __future__ import annotations

import csv
from fractions import Fraction
from pathlib import Path

from topup_ledger.domain.calendar import Period, parse_date, school_day_periods
from topup_ledger.domain.errors import RuleError


def read_periods(year: str, path: Path, counted: bool = False) -> tuple[Period, ...]:
    """The periods of ``path``. ``counted``: the term dates will count each period's school
    days and set its share, so neither column is needed (a school_days given is checked)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    parsed = []
    for line, row in enumerate(rows, start=2):
        try:
            name = row["period"].strip()
            name = name.split("/", 1)[1] if "/" in name else name
            start = parse_date(row["start"], "start")
            end = parse_date(row["end"], "end")
            if row.get("school_days"):
                parsed.append((name, start, end, int(row["school_days"]), None))
            elif counted:
                parsed.append((name, start, end, None, Fraction(0)))
            else:
                parsed.append((name, start, end, None, Fraction(row["share"])))
        except RuleError as error:
            raise RuleError(error.field, f"{path}, line {line}: {error.problem}") from None
        except KeyError as error:
            raise RuleError(str(error.args[0]), f"{path}, line {line}: column missing") from None
        except (TypeError, ValueError, ZeroDivisionError) as error:
            raise RuleError("share", f"{path}, line {line}: {error}") from None
    if counted:
        # shares to be set from the term dates' school days; until then they must add to 1
        n = len(parsed)
        return tuple(Period(s, e, f"{year}/{name}", Fraction(1, n), days)
                     for name, s, e, days, _ in parsed)
    if all(days is not None for _, _, _, days, _ in parsed):
        return school_day_periods(year, [(n, s, e, d) for n, s, e, d, _ in parsed])  # type: ignore[misc]
    if any(share is None for *_, share in parsed):
        raise RuleError("share", f"{path}: give every period a share, or every period school_days")
    return tuple(Period(s, e, f"{year}/{n}", share) for n, s, e, _, share in parsed)  # type: ignore[arg-type]
