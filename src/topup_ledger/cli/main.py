"""The `topup` command line: parse, call the ledger, print. No rules live here."""

from __future__ import annotations

import os
import sys
from datetime import date
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click

from topup_ledger.cli.audit import export_group, replay_cmd, seal_cmd, verify_cmd
from topup_ledger.cli.finance import (
    finance_group,
    recoveries_cmd,
    run_finance_note,
    school_set_cmd,
)
from topup_ledger.cli.imports import demo_cmd, import_cmd
from topup_ledger.cli.keys import key_group
from topup_ledger.cli.la import la_group
from topup_ledger.cli.listing import COMMANDS as listing_commands
from topup_ledger.cli.output import paragraph, plural, table, working
from topup_ledger.cli.projections import funding_cmd, rebuild_cmd, reconcile_group
from topup_ledger.cli.protection import COMMANDS as protection_commands
from topup_ledger.cli.protection import PLAN_COMMANDS as protection_plan_commands
from topup_ledger.cli.report import report_group
from topup_ledger.cli.runs import COMMANDS as run_commands
from topup_ledger.cli.runs import run_controls_report, run_controls_text, show_preview
from topup_ledger.cli.schedule import transfer_schedule_cmd
from topup_ledger.cli.statements import statement_cmd, statements_cmd
from topup_ledger.cli.support import (
    DEFAULT_LEDGER,
    Failure,
    as_date,
    as_decimal,
    as_pence,
    check_folder,
    emit,
    ledger_of,
    open_ledger,
    refusals,
)
from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import parse_year, termly_periods
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.money import parse_pounds, pounds, pounds_for_people
from topup_ledger.io.periods_csv import read_periods
from topup_ledger.io.term_dates_csv import read_term_dates
from topup_ledger.services.listing import academic_year_dates, financial_year_dates, replaced
from topup_ledger.services.payment_run import AlreadyReleased
from topup_ledger.services.preview import preview as preview_run
from topup_ledger.services.protection import spells_in_words
from topup_ledger.services.recording import Ledger
from topup_ledger.services.reports import due_report, history
from topup_ledger.services.run_controls import pay_under_controls
from topup_ledger.storage.store import describe


def financial_year(year: str) -> str:
    """'2025-26' → 'financial year 2025-26 (1 Apr 2025 to 31 Mar 2026)'."""
    first, last = financial_year_dates(year)
    return f"financial year {year} ({first:%-d %b %Y} to {last:%-d %b %Y})"


def replacing(ledger: Ledger, before: str | None) -> str:
    """What a new rate, tariff or calendar replaced, if it replaced one."""
    return f"\n  replacing {before}" if before and not ledger.repeated else ""


def recorded(ledger: Ledger, event: str) -> str:
    """How a recording command starts its answer; a repeat records nothing and says so."""
    return f"already recorded as {event}, nothing new" if ledger.repeated else f"recorded {event}"


def installed_version() -> str:
    try:
        return version("topup-ledger")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from topup_ledger import __version__
        return __version__


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(installed_version(), "--version", "-V", prog_name="topup",
                      message="%(prog)s %(version)s")
@click.option("--ledger", "location", envvar="TOPUP_LEDGER", default=DEFAULT_LEDGER,
              show_default=True, help="SQLite file, or a postgresql:// URL.")
@click.option("--key-file", envvar="TOPUP_LEDGER_KEY_FILE", default=None,
              type=click.Path(dir_okay=False),
              help="The ledger's key (default: the file `topup init` made in "
                   "~/.config/topup-ledger/keys; TOPUP_LEDGER_KEY gives the key itself).")
@click.option("--pager/--no-pager", "pager", default=None,
              help="Show tables through the pager on a terminal: always, or never (default: "
                   "when taller than the terminal). Never when output is not a terminal.")
@click.pass_context
def main(ctx: click.Context, location: str, key_file: str | None, pager: bool | None) -> None:
    """topup: pay schools SEND top-up funding and prove what was paid and why."""
    obj = ctx.ensure_object(dict)
    obj.setdefault("location", location)
    obj.setdefault("pager", pager)
    if key_file:
        obj.setdefault("key_file", key_file)
    if ctx.invoked_subcommand is None:  # bare `topup`: what it can do, not an error
        click.echo(ctx.get_help())
        ctx.exit(0)


@main.command()
@click.pass_context
@refusals
def init(ctx: click.Context) -> None:
    """Create a ledger (a SQLite file by default; a postgresql:// URL selects PostgreSQL)."""
    ledger = open_ledger(ctx, create=True)
    click.echo(f"ledger ready at {describe(ledger.store.location)} "
               f"({ledger.store.max_position()} events)")


