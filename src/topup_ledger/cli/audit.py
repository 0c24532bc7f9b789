"""The audit commands of `topup`: replay, seal, verify, export events.

Registered on the main group in cli.py. Click commands only: parse, call ``audit``, print.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from topup_ledger.audit.export import ExportError, export_events
from topup_ledger.audit.replay import ReplayError, replay
from topup_ledger.audit.verify import (
    OK_TEXT,
    Problem,
    Report,
    checks,
    key_rows,
    uncovered,
    verify,
)
from topup_ledger.cli.output import limit_option, paragraph, plural, table
from topup_ledger.cli.support import (
    Failure,
    as_moment,
    emit,
    events_progress,
    ledger_of,
    naming_the_ledger,
    refusals,
)
from topup_ledger.services.sealing import seal
from topup_ledger.storage.chain import DigestError, parse_digest
from topup_ledger.storage.upcasting import UnknownSchemaVersion

F = TypeVar("F", bound=Callable[..., Any])
BIG = 50_000  # events: a pass over a ledger this long shows a progress bar (on a terminal)


def audit_refusals(func: F) -> F:
    """The ledger's refusals, plus what reading old or damaged events can raise."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ReplayError, ExportError) as error:
            raise Failure(naming_the_ledger(str(error)), exit_code=5) from None
        except UnknownSchemaVersion as error:
            raise Failure(f"{error}; nothing was written", exit_code=5) from None

    return refusals(wrapper)  # type: ignore[return-value]


def digest_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    for text in value:
        try:
            parse_digest(text)
        except DigestError as error:
            raise click.BadParameter(str(error)) from None
    return value


@click.command("replay")
@click.option("--as-of", "when", required=True, callback=as_moment,
              help="A recorded time (ISO, UTC if no offset) or a date (the end of that day).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the files as known then (nothing else is written anywhere).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@audit_refusals
def replay_cmd(ctx: click.Context, when: datetime, out: Path, as_json: bool) -> None:
    """Every payment file (and projection) as known at a moment, rebuilt from the events."""
    store = ledger_of(ctx).store
    with events_progress("replaying", store.max_position(), at_least=BIG) as bar:
        result = replay(store, when, out, progress=bar)
    if as_json:
        return emit(result.as_json(), True, "")
    paragraph(f"as of {when.isoformat()}: position {result.position:,}"
              + (f" (recorded {result.recorded_at})" if result.recorded_at else " (nothing recorded)"))
    click.echo(f"seal {result.seal}")
    paragraph(f"{plural(len(result.runs), 'payment run')} known then: "
              + (", ".join(result.runs) or "none"))
    if result.projections_note:
        paragraph(result.projections_note)
    written = [*result.files, *result.projections, result.manifest]
    table(["files written"], [[str(f)] for f in written], flexible=["files written"],
          wrap=["files written"])


@click.command("seal")
@click.option("--reason", default="on demand", show_default=True)
@click.option("--witness", "witness_log", envvar="TOPUP_WITNESS", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Also append the seal to this witness log, kept outside the ledger "
                   "(TOPUP_WITNESS: the same for every payment run's seal).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@audit_refusals
def seal_cmd(ctx: click.Context, reason: str, witness_log: Path | None, as_json: bool) -> None:
    """Record the chain head now; keep the printed digest outside the ledger."""
    result = seal(ledger_of(ctx), reason.strip() or "on demand", witness_log)
    if as_json:
        return emit(result.as_json(), True, "")
    click.echo(f"sealed {result.digest}")
    paragraph(f"recorded {result.event} at position {result.recorded_at:,}; keep the digest outside "
              "the ledger: `topup verify --digest` checks the ledger against it")


@click.command("verify")
@click.option("--digest", "digests", multiple=True, callback=digest_option, metavar="HEX@POSITION",
              help="A digest kept outside the ledger (payment file, statement, `topup seal`); repeat.")
@click.option("--files", "folders", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Also check payment files found in this folder against their recorded digests.")
@click.option("--witness", "witness_logs", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A witness log (`topup seal --witness`, TOPUP_WITNESS): check every seal in it.")
@click.option("--no-rebuild", is_flag=True,
              help="Do not rebuild every run's files from the ledger to compare with their digests.")
@limit_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@audit_refusals
def verify_cmd(ctx: click.Context, digests: tuple[str, ...], folders: tuple[Path, ...],
               witness_logs: tuple[Path, ...], no_rebuild: bool, limit: int, as_json: bool) -> None:
    """Check the hash chain, every seal, every run's files and every digest given.

    Exits 0 if everything matches, 1 if anything does not (naming the first event that does
    not match).
    """
    store = ledger_of(ctx).store
    with events_progress("verifying", store.max_position(), at_least=BIG) as bar:
        report = verify(store, digests, folders, rebuild=not no_rebuild, progress=bar,
                        witnesses=witness_logs)
    if as_json:
        emit(report.as_json(), True, "")
    else:
        print_report(report, limit)
    if not report.ok:
        ctx.exit(1)


def print_report(report: Report, limit: int) -> None:
    """``verify``'s answer on a terminal: what was checked, then the problems as a table."""
    click.echo(f"ledger: {plural(report.events, 'event')}; chain head:\n{report.digest}")
    table(["check", "result"], [list(c) for c in checks(report)], flexible=["result"],
          wrap=["result"])
    if report.keys:  # which key authenticates which stretch of the ledger
        click.echo()
        table(["key", "positions", "events", "since", "result"], key_rows(report),
              right=[False, False, True], flexible=["since"], optional=["since"])
    for status in report.releases:  # who prepared and who released each run (issue 23)
        paragraph(f"run {status.run_id}: {status.text()}", "  ")
    for note in report.notes:
        paragraph(f"note: {note}", "  ")
    if report.ok:
        paragraph(OK_TEXT)
        note = uncovered(report)
        if note:
            paragraph(note, "  ")
        return
    if report.first is not None:
        paragraph(f"FIRST MISMATCH: {report.first.text()}", "  ")
    click.echo(f"FAILED: {plural(len(report.problems), 'problem')}")
    problem_table(report.problems, "problem", limit)
    if report.hints:
        click.echo("hints (what may help find what changed):")
        problem_table(report.hints, "hint", limit)


def problem_table(problems: list[Problem], what: str, limit: int) -> None:
    table(["kind", "position", "event", what],
          [[p.kind, "" if p.position is None else f"{p.position:,}", p.event or "", p.message]
           for p in problems],
          right=[False, True], flexible=[what], wrap=[what], limit=limit, what=what)


@click.group("export")
def export_group() -> None:
    """Export the ledger for analytics engines and auditors."""


@export_group.command("events")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The Parquet file to write.")
@click.option("--as-of", "when", callback=as_moment,
              help="Only the events known at this recorded time (or date: the end of that day).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@audit_refusals
def export_events_cmd(ctx: click.Context, out: Path, when: datetime | None, as_json: bool) -> None:
    """Every event in ledger order with its chain link, as Parquet."""
    store = ledger_of(ctx).store
    with events_progress("exporting", store.max_position(), at_least=BIG) as bar:
        result = export_events(store, out, when, progress=bar)
    if as_json:
        return emit(result.as_json(), True, "")
    paragraph(f"wrote {plural(result.events, 'event')} to {result.path}")
    click.echo(f"chain head {result.digest}\ncheck it anywhere:\n"
               f"  python scripts/verify_export.py {result.path} --digest {result.digest}")
