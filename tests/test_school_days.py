"""Calendars that hold school days (issue 24, item 7; docs/rules.md §2, schemas/imports.md):
monthly periods paid by school days on roll from a plan's start or move to its end.

The calendar is the example of schemas/imports.md, read from that page itself: 194 school
days in 2025-26, 18 of them in September (Friday 5th to Tuesday 30th). Band E is worth
£15,750 a year (1,575,000p) at every school.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import Invoke
from topup_ledger.domain.errors import RuleError
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger

OAK, ELM = "100001", "100002"
SEP, OCT, AUG = "2025-26/sep", "2025-26/oct", "2025-26/aug"
IMPORTS = Path(__file__).resolve().parents[1] / "schemas" / "imports.md"


def the_examples(folder: Path) -> tuple[Path, Path]:
    """The term dates and the months, as schemas/imports.md shows them."""
    page = IMPORTS.read_text(encoding="utf-8")
    section = page[page.index("## calendars"):page.index("## Generated data")]
    terms, months = re.findall(r"```text\n(.*?)```", section, re.S)
    (folder / "term-dates-2025-26.csv").write_text(terms, encoding="utf-8")
    (folder / "periods-2025-26.csv").write_text(months, encoding="utf-8")
    return folder / "term-dates-2025-26.csv", folder / "periods-2025-26.csv"


def set_up(cli: Invoke, tmp_path: Path) -> str:
    for urn, name in ((OAK, "Oak"), (ELM, "Elm")):
        cli("school", "add", urn, "--name", name, "--setting", "mainstream")
    for year in ("2025-26", "2026-27"):
        cli("rate", "set", "--fy", year, "--hourly", "12", "--weeks", "38")
        cli("tariff", "set", "--fy", year, "--band", "E=15750")
    terms, months = the_examples(tmp_path)
    return cli("calendar", "set", "--ay", "2025-26", "--file", str(months), "--term-dates", str(terms),
               "--reason", "we pay monthly by school days").output


def lines(ledger: Ledger, period: str) -> list[tuple[str, str, str, int]]:
    return sorted((line.plan, paid.school, line.for_period, line.amount)
                  for paid in pay(ledger, period).school_paid for line in paid.lines)


def test_the_imports_page_example_pays_18_of_194_for_a_whole_september(
        ledger: Ledger, cli: Invoke, tmp_path: Path) -> None:
    """P1 on E from 1 Sep 2025: 1,575,000 × 18/194 = 146,134.02 → 146,134p (£1,461.34).
    P2 from Monday 15 Sep: the 12 school days from the 15th (15-19, 22-26, 29, 30):
    1,575,000 × 18/194 × 12/18 = 97,422.68 → 97,423p (by calendar days, 16/30 of it, 77,938p).
    P3 at Oak from 1 Sep, moving to Elm from Thursday 18 Sep: Oak has 5, 8-12, 15-17, 9
    school days, Elm 18-19, 22-26, 29-30, 9: 1,575,000 × 9/194 = 73,067.01 → 73,067p each.
    October (18 of 194) for P1: the year so far 1,575,000 × 36/194 = 292,268.04 → 292,268,
    less 146,134: 146,134p."""
    said = set_up(cli, tmp_path)
    assert ("paid by school days on roll: 194 school days, 2025-26/sep 18, 2025-26/oct 18, "
            "2025-26/nov 20, 2025-26/dec 15, 2025-26/jan 20, 2025-26/feb 15, 2025-26/mar 20, "
            "2025-26/apr 14, 2025-26/may 15, 2025-26/jun 22, 2025-26/jul 17, 2025-26/aug 0") in said
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="E")
    ledger.issue_plan("P2", "PR-2", OAK, date(2025, 9, 15), band="E")
    ledger.issue_plan("P3", "PR-3", OAK, date(2025, 9, 1), band="E")
    ledger.move("P3", ELM, date(2025, 9, 18))
    assert lines(ledger, SEP) == [("P1", OAK, SEP, 146_134), ("P2", OAK, SEP, 97_423),
                                  ("P3", OAK, SEP, 73_067), ("P3", ELM, SEP, 73_067)]
    assert [line for line in lines(ledger, OCT) if line[0] == "P1"] == [("P1", OAK, OCT, 146_134)]
    # the lines count school days too
    paid = {line.plan: line for p in ledger.store.stream("run:2025-26-sep-r1") for line in p.fact.lines
            if p.fact.school == OAK}  # type: ignore[attr-defined]
    assert (paid["P2"].days, paid["P2"].reason) == (12, "2025-26/sep: band E, 12 of 18 school days")


def test_a_year_on_one_band_adds_up_to_its_annual_amount_and_august_pays_nothing(
        ledger: Ledger, cli: Invoke, tmp_path: Path) -> None:
    """P1 on E all year: the months' dues add up to 1,575,000p exactly (cumulative rounding),
    and August, with no school days, pays nothing."""
    set_up(cli, tmp_path)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="E")
    paid = lines(ledger, AUG)
    assert sum(amount for *_, amount in paid) == 1_575_000
    assert [amount for *_, period, amount in paid if period == AUG] == []


def test_term_dates_that_do_not_hold_are_refused_naming_the_line(
        ledger: Ledger, cli: Invoke, tmp_path: Path) -> None:
    """A closure outside every term, a term before the one above ends, a school-day count
    the term dates contradict: each refused, nothing recorded."""
    terms, months = the_examples(tmp_path)
    before = ledger.store.max_position()
    bad = tmp_path / "bad-terms.csv"
    bad.write_text(terms.read_text() + "closure,2026-08-03,2026-08-03,not in a term\n")
    refused = cli("calendar", "set", "--ay", "2025-26", "--file", str(months), "--term-dates", str(bad),
                  ok=False)
    assert refused.exit_code == 2
    assert refused.output == (f"error: start: {bad}, line 9: 2026-08-03 is not in a term, so it is no "
                              "school day to close; nothing was recorded\n")
    bad.write_text("kind,start,end\nterm,2025-09-05,2025-12-19\nterm,2025-12-01,2026-03-27\n")
    refused = cli("calendar", "set", "--ay", "2025-26", "--file", str(months), "--term-dates", str(bad),
                  ok=False)
    assert refused.output == (f"error: start: {bad}, line 3: the term from 2025-12-01 starts before the "
                              "one above ends (2025-12-19): terms in date order, apart; nothing was "
                              "recorded\n")
    counted = tmp_path / "counted.csv"
    counted.write_text(months.read_text().replace("period,start,end", "period,start,end,school_days")
                       .replace("2025-09-30\n", "2025-09-30,20\n").replace("-31\n", "-31,\n")
                       .replace("-30\n", "-30,\n").replace("-28\n", "-28,\n"))
    refused = cli("calendar", "set", "--ay", "2025-26", "--file", str(counted), "--term-dates", str(terms),
                  ok=False)
    assert refused.output == ("error: school_days: 2025-26/sep has 20 school days, but the term dates "
                              "give it 18; nothing was recorded\n")
    assert ledger.store.max_position() == before
    with pytest.raises(RuleError, match="closures need the term dates"):
        ledger.set_calendar("2025-26", ledger.calendar(date(2025, 9, 1), date(2026, 8, 31)).periods,
                            closures=(date(2025, 10, 27),))


def test_a_calendar_without_term_dates_keeps_calendar_days(
        ledger: Ledger, cli: Invoke, tmp_path: Path) -> None:
    """The same months with school_days counts but no term dates: pro rata by calendar days.
    P2 from 15 Sep: 1,575,000 × 18/194 × 16/30 = 77,938.14 → 77,938p."""
    for urn, name in ((OAK, "Oak"),):
        cli("school", "add", urn, "--name", name, "--setting", "mainstream")
    cli("tariff", "set", "--fy", "2025-26", "--band", "E=15750")
    cli("rate", "set", "--fy", "2025-26", "--hourly", "12", "--weeks", "38")
    days = {"sep": 18, "oct": 18, "nov": 20, "dec": 15, "jan": 20, "feb": 15, "mar": 20, "apr": 14,
            "may": 15, "jun": 22, "jul": 17, "aug": 0}
    _, months = the_examples(tmp_path)
    rows = months.read_text().splitlines()
    counted = tmp_path / "counted.csv"
    counted.write_text("\n".join([rows[0] + ",school_days",
                                  *(f"{row},{days[row.split(',')[0]]}" for row in rows[1:])]) + "\n")
    cli("calendar", "set", "--ay", "2025-26", "--file", str(counted))
    ledger.issue_plan("P2", "PR-2", OAK, date(2025, 9, 15), band="E")
    ledger.set_rate("2026-27", 1200, Decimal(38), 600_000)
    assert lines(ledger, SEP) == [("P2", OAK, SEP, 77_938)]