@main.group()
def school() -> None:
    """Schools (by URN)."""


@school.command("add")
@click.argument("urn")
@click.option("--name", required=True)
@click.option("--setting", required=True, type=click.Choice(ev.SETTINGS))
@click.option("--la", "la_code", default=None, help="The LA's code for the school.")
@click.pass_context
@refusals
def school_add(ctx: click.Context, urn: str, name: str, setting: str, la_code: str | None) -> None:
    """Add a school to the ledger."""
    ledger = ledger_of(ctx)
    event = ledger.add_school(urn, name, setting, la_code)
    click.echo(f"{recorded(ledger, event)}: school {urn} {name} ({setting})")


@school.command("cushion")
@click.argument("urn")
@click.option("--from", "effective", required=True, callback=as_date("from"))
@click.option("--until", required=True, callback=as_date("until"), help="Last day it applies.")
@click.option("--share", required=True, callback=as_decimal,
              help="Percent of the school's net reduction from the move to bands, e.g. 50.")
@click.option("--fy", "year", default=None, metavar="YEAR",
              help="Financial year of the transfers it is for (default: the year of --from).")
@click.option("--reason", default="")
@click.pass_context
@refusals
def school_cushion(ctx: click.Context, urn: str, effective: date, until: date, share: Decimal,
                   year: str | None, reason: str) -> None:
    """Give a school a transitional cushion, paid as its own line: a share of its net
    reduction at transfer for the plans it moved from hours to bands in a financial year."""
    ledger = ledger_of(ctx)
    event = ledger.set_cushion(urn, effective, until, share, reason, year)
    click.echo(f"{recorded(ledger, event)}: school {urn} cushion {share}% from {effective} to {until}"
               + (f" for the transfers of financial year {year}" if year else ""))


@main.group()
def calendar() -> None:
    """Payment calendars."""


@calendar.command("set")
@click.option("--ay", "--year", "year", required=True, metavar="YEAR",
              help="Academic year (1 September to 31 August), e.g. 2025-26.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV: period,start,end and either share (4/12) or school_days.")
@click.option("--term-dates", "term_dates", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV: kind (term|closure),start,end: the school days; the periods are then "
                   "paid by school days on roll.")
@click.option("--reason", default="")
@click.pass_context
@refusals
def calendar_set(ctx: click.Context, year: str, path: Path | None, term_dates: Path | None,
                 reason: str) -> None:
    """Record the payment periods of an academic year (three terms if no file is given)."""
    parse_year(year)
    periods = read_periods(year, path, counted=term_dates is not None) if path else termly_periods(year)
    terms, closures = read_term_dates(term_dates) if term_dates else ((), ())
    ledger = ledger_of(ctx)
    before = replaced(ledger, "calendar", year)
    event = ledger.set_calendar(year, periods, reason, terms, closures)
    first, last = academic_year_dates(year)
    school_days = ledger.calendars().get(year, ()) if terms else ()
    click.echo(f"{recorded(ledger, event)}: {plural(len(periods), 'period')} for academic year "
               f"{year} ({first:%-d %b %Y} to {last:%-d %b %Y}): "
               + ", ".join(f"{p.id} {p.start} to {p.end}" for p in periods)
               + (f"\n  paid by school days on roll: {sum(p.school_days or 0 for p in school_days)} "
                  "school days, " + ", ".join(f"{p.id} {p.school_days}" for p in school_days)
                  if school_days else "")
               + replacing(ledger, before))


@main.group()
def rate() -> None:
    """Hourly rates of the hours-based model, per financial year."""


@rate.command("set")
@click.option("--fy", "--year", "year", required=True, metavar="YEAR",
              help="Financial year (1 April to 31 March), e.g. 2025-26.")
@click.option("--hourly", required=True, callback=as_pence, help="£ per hour, e.g. 11.81")
@click.option("--weeks", required=True, callback=as_decimal, help="Weeks a year, e.g. 38")
@click.option("--threshold", default="6000", callback=as_pence, show_default=True,
              help="£ a mainstream school meets itself.")
@click.option("--reason", default="")
@click.option("--from", "effective", default=None, callback=as_date("from"),
              help="A day inside the year from which a revision applies (default: the whole year).")
