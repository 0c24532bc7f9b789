"""A tariff or hourly rate revised from a day inside its financial year (docs/rules.md §3):
the days before it keep the value they had, so no arrears arise for them. Each figure is
worked by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import Invoke
from topup_ledger.domain.errors import RuleError
from topup_ledger.services.importer import REJECTED, import_file
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger

OAK = "100001"  # mainstream
AUTUMN, SPRING = "2025-26/autumn", "2025-26/spring"


def lines_of(ledger: Ledger, period: str) -> list[tuple[str, str, int]]:
    """The run's lines as (kind, for period, pence)."""
    return sorted((line.kind, line.for_period, line.amount)
                  for payment in pay(ledger, period).school_paid for line in payment.lines)


def set_up(ledger: Ledger) -> None:
    ledger.add_school(OAK, "Oak Primary", "mainstream")
    ledger.set_rate("2025-26", 1181, Decimal(38), 600_000)
    ledger.set_tariff("2025-26", {"B": 310_000})


def test_a_tariff_uplift_from_january_reprices_january_on_and_leaves_autumn_alone(ledger: Ledger) -> None:
    """Band B £3,100 from 1 Sep 2025: autumn 310000/3 = 103333.33 → 103333p. Uplifted to
    £3,200 from 1 January 2026: spring 320000 × 3/12 = 80000p; so far 183333.33 → 183333,
    less 103333 = 80000p. Autumn keeps its value: no arrears. (A revision for the whole year
    would pay autumn 320000/3 = 106666.67 → 106667, arrears 3334p.)"""
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    assert lines_of(ledger, AUTUMN) == [("regular", AUTUMN, 103_333)]
    ledger.set_tariff("2025-26", {"B": 320_000}, reason="January uplift", effective=date(2026, 1, 1))
    assert lines_of(ledger, SPRING) == [("regular", SPRING, 80_000)]


def test_an_hourly_rate_uplift_from_february_splits_the_term_at_its_day(ledger: Ledger) -> None:
    """20 h at £11.81 × 38 weeks less £6,000: 297560p a year; autumn 297560/3 = 99186.67
    → 99187p. From 1 February 2026 at £12.50: 20 × 1250 × 38 − 600000 = 350000p a year.
    Spring, 90 days: January's 31 at 297560 × 3/12 × 31/90 = 25623.22p and February-March's
    59 at 350000 × 3/12 × 59/90 = 57361.11p, 82984.33p; so far 182171.00 → 182171, less
    99187 = 82984p."""
    set_up(ledger)
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal(20))
    assert lines_of(ledger, AUTUMN) == [("regular", AUTUMN, 99_187)]
    ledger.set_rate("2025-26", 1250, Decimal(38), 600_000, effective=date(2026, 2, 1))
    assert lines_of(ledger, SPRING) == [("regular", SPRING, 82_984)]


def test_a_revision_recorded_late_pays_arrears_only_from_its_day(ledger: Ledger) -> None:
    """As the first test, but the uplift from 1 February is recorded after the spring run:
    spring was paid 310000 × 3/12 = 77500p; now February-March (59 of 90 days) are at
    320000: 310000 × 3/12 × 31/90 + 320000 × 3/12 × 59/90 = 26694.44 + 52444.44 = 79138.89;
    so far 103333.33 + 79138.89 = 182472.22 → 182472, less 103333 = 79139p due, 1639p
    arrears."""
    set_up(ledger)
    ledger.set_tariff("2026-27", {"B": 320_000})
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    lines_of(ledger, AUTUMN)
    assert lines_of(ledger, SPRING) == [("regular", SPRING, 77_500)]
    ledger.set_tariff("2025-26", {"B": 320_000}, effective=date(2026, 2, 1))
    summer = lines_of(ledger, "2025-26/summer")
    assert ("arrears", SPRING, 1_639) in summer
    assert not [line for line in summer if line[1] == AUTUMN]


def test_a_revision_from_a_day_outside_its_year_is_refused(ledger: Ledger) -> None:
    set_up(ledger)
    with pytest.raises(RuleError, match=r"from: 2026-04-01 is not in financial year 2025-26"):
        ledger.set_tariff("2025-26", {"B": 320_000}, effective=date(2026, 4, 1))
    with pytest.raises(RuleError, match=r"from: 2025-03-31 is not in financial year 2025-26"):
        ledger.set_rate("2025-26", 1250, Decimal(38), 600_000, effective=date(2025, 3, 31))


def test_an_import_takes_the_day_a_revision_applies_from(ledger: Ledger, tmp_path: Path) -> None:
    """tariffs.csv and rates.csv rows with a ``from`` column: as the commands' ``--from``."""
    ledger.add_school(OAK, "Oak Primary", "mainstream")
    tariffs = tmp_path / "tariffs.csv"
    rows = "year,reason,from,B\n2025-26,for the year,,£3100\n2025-26,January uplift,01/01/2026,£3200\n"
    tariffs.write_text(rows + "2025-26,too late,2026-04-01,£3300\n")
    result = import_file(ledger, tariffs)  # a rejected row: nothing is recorded
    assert (result.recorded, result.rejected) == (0, 1)
    [rejected] = [o for o in result.outcomes if o.status == REJECTED]
    assert (rejected.line, rejected.field) == (4, "from")
    assert "2026-04-01 is not in financial year 2025-26" in rejected.reason
    tariffs.write_text(rows)
    assert import_file(ledger, tariffs).recorded == 2
    rates = tmp_path / "rates.csv"
    rates.write_text("year,hourly_rate,weeks,from\n2025-26,11.81,38,\n2025-26,12.50,38,2026-02-01\n")
    assert import_file(ledger, rates).recorded == 2
    terms = ledger.terms()
    assert [terms.band_rate("2025-26", "mainstream", "B", day) for day in
            (date(2025, 12, 31), date(2026, 1, 1))] == [310_000, 320_000]
    assert [terms.rate_on("2025-26", day).hourly_rate for day in  # type: ignore[union-attr]
            (date(2026, 1, 31), date(2026, 2, 1))] == [1181, 1250]


def test_the_commands_take_the_day_a_revision_applies_from(cli: Invoke) -> None:
    cli("init")
    cli("school", "add", OAK, "--name", "Oak Primary", "--setting", "mainstream")
    out = cli("tariff", "set", "--fy", "2025-26", "--band", "B=3100").output
    assert "from" not in out
    out = cli("tariff", "set", "--fy", "2025-26", "--band", "B=3200", "--from", "2026-01-01").output
    assert "B=£3,200.00, from 2026-01-01" in out
    out = cli("rate", "set", "--fy", "2025-26", "--hourly", "12.50", "--weeks", "38",
              "--from", "2026-02-01").output
    assert "from 2026-02-01" in out
    refused = cli("tariff", "set", "--fy", "2025-26", "--band", "B=3300", "--from", "2026-04-01",
                  ok=False)
    assert refused.exit_code == 2
    assert "2026-04-01 is not in financial year 2025-26" in refused.output
