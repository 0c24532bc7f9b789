"""Where paying through the finance system (issue 22) meets run controls and remittance
(issue 23) and statements (issue 26): a withdrawn run carries no recovery forward; a
remittance is matched against the cash the finance files sent, by the payment reference or
supplier the AP system quotes; a statement's head names the payee and the payment date.

Hand-worked (as in test_finance's recovery case): Upton Academy (supplier S01234), P2 on A
(£1,600 a year) from 1 Sep 2025: autumn pays 1600 × 4/12 = £533.33. P2 then ceases from
1 Sep 2025 (never attended) and P6 on A starts 1 Jan 2026. Spring: P6 1600 × 3/12 = £400.00
less P2's autumn £533.33: net −£133.33, so £0.00 is sent and £133.33 carried forward.
Summer: P6 1600 × 5/12 = 666.666… → £666.67, less £133.33 owed: £533.34 sent.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from test_finance import upton_paid_for_autumn
from test_statements import html_text
from topup_ledger.services.recording import Ledger
from topup_ledger.statements import statement_for
from topup_ledger.statements.render import render_html

Invoke = Callable[..., Result]
UPTON = "100002"


def owed(cli: Invoke) -> list[tuple[str, int, str]]:
    return [(o["school_urn"], o["owed_pence"], o["since_run"])
            for o in json.loads(cli("recoveries", "--json").output)]


def test_a_withdrawn_run_carries_no_recovery_forward(cli: Invoke, tmp_path: Path) -> None:
    """Under two-person release the spring run is prepared (net −£133.33: £133.33 carried);
    withdrawn, it paid nothing, so Upton owes nothing; prepared again, it owes £133.33 once."""
    out = tmp_path / "out"
    upton_paid_for_autumn(cli, out)
    cli("policy", "set", "--release", "two-person")
    cli("pay", "2025-26/spring", "--out", str(out))
    assert owed(cli) == [(UPTON, 13333, "2025-26-spring-r1")]
    cli("withdraw", "2025-26-spring-r1", "--reason", "P2's ceasing is under appeal")
    assert owed(cli) == []
    again = json.loads(cli("pay", "2025-26/spring", "--out", str(out), "--json").output)
    assert again["run_id"] == "2025-26-spring-r2" and again["total_pence"] == -13333
    assert owed(cli) == [(UPTON, 13333, "2025-26-spring-r2")]


def test_a_remittance_is_matched_against_the_cash_sent_by_payment_reference_or_supplier(
        cli: Invoke, tmp_path: Path) -> None:
    """The AP system paid £533.33 for autumn (quoting the run and the supplier), nothing for
    spring (the finance files sent nothing) and £533.34 for summer (quoting the payment
    reference): every run matched. Against the runs' nets (−£133.33 spring, £666.67
    summer) spring would be missing and summer £133.33 short."""
    out = tmp_path / "out"
    upton_paid_for_autumn(cli, out)
    cli("pay", "2025-26/spring", "--out", str(out))
    cli("pay", "2025-26/summer", "--out", str(out))
    remit = tmp_path / "remit.csv"
    with remit.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["payee", "reference", "amount", "paid_on"])
        writer.writerow(["S01234", "2025-26-autumn-r1", "533.33", "2025-09-05"])
        writer.writerow(["S01234", "TOPUP-2025-26-summer-r1-100002", "533.34", "2026-04-03"])
    cli("remittance", "import", str(remit))
    found = json.loads(cli("reconcile", "paid-vs-remitted", "--json").stdout)
    assert [(r["run_id"], r["payee"], r["released_pence"], r["remitted_pence"], r["state"])
            for r in found["rows"]] == [
        ("2025-26-autumn-r1", UPTON, 53333, 53333, "matched"),
        ("2025-26-spring-r1", UPTON, 0, 0, "matched"),
        ("2025-26-summer-r1", UPTON, 53334, 53334, "matched")]


def test_a_statement_s_head_names_the_payee_and_the_payment_date_the_run_recorded(
        cli: Invoke, ledger: Ledger, tmp_path: Path) -> None:
    """Issue 26's remittance head from issue 22's facts: Upton Academy is paid through the
    Upton Learning Trust (supplier S01234, LAESTAB 8734001); the autumn run is paid on
    Friday 5 Sep 2025 (--pay-on) and its 1600 × 4/12 = £533.33 shows with that date."""
    cli("school", "add", UPTON, "--name", "Upton Academy", "--setting", "mainstream")
    cli("tariff", "set", "--fy", "2025-26", "--band", "A=1600")
    cli("school", "set", UPTON, "--route", "academy", "--trust", "Upton Learning Trust",
        "--trust-ref", "TR4410", "--supplier", "S01234", "--laestab", "8734001")
    cli("plan", "issue", "P2", "--pupil", "PR-2", "--school", UPTON, "--from", "2025-09-01",
        "--band", "A")
    cli("pay", "2025-26/autumn", "--out", str(tmp_path / "out"), "--pay-on", "2025-09-05")
    text = html_text(render_html(statement_for(ledger.store, UPTON, "2025-26/autumn")))
    for words in ("LAESTAB 8734001", "Upton Learning Trust", "paid to the academy trust",
                  "Supplier number S01234",
                  "Reference 2025-26-autumn-r1 : £533.33, paid on 5 September 2025"):
        assert words in text, (words, text[:2000])