@click.pass_context
@refusals
def rate_set(ctx: click.Context, year: str, hourly: int, weeks: Decimal, threshold: int,
             reason: str, effective: date | None) -> None:
    """Set the hourly rate, weeks and notional threshold for a financial year."""
    parse_year(year)
    ledger = ledger_of(ctx)
    before = replaced(ledger, "rate", year)
    event = ledger.set_rate(year, hourly, weeks, threshold, reason, effective)
    click.echo(f"{recorded(ledger, event)}: {financial_year(year)} hourly rate "
               f"{pounds_for_people(hourly)} × {weeks} weeks, threshold {pounds_for_people(threshold)}"
               + (f", from {effective}" if effective else "") + replacing(ledger, before))


@main.group()
def tariff() -> None:
    """Band values, per financial year."""


@tariff.command("set")
@click.option("--fy", "--year", "year", required=True, metavar="YEAR",
              help="Financial year (1 April to 31 March), e.g. 2025-26.")
@click.option("--band", "bands", multiple=True, required=True, help="NAME=£ a year, e.g. D=7000")
@click.option("--setting", type=click.Choice(ev.SETTINGS), default=None,
              help="Only for this setting type (otherwise for every setting).")
@click.option("--reason", default="")
@click.option("--from", "effective", default=None, callback=as_date("from"),
              help="A day inside the year from which a revision applies (default: the whole year).")
@click.pass_context
@refusals
def tariff_set(ctx: click.Context, year: str, bands: tuple[str, ...], setting: str | None,
               reason: str, effective: date | None) -> None:
    """Publish or revise band values for a financial year."""
    values: dict[str, int] = {}
    for item in bands:
        name, sep, amount = item.partition("=")
        if not sep:
            raise RuleError("band", f"{item!r} is not NAME=AMOUNT, e.g. D=7000")
        try:
            values[name.strip()] = parse_pounds(amount)
        except ValueError as error:
            raise RuleError("band", f"{name}: {error}") from None
    parse_year(year)
    ledger = ledger_of(ctx)
    before = replaced(ledger, "tariff", year, setting)
    event = ledger.set_tariff(year, values, setting, reason, effective)
    click.echo(f"{recorded(ledger, event)}: {financial_year(year)} " + ", ".join(
        f"{b}={pounds_for_people(p)}" for b, p in sorted(values.items()))
        + (f" ({setting})" if setting else "") + (f", from {effective}" if effective else "")
        + replacing(ledger, before))


@main.group()
def plan() -> None:
    """Plans: issue, change, move, cease, correct."""


@plan.command("issue")
@click.argument("ref")
@click.option("--pupil", required=True, help="Pseudonymous pupil reference (never a name).")
@click.option("--school", required=True, help="URN")
@click.option("--from", "effective", required=True, callback=as_date("from"))
@click.option("--hours", callback=as_decimal, help="Hours a week (the hours-based model).")
@click.option("--band", help="Band (the banded model).")
@click.option("--kind", type=click.Choice(ev.PLAN_KINDS), default="ehcp", show_default=True)
@click.pass_context
@refusals
def plan_issue(ctx: click.Context, ref: str, pupil: str, school: str, effective: date,
               hours: Decimal | None, band: str | None, kind: str) -> None:
    """Issue a plan (EHCP or non-statutory top-up)."""
    ledger = ledger_of(ctx)
    event = ledger.issue_plan(ref, pupil, school, effective, hours, band, kind)
    click.echo(f"{recorded(ledger, event)}: plan {ref} issued from {effective}")


@plan.command("hours")
@click.argument("ref")
@click.option("--hours", required=True, callback=as_decimal)
@click.option("--from", "effective", required=True, callback=as_date("from"))
@click.option("--reason", default="")
@click.pass_context
@refusals
def plan_hours(ctx: click.Context, ref: str, hours: Decimal, effective: date, reason: str) -> None:
    """Change the hours of a plan on the hours-based model."""
    ledger = ledger_of(ctx)
    event = ledger.change_hours(ref, hours, effective, reason)
    click.echo(f"{recorded(ledger, event)}: plan {ref} {hours} hours a week from {effective}")


@plan.command("transfer")
@click.argument("ref")
@click.option("--band", required=True)
@click.option("--from", "effective", required=True, callback=as_date("from"))
@click.option("--protect-until", callback=as_date("protect-until"),
              help="Pay the larger of the prior and the band amount up to this day.")
@click.pass_context
@refusals
def plan_transfer(ctx: click.Context, ref: str, band: str, effective: date,
                  protect_until: date | None) -> None:
    """Move a plan from hours to a band."""
    ledger = ledger_of(ctx)
    event = ledger.transfer(ref, band, effective, protect_until)
    click.echo(f"{recorded(ledger, event)}: plan {ref} on band {band} from {effective}")


