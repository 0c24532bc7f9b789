"""`topup report finance PERIOD`: the finance and Schools Forum page, with its PDF."""

from __future__ import annotations

from pathlib import Path

import click

from topup_ledger.cli.support import Failure, emit, ledger_of, refusals
from topup_ledger.domain.errors import RuleError
from topup_ledger.statements.finance import write_finance


@click.group("report")
def report_group() -> None:
    """Reports for people: pictures with their figures."""


@report_group.command("finance")
@click.argument("period_id", metavar="PERIOD")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="reports",
              show_default=True, help="Folder for the page and its PDF.")
@click.option("--no-pdf", "no_pdf", is_flag=True, help="Write the HTML page only.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def finance_cmd(ctx: click.Context, period_id: str, out: Path, no_pdf: bool, as_json: bool) -> None:
    """Total paid by period and kind, paid against due, band mix by setting, prior hours
    against band per transferred plan, band calibration, cost neutrality on the full cost and
    recoveries outstanding, up to PERIOD."""
    ledger = ledger_of(ctx)
    try:
        files = write_finance(ledger.store, period_id, out, pdf=not no_pdf)
    except RuleError as error:
        raise Failure(f"{error.field}: {error.problem}") from None
    emit({"period": period_id, "files": [str(f) for f in files]}, as_json,
         "\n".join(f"wrote {f}" for f in files))
