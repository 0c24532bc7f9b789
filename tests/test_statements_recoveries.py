"""Statements show recoveries (issue 22): where a run's net for the school was negative the
finance files sent £0 and carried the excess forward; a later run recovered it. The
statement's "what was paid" per run shows, beside the lines' net, the cash actually sent and
the recovery, in plain words.

Hand-worked (test_finance_under_controls's case): Upton Academy, P2 on A (£1,600 a year) from
1 Sep 2025: autumn pays 1600 × 4/12 = £533.33. P2 then ceases from 1 Sep 2025 and P6 on A
starts 1 Jan 2026. Spring: P6 1600 × 3/12 = £400.00 less P2's autumn £533.33: net −£133.33,
so £0.00 is sent and £133.33 carried. Summer: P6 1600 × 5/12 = 666.666… → £666.67, less
£133.33 recovered: £533.34 sent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from test_finance_under_controls import UPTON, upton_paid_for_autumn
from test_statements import html_text
from topup_ledger.services.recording import Ledger
from topup_ledger.statements import statement_for
from topup_ledger.statements.render import render_html

Invoke = Callable[..., Result]


def test_a_statement_shows_the_cash_sent_and_the_recovery_carried_then_recovered(
        cli: Invoke, ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "out"
    upton_paid_for_autumn(cli, out)
    cli("pay", "2025-26/spring", "--out", str(out))
    cli("pay", "2025-26/summer", "--out", str(out))

    spring = statement_for(ledger.store, UPTON, "2025-26/spring")
    (run,) = spring.runs
    assert (run.paid_here, run.cash, run.carried, run.recovered) == (-13333, 0, 13333, 0)
    text = html_text(render_html(spring))
    assert "Reference 2025-26-spring-r1 : £0.00" in text, text[:3000]
    assert ("Lines −£133.33; £133.33 to be recovered from your next payments: the lines came "
            "to less than nothing, so nothing was sent") in text, text[:3000]
    assert "cash sent £0.00: £133.33 to be recovered from your next payments" in text
    assert "Total of the lines for 2025-26/spring −£133.33 Cash sent: £0.00" in text, text[:3000]

    summer = statement_for(ledger.store, UPTON, "2025-26/summer")
    (run,) = summer.runs
    assert (run.paid_here, run.cash, run.carried, run.recovered) == (66667, 53334, 0, 13333)
    text = html_text(render_html(summer))
    assert "Reference 2025-26-summer-r1 : £533.34" in text, text[:3000]
    assert "£133.33 recovered from this payment (owed from an earlier run)" in text
    assert "£666.67 (the lines' net); cash sent £533.34" in text
    assert "Total of the lines for 2025-26/summer £666.67 Cash sent: £533.34" in text

    autumn = statement_for(ledger.store, UPTON, "2025-26/autumn")
    (run,) = autumn.runs
    assert (run.paid_here, run.cash, run.recovery_words) == (53333, 53333, "")
    text = html_text(render_html(autumn))
    assert "recovered" not in text and "Cash sent" not in text
    assert "Total paid for 2025-26/autumn £533.33" in text