@plan.command("band")
@click.argument("ref")
@click.option("--band", required=True)
@click.option("--from", "effective", required=True, callback=as_date("from"))
@click.option("--reason", required=True, type=click.Choice(ev.BAND_CHANGE_REASONS))
@click.pass_context
@refusals
def plan_band(ctx: click.Context, ref: str, band: str, effective: date, reason: str) -> None:
    """Change a plan's band (a new fact, e.g. after a review)."""
    ledger = ledger_of(ctx)
    event = ledger.change_band(ref, band, effective, reason)
    click.echo(f"{recorded(ledger, event)}: plan {ref} band {band} from {effective} ({reason})")


@plan.command("move")
@click.argument("ref")
@click.option("--school", required=True, help="URN of the new school")
@click.option("--from", "effective", required=True, callback=as_date("from"))
@click.pass_context
@refusals
def plan_move(ctx: click.Context, ref: str, school: str, effective: date) -> None:
    """Move a plan's placement to another school."""
    ledger = ledger_of(ctx)
    event = ledger.move(ref, school, effective)
    click.echo(f"{recorded(ledger, event)}: plan {ref} at school {school} from {effective}")


@plan.command("cease")
@click.argument("ref")
@click.option("--from", "effective", required=True, callback=as_date("from"))
@click.option("--reason", required=True)
@click.pass_context
@refusals
def plan_cease(ctx: click.Context, ref: str, effective: date, reason: str) -> None:
    """Cease a plan with effect from a date (funded to the day before)."""
    ledger = ledger_of(ctx)
    event = ledger.cease(ref, effective, reason)
    click.echo(f"{recorded(ledger, event)}: plan {ref} ceases from {effective}")


@plan.command("correct")
@click.argument("ref")
@click.option("--event", "event_id", required=True, help="The event it corrects, e.g. 2 or P1/2")
@click.option("--band")
@click.option("--hours", callback=as_decimal)
@click.option("--from", "effective", callback=as_date("from"))
@click.option("--school")
@click.option("--note", required=True, help="Why the earlier event was wrong.")
@click.pass_context
@refusals
def plan_correct(ctx: click.Context, ref: str, event_id: str, band: str | None,
                 hours: Decimal | None, effective: date | None, school: str | None,
                 note: str) -> None:
    """Say an earlier event was wrong, and what it should have said."""
    ledger = ledger_of(ctx)
    event = ledger.correct(ref, event_id, note, band=band, hours=hours,
                                   effective=effective, school=school)
    click.echo(f"{recorded(ledger, event)}: correction of {event_id} on plan {ref}")


@main.command("history")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def history_cmd(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Every event of a plan: effective date, recorded time, what and why."""
    if as_json:  # the JSON's words are kept as they were ("£6341.45"): scripts read them
        return emit([r.as_json() for r in history(ledger_of(ctx), ref)], True, "")
    rows = history(ledger_of(ctx), ref, pounds_for_people)
    click.echo(f"plan {ref}: {plural(len(rows), 'event')}")
    table(["event", "effective", "recorded", "what (why)"],
          [[row.id, row.effective, row.recorded_at[:19].replace("T", " "),
            row.what + (f" ({row.why})" if row.why else "")
            + (f" [corrected by {', '.join(row.corrected_by)}]" if row.corrected_by else "")]
           for row in rows], flexible=["what (why)"], wrap=["what (why)"])
    for line in spells_in_words(ledger_of(ctx), ref):
        paragraph(line, indent="  ")  # wrapped at the terminal's width, whole when piped


@main.command("due")
@click.argument("ref")
@click.option("--period", "period_id", required=True, help="e.g. 2025-26/autumn")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def due_cmd(ctx: click.Context, ref: str, period_id: str, as_json: bool) -> None:
    """A plan's entitlement for a period as known now, with its stretches."""
    report = due_report(ledger_of(ctx), ref, period_id)
    lines = [f"plan {ref}, {report['period']} ({report['period_start']} to "
             f"{report['period_end']}, share {report['share']})"]
    for s in report["stretches"]:  # type: ignore[attr-defined]
        protection = (f" + protection {pounds_for_people(s['protection_annual_pence'])}"
                      if s["protection_annual_pence"] else "")
        lines.append(f"  {s['from']} to {s['to']} ({s['days']} days) school {s['school']} "
                     f"{s['basis']} {s['band_or_hours']}: {pounds_for_people(s['annual_pence'])} "
                     f"a year{protection} [{s['because']}]")
    for d in report["due"]:  # type: ignore[attr-defined]
        lines.append(f"  due to {d['school']} ({d['component']}): {pounds_for_people(d['pence'])}")
    lines.append(f"  total due: {pounds_for_people(report['total_pence'])}")  # type: ignore[arg-type]
    emit(report, as_json, "\n".join(lines))


@main.command("pay")
@click.argument("period_id", metavar="PERIOD")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default="payments",
              show_default=True, help="Folder for the payment files.")
