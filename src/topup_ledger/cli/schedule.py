"""`topup reconcile transfer-schedule`: plans still on hours, by the LA's transfer deadlines
(docs/rules.md §13). Parse, call, print."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from topup_ledger.cli.output import limit_option, plural, table
from topup_ledger.cli.projections import files_line, gbp, out_option, reads
from topup_ledger.cli.support import as_date, emit, ledger_of, refusals
from topup_ledger.domain.calendar import parse_date
from topup_ledger.domain.errors import RuleError
from topup_ledger.projections import file_stem, write_output
from topup_ledger.services.transfer_schedule import CEASES, schedule


def as_dates(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[date]:
    try:
        return [parse_date(value, "deadline") for value in values]
    except RuleError as error:
        raise click.BadParameter(error.problem) from None


@click.command("transfer-schedule")
@click.option("--deadline", "deadlines", multiple=True, required=True, callback=as_dates,
              metavar="DATE", help="One of the LA's deadlines for the move to bands (repeatable), "
                                   "e.g. --deadline 2026-08-31 --deadline 2028-03-31.")
@click.option("--on", "on", callback=as_date("on"), help="The day to look at (default: today).")
@click.option("--school", help="Only plans at this school (URN).")
@out_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@limit_option
@click.pass_context
@refusals
@reads
def transfer_schedule_cmd(ctx: click.Context, deadlines: list[date], on: date | None,
                          school: str | None, out: Path, as_json: bool, limit: int) -> None:
    """Plans still on hours, each under the deadline it is to move to a band by (its annual
    review's, or the final one), with what they cost a year on hours."""
    ledger = ledger_of(ctx)
    day = on or ledger.clock().date()
    found = schedule(ledger, deadlines, day, school)
    position = ledger.store.max_position()
    stamped = [{"ledger_position": position, "on": day.isoformat(), **row} for row in found]
    files = write_output("transfer-schedule", stamped, out,
                         file_stem("transfer-schedule", None, school) + f"-{day.isoformat()}")
    if as_json:
        return emit({"projection": "transfer-schedule", "ledger_position": position,
                     "on": day.isoformat(), "rows": stamped, "files": [str(f) for f in files]},
                    True, "")
    plans = [r for r in found if r["level"] == "plan"]
    click.echo(f"transfer schedule on {day}: {plural(len(plans), 'plan')} still on hours")
    table(["deadline", "plan", "school", "hours", "next review", "status", "a year on hours"],
          [[r["deadline"], r["plan_ref"], r["school_urn"], r["hours"], r["next_review"],
            r["status"], gbp(r["annual_pence"])] for r in plans],
          right=[False] * 6 + [True], optional=["next review", "school"], limit=limit, what="plan")
    click.echo("")
    table(["deadline", "plans to move", "a year on hours"],
          [[r["deadline"], r["plans"], gbp(r["annual_pence"])] for r in found if r["level"] == "deadline"],
          right=[False, True, True])
    ceasing = sum(r["status"] == CEASES for r in plans)
    if ceasing:
        whose = "its" if ceasing == 1 else "their"
        click.echo(f"{plural(ceasing, 'plan')} ceasing by {whose} deadline: no transfer needed")
    click.echo(files_line(files))
