"""Cost neutrality on the full cost of the move to bands, and the transfer schedule (issue 24,
item 9; docs/rules.md §13). Every figure is worked by hand in the docstrings.

The LA: Oak and Elm (mainstream). 2025-26: £12.00 an hour, 38 weeks, £6,000 threshold; band
B £3,100, C £5,000. 2026-27: £12.50 an hour; B £3,200, C £5,200.

- P1, 25 h at Oak from 1 Sep 2025, moves to B from 1 Jan 2026, protected to 31 Aug 2026.
- P2, 20 h at Oak from 1 Sep 2025, moves to C from 1 Apr 2026 unprotected, ceases from
  1 Oct 2026.
- Oak has a 50% cushion for its 2025-26 transfers, 1 Jan 2026 to 31 Dec 2026.

At the transfers' prices, a year each (the old summary, kept): P1's prior 25 × 1,200 × 38 −
600,000 = 540,000p against B's 310,000p (protection 230,000p a year); P2's prior (31 Mar 2026,
2025-26's rate) 20 × 1,200 × 38 − 600,000 = 312,000p against 2026-27's C, 520,000p. Prior
852,000p, bands 830,000p: −22,000p, −2.58%.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from conftest import Invoke
from topup_ledger.services.recording import Ledger

OAK, ELM = "100001", "100002"


def the_la(ledger: Ledger) -> None:
    ledger.add_school(OAK, "Oak Primary", "mainstream")
    ledger.add_school(ELM, "Elm Primary", "mainstream")
    ledger.set_rate("2025-26", 1200, Decimal(38), 600_000)
    ledger.set_tariff("2025-26", {"B": 310_000, "C": 500_000})
    ledger.set_rate("2026-27", 1250, Decimal(38), 600_000)
    ledger.set_tariff("2026-27", {"B": 320_000, "C": 520_000})
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), hours=Decimal(25))
    ledger.transfer("P1", "B", date(2026, 1, 1), protect_until=date(2026, 8, 31))
    ledger.issue_plan("P2", "PR-2", OAK, date(2025, 9, 1), hours=Decimal(20))
    ledger.transfer("P2", "C", date(2026, 4, 1))
    ledger.cease("P2", date(2026, 10, 1), "moved out of the area")
    ledger.set_cushion(OAK, date(2026, 1, 1), date(2026, 12, 31), Decimal(50), "year one", "2025-26")


def reconcile(cli: Invoke, tmp_path: Path, *options: str) -> dict[str, dict[str, Any]]:
    out = cli("reconcile", "hours-vs-band", "--out", str(tmp_path / "out"), "--json", *options).stdout
    rows = json.loads(out)["rows"]
    return {row["plan_ref"] or f"{row['level']} {row['school_urn'] or row['band'] or row['setting']}": row
            for row in rows}


FULL = ("prices_year", "funded_days", "protected_days", "prior_cost_pence", "band_cost_pence",
        "protection_cost_pence", "cushion_cost_pence", "full_cost_pence", "full_difference_pence",
        "full_difference_percent")


def test_the_full_cost_at_the_latest_years_prices_over_the_days_funded(
        ledger: Ledger, cli: Invoke, tmp_path: Path) -> None:
    """At 2026-27's prices (the latest priced year, 365 days) up to 31 Mar 2027, its end.

    P1: funded 1 Jan 2026 – 31 Mar 2027, 455 days, protected 1 Jan – 31 Aug 2026, 243 days.
    Prior 25 × 1,250 × 38 − 600,000 = 587,500p: 587,500 × 455/365 = 732,363.01 → 732,363p;
    B 320,000 × 455/365 = 398,904.11 → 398,904p; protection (587,500 − 320,000) × 243/365 =
    178,089.04 → 178,089p.
    P2: funded 1 Apr – 30 Sep 2026, 183 days. Prior 20 × 1,250 × 38 − 600,000 = 350,000p:
    350,000 × 183/365 = 175,479.45 → 175,479p; C 520,000 × 183/365 = 260,712.33 → 260,712p.
    Oak's cushion: 50% of P1's 587,500 − 320,000 (the only 2025-26 transfer there) =
    133,750p a year, on 365 days: 133,750p.
    P1's full cost 398,904 + 178,089 = 576,993p: −155,370p, −155,370 / 732,363 = −21.21%;
    P2's 260,712p: +85,233p, +48.57%.
    Full cost 398,904 + 178,089 + 260,712 + 133,750 = 971,455p against a prior of 732,363 +
    175,479 = 907,842p: +63,613p, 63,613 / 907,842 = +7.01%."""
    the_la(ledger)
    rows = reconcile(cli, tmp_path)
    assert [rows["P1"][c] for c in FULL] == ["2026-27", 455, 243, 732_363, 398_904, 178_089, 0,
                                             576_993, -155_370, "-21.21"]
    assert [rows["P2"][c] for c in FULL] == ["2026-27", 183, 0, 175_479, 260_712, 0, 0, 260_712,
                                             85_233, "48.57"]
    assert [rows[f"school {OAK}"][c] for c in FULL] == ["2026-27", 0, 0, 907_842, 659_616, 178_089,
                                                        133_750, 971_455, 63_613, "7.01"]
    overall = rows["overall "]
    assert [overall[c] for c in FULL] == ["2026-27", 0, 0, 907_842, 659_616, 178_089, 133_750,
                                          971_455, 63_613, "7.01"]
    assert [rows["band B"][c] for c in FULL][3:8] == [732_363, 398_904, 178_089, 0, 576_993]
    # the old summary, kept: at the transfers' prices, a year each
    assert (overall["prior_annual_pence"], overall["band_annual_pence"], overall["difference_pence"],
            overall["difference_percent"], overall["protection_annual_pence"]) == (
        852_000, 830_000, -22_000, "-2.58", 230_000)
    text = cli("reconcile", "hours-vs-band", "--out", str(tmp_path / "out")).output
    assert ("cost neutrality on the full cost at 2026-27 prices over the days funded: 2 plans, prior "
            "£9,078.42; bands £6,596.16 + protection £1,780.89 + cushion £1,337.50 = £9,714.55, "
            "difference £636.13 (7.01%)") in " ".join(text.split())


def test_prices_of_another_year_reprice_every_part(ledger: Ledger, cli: Invoke, tmp_path: Path) -> None:
    """--prices 2025-26 (365 days), the same days. P1: prior 540,000 × 455/365 = 673,150.68 →
    673,151p; B 310,000 × 455/365 = 386,438.36 → 386,438p; protection 230,000 × 243/365 =
    153,123.29 → 153,123p. P2: prior 312,000 × 183/365 = 156,427.40 → 156,427p; C 500,000 ×
    183/365 = 250,684.93 → 250,685p (bands 637,123p). Cushion 50% × 230,000 = 115,000p. Full 386,438 +
    153,123 + 250,685 + 115,000 = 905,246p against 673,151 + 156,427 = 829,578p: +75,668p,
    +9.12%. A year with no prices is refused, naming the priced ones."""
    the_la(ledger)
    overall = reconcile(cli, tmp_path, "--prices", "2025-26")["overall "]
    assert [overall[c] for c in FULL] == ["2025-26", 0, 0, 829_578, 637_123, 153_123, 115_000,
                                          905_246, 75_668, "9.12"]
    refused = cli("reconcile", "hours-vs-band", "--out", str(tmp_path / "out"), "--prices", "2027-28",
                  ok=False)
    assert refused.exit_code == 2
    assert refused.output == ("error: prices: financial year 2027-28 has no hourly rate and tariff "
                              "(priced: 2025-26, 2026-27)\n")


def test_the_transfer_schedule_lists_plans_still_on_hours_by_deadline(
        ledger: Ledger, cli: Invoke, tmp_path: Path) -> None:
    """On 10 Jan 2026, deadlines 31 Aug 2026 and 31 Mar 2028. P1 is on band B by then. Still on
    hours:
    - P2 (20 h, Oak, issued 1 Sep 2025): next review 1 Sep 2026, after the first deadline:
      under 31 Mar 2028; 20 × 1,200 × 38 − 600,000 = 312,000p a year; its move to C from
      1 Apr 2026 is recorded already, so it is not counted.
    - P3 (20 h, Oak, issued 15 Oct 2025): review 15 Oct 2026: by 31 Mar 2028; 312,000p.
    - P4 (30 h, Elm, issued 1 Feb 2025): review 1 Feb 2026: by 31 Aug 2026; 30 × 1,200 × 38 −
      600,000 = 768,000p.
    - P5 (25 h, Elm, issued 1 Sep 2025, ceases from 1 Jul 2026): review 1 Sep 2026, deadline
      31 Mar 2028, but it ceases first: no transfer (540,000p a year, not counted).
    Totals: 31 Aug 2026, 1 plan, 768,000p; 31 Mar 2028, 1 plan (P3), 312,000p.
    On 1 Dec 2027 P3's next review is 15 Oct 2028, after the final deadline: it is to move
    before its review. On 1 Apr 2028 every plan still on hours is overdue."""
    the_la(ledger)
    ledger.issue_plan("P3", "PR-3", OAK, date(2025, 10, 15), hours=Decimal(20))
    ledger.issue_plan("P4", "PR-4", ELM, date(2025, 2, 1), hours=Decimal(30))
    ledger.issue_plan("P5", "PR-5", ELM, date(2025, 9, 1), hours=Decimal(25))
    ledger.cease("P5", date(2026, 7, 1), "left for a special school")
    deadlines = ("--deadline", "2026-08-31", "--deadline", "31/03/2028")

    def schedule(on: str) -> list[dict[str, Any]]:
        out = cli("reconcile", "transfer-schedule", *deadlines, "--on", on, "--out",
                  str(tmp_path / "out"), "--json").stdout
        return json.loads(out)["rows"]

    found = schedule("2026-01-10")
    assert [(r["level"], r["deadline"], r["plan_ref"], r["next_review"], r["status"], r["plans"],
             r["annual_pence"]) for r in found] == [
        ("plan", "2026-08-31", "P4", "2026-02-01", "at its annual review", 1, 768_000),
        ("plan", "2028-03-31", "P2", "2026-09-01", "moves to a band from 2026-04-01", 1, 312_000),
        ("plan", "2028-03-31", "P3", "2026-10-15", "at its annual review", 1, 312_000),
        ("plan", "2028-03-31", "P5", "2026-09-01", "ceases first", 1, 540_000),
        ("deadline", "2026-08-31", "", "", "", 1, 768_000),
        ("deadline", "2028-03-31", "", "", "", 1, 312_000)]
    p3 = [r for r in schedule("2027-12-01") if r["plan_ref"] == "P3"]
    assert [(r["next_review"], r["status"], r["note"]) for r in p3] == [
        ("2028-10-15", "before its annual review", "not priced on that day")]
    assert {r["status"] for r in schedule("2028-04-01") if r["level"] == "plan"} == {"overdue"}
    csv = (tmp_path / "out" / "transfer-schedule-2026-01-10.csv").read_text(encoding="utf-8-sig")
    # the ledger at 16 events, the day looked at, then the row
    assert csv.splitlines()[1] == (
        '16,"2026-01-10","plan","2026-08-31","at its annual review","P4","PR-4","100002",'
        '"mainstream","2025-02-01","30","2026-02-01","",1,768000,"7680.00",""')
    text = cli("reconcile", "transfer-schedule", *deadlines, "--on", "2026-01-10", "--out",
               str(tmp_path / "out")).output
    assert "transfer schedule on 2026-01-10: 4 plans still on hours" in text
    assert "1 plan ceasing by its deadline: no transfer needed" in text
