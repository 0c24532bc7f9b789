"""`topup statement` and `topup statements`: school statements as HTML, PDF or CSV."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from topup_ledger.cli.output import plural
from topup_ledger.cli.support import Failure, as_moment, emit, ledger_of, refusals
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.money import pounds, pounds_for_people
from topup_ledger.statements import FORMATS, Statement, statement_for, write_period, write_statement


def refused(error: RuleError, as_of: datetime | None) -> Failure:
    """A statement records nothing, so say only what was wrong (and as known when)."""
    when = f" as known at {as_of.isoformat()}" if as_of else ""
    return Failure(f"{error.field}: {error.problem}{when}")


def summary(s: Statement) -> dict[str, object]:
    return {
        "school_urn": s.school, "school_name": s.school_name, "period": s.period,
        "nothing_paid": s.nothing_paid, "run_id": s.run_id, "seal": s.seal,
        "runs": [r.run_id for r in s.runs], "position": s.position,
        "as_of": s.as_of.isoformat() if s.as_of else None,
        "totals_pence": {kind: amount for kind, _, amount in s.totals.rows()} | {"total": s.totals.total},
        "year_to_date_pence": {kind: amount for kind, _, amount in s.year_to_date.rows()}
        | {"total": s.year_to_date.total},
        "total_gbp": pounds(s.totals.total), "children": len(s.children),
        "changes": [c.id for c in s.changes],
    }


def describe(s: Statement) -> str:
    if s.nothing_paid:
        return s.nothing_paid_words
    runs = ", ".join(r.run_id for r in s.runs)
    since = f"since run {s.changes_since.run_id}" if s.changes_since else "on its first statement"
    return (f"{s.school_name} (URN {s.school}), {s.period}: {pounds_for_people(s.totals.total)} paid "
            f"in {runs}; {plural(len(s.children), 'child', 'children')}, "
            f"{plural(len(s.changes), 'change')} {since}; "
            f"year to date {pounds_for_people(s.year_to_date.total)}\nseal {s.seal}")


@click.command("statement")
@click.argument("urn")
@click.argument("period_id", metavar="PERIOD")
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
              help="Repeat for several: --format pdf --format html (default: html).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="statements",
              show_default=True, help="Folder for the statement files.")
@click.option("--as-of", "as_of", callback=as_moment, metavar="TIME",
              help="Use only what the ledger had recorded by TIME (2026-01-10T09:00Z, or a date: "
                   "the end of that day, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the statement's figures as JSON.")
@click.pass_context
@refusals
def statement_cmd(ctx: click.Context, urn: str, period_id: str, formats: tuple[str, ...], out: Path,
                  as_of: datetime | None, as_json: bool) -> None:
    """A school's statement for PERIOD: what was paid, for which children, what changed since
    its last statement and why, with the ledger's seal."""
    ledger = ledger_of(ctx)
    try:
        statement = statement_for(ledger.store, urn, period_id, as_of)
        files = write_statement(statement, out, list(dict.fromkeys(formats)) or ["html"])
    except RuleError as error:
        raise refused(error, as_of) from None
    except RuntimeError as error:
        raise Failure(str(error)) from None
    emit(summary(statement) | {"files": [str(f) for f in files]}, as_json,
         describe(statement) + "\n" + "\n".join(f"wrote {f}" for f in files))


@click.command("statements")
@click.argument("period_id", metavar="PERIOD")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the statements and their index.html.")
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
              help="Repeat for several (default: html).")
@click.option("--as-of", "as_of", callback=as_moment, metavar="TIME",
              help="Use only what the ledger had recorded by TIME.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def statements_cmd(ctx: click.Context, period_id: str, out: Path, formats: tuple[str, ...],
                   as_of: datetime | None, as_json: bool) -> None:
    """A statement for every school paid in PERIOD, and an index page linking them."""
    ledger = ledger_of(ctx)
    show = sys.stderr.isatty() and not as_json  # progress for people only

    def tick(done: int, of: int) -> None:
        if show:
            click.echo(f"\rstatements: {done}/{of}", nl=done == of, err=True)
    try:
        result = write_period(ledger.store, period_id, out, tuple(dict.fromkeys(formats)) or ("html",),
                              as_of, tick)
    except RuleError as error:
        raise refused(error, as_of) from None
    except RuntimeError as error:
        raise Failure(str(error)) from None
    total = sum(s.totals.total for s in result.statements)
    report = {"period": result.period, "schools": len(result.statements), "total_pence": total,
              "total_gbp": pounds(total), "index": str(result.index),
              "statements": [summary(s) for s in result.statements]}
    text = (f"{plural(len(result.statements), 'statement')} for {result.period} "
            f"({pounds_for_people(total)} in all) in {out}; index: {result.index}"
            if result.statements else
            f"no school was paid for {result.period}; {result.index} says so")
    emit(report, as_json, text)