@click.option("--copy", is_flag=True,
              help="Write a recorded run's files again, as copies (named COPY-…): one release per run.")
@click.option("--pay-on", default=None, callback=as_date("pay-on"),
              help="Payment date written in the finance files (default: the period's first working day).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--preview", is_flag=True, help="Work the run out and show it; record nothing.")
@click.option("--catch-up", is_flag=True,
              help="Pay earlier periods no run has paid (or a year on default terms) on purpose.")
@click.pass_context
@refusals
def pay_cmd(ctx: click.Context, period_id: str, out: Path, copy: bool, pay_on: date | None,
            as_json: bool, preview: bool, catch_up: bool) -> None:
    """Record a payment run for PERIOD and write its payment files (CSV and Parquet);
    under two-person release, a prepared run and DRAFT files (see `topup release`)."""
    parse_year(period_id.split("/", 1)[0], "period")  # 2000-2099, before any work
    ledger = ledger_of(ctx)
    if preview:
        with working(f"previewing the payment run for {period_id}", quiet=as_json):
            found = preview_run(ledger, period_id, catch_up=catch_up)
        return show_preview(found, as_json)
    check_folder(out)  # a folder that cannot be made is refused before the run, not after
    with working(f"working out the payment run for {period_id}", quiet=as_json):
        try:
            result, files = pay_under_controls(ledger, period_id, out, copy=copy,
                                               catch_up=catch_up, pay_on=pay_on)
        except AlreadyReleased as error:
            raise Failure(str(error)) from None
    rows = [{"school_urn": s.school, "total_pence": s.pence, "lines": s.lines}
            for s in result.schools]
    total = result.total
    report = {"run_id": result.run_id, "period": result.period, "recorded": result.recorded,
              "supplementary": result.supplementary, "seal": result.seal,
              "schools": rows, "total_pence": total, "total_gbp": pounds(total),
              "files": [str(f) for f in files], **run_controls_report(ledger, result)}
    finance, note = run_finance_note(ledger, result.run_id, [(s.school, s.pence) for s in result.schools])
    if finance:
        report["finance"] = finance
    if not result.recorded:
        text = (f"nothing new to pay for {period_id} since run {result.run_id}; nothing recorded"
                f"\nfiles of {result.run_id} written again: " + ", ".join(map(str, files))
                + "".join(f"\n{said}" for said in run_controls_text(report)))
    else:
        kind = "supplementary run" if result.supplementary else "payment run"
        text = "\n".join([
            f"recorded {kind} {result.run_id} for {period_id}: {plural(len(rows), 'school')}, "
            f"total {pounds_for_people(total)}", f"seal {result.seal}", *([note] if note else []),
            *run_controls_text(report), *(f"  wrote {f}" for f in files)])
    emit(report, as_json, text)


main.add_command(import_cmd)
school.add_command(school_set_cmd)
main.add_command(finance_group)
main.add_command(recoveries_cmd)
main.add_command(funding_cmd)
main.add_command(reconcile_group)
reconcile_group.add_command(transfer_schedule_cmd)
main.add_command(rebuild_cmd)
main.add_command(demo_cmd)
main.add_command(replay_cmd)
main.add_command(seal_cmd)
main.add_command(verify_cmd)
main.add_command(export_group)
main.add_command(key_group)
main.add_command(statement_cmd)
main.add_command(statements_cmd)
main.add_command(la_group)
main.add_command(report_group)
for command in (*listing_commands, *run_commands, *protection_commands):
    main.add_command(command)
for command in protection_plan_commands:
    plan.add_command(command)


def run() -> None:  # the console entry point: a friendly interrupt
    # Whatever the process creates (ledger journals, projection caches, PDFs, folders) is
    # readable only by its owner: the files name schools and pseudonymous pupils.
    os.umask(0o077)
    try:
        main()
    except KeyboardInterrupt:
        click.echo("interrupted; nothing half-written is kept", err=True)
        sys.exit(130)


