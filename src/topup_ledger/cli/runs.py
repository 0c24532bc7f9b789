"""Run controls on the command line (issue 23): what ``pay --preview`` and ``pay`` print of
them, ``policy set``, ``release``, ``withdraw``; and the remittance commands registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from topup_ledger.cli.output import plural, table
from topup_ledger.cli.projections import reconcile_group
from topup_ledger.cli.remittance import paid_vs_remitted_cmd, remittance_group
from topup_ledger.cli.support import check_folder, emit, ledger_of, refusals
from topup_ledger.domain import events as ev
from topup_ledger.domain.money import pounds_for_people
from topup_ledger.services.payment_run import RunResult
from topup_ledger.services.preview import Preview
from topup_ledger.services.recording import Ledger
from topup_ledger.services.run_controls import release, set_policy, withdraw
from topup_ledger.storage.releases import run_status


def show_preview(found: Preview, as_json: bool, limit: int = 50) -> None:
    """Print what ``pay`` would record; exit 1 if it would refuse (nothing is recorded)."""
    if as_json:
        emit(found.as_json(), True, "")
    else:
        head = (f"PREVIEW (nothing recorded): {found.period} would be run "
                f"{found.run_id or '(none: nothing new to pay)'}, release {found.release}, "
                f"{plural(len(found.schools), 'school')}, total {pounds_for_people(found.total)}"
                + (f"; compared with run {found.last_run}" if found.last_run else ""))
        click.echo(head)
        if found.reaches_back:
            click.echo("reaches back into: " + ", ".join(found.reaches_back))
        if found.schools:
            table(["school", "total", "last run", "difference", "lines"],
                  [[s.school, pounds_for_people(s.total), pounds_for_people(s.last_run_total),
                    pounds_for_people(s.difference), s.lines] for s in found.schools],
                  right=[False, True, True, True, True], limit=limit, what="school")
        back = [(s.school, line) for s in found.schools for line in s.back_lines]
        if back:
            click.echo(f"arrears and claw-back ({plural(len(back), 'line')}):")
            table(["school", "plan", "kind", "for", "amount", "cause", "why"],
                  [[school, line.plan or "(school)", line.kind, line.for_period,
                    pounds_for_people(line.amount), ", ".join(line.caused_by), line.reason]
                   for school, line in back],
                  right=[False, False, False, False, True], flexible=["why", "cause"],
                  limit=limit, what="line")
        if found.refusals:
            click.echo("pay would refuse:\n  " + "\n  ".join(found.refusals))
    if found.would_refuse:
        raise SystemExit(1)


def run_controls_report(ledger: Ledger, result: RunResult) -> dict[str, Any]:
    """What ``pay --json`` adds: the run's release state, who prepared it, what it caught up."""
    status = run_status(ledger.store, result.run_id)
    if status is None:
        return {}
    return {"release": status.release, "state": status.state, "prepared_by": status.prepared_by,
            "released_by": status.released_by, "caught_up": list(status.caught_up),
            "default_terms": list(status.default_terms)}


def run_controls_text(report: dict[str, Any]) -> list[str]:
    said = []
    if report.get("state") == "prepared":
        said.append(f"PREPARED, NOT RELEASED: two-person release; the files are DRAFTS, not for "
                    f"payment; someone other than {report['prepared_by']} runs "
                    f"`topup release {report['run_id']}`")
    if report.get("caught_up"):
        said.append("caught up (no run had paid them): " + ", ".join(report["caught_up"]))
    if report.get("default_terms"):
        said.append("paid on default terms (no calendar recorded): "
                    + ", ".join(report["default_terms"]))
    return said


@click.group("policy")
def policy_group() -> None:
    """The ledger's policies for payment runs."""


@policy_group.command("set")
@click.option("--release", "release_policy", required=True, type=click.Choice(ev.RELEASE_POLICIES),
              help="two-person: a run is prepared by one officer and released by another.")
@click.option("--reason", default="")
@click.pass_context
@refusals
def policy_set(ctx: click.Context, release_policy: str, reason: str) -> None:
    """Set how payment runs are released (default one-person)."""
    ledger = ledger_of(ctx)
    event = set_policy(ledger, release_policy, reason)
    said = "already recorded as" if ledger.repeated else "recorded"
    click.echo(f"{said} {event}: release policy {release_policy}")


@click.command("release")
@click.argument("run_id", metavar="RUN")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="payments",
              show_default=True, help="Folder for the payment files.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def release_cmd(ctx: click.Context, run_id: str, out: Path, as_json: bool) -> None:
    """Release a prepared run (two-person release: not by its preparer) and write its files."""
    ledger = ledger_of(ctx)
    check_folder(out)
    status, files = release(ledger, run_id, out)
    emit({**status.as_json(), "files": [str(f) for f in files]}, as_json,
         f"released run {run_id}: {status.text()}\n" + "\n".join(f"  wrote {f}" for f in files))


@click.command("withdraw")
@click.argument("run_id", metavar="RUN")
@click.option("--reason", required=True, help="Why the prepared run is not to be paid.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def withdraw_cmd(ctx: click.Context, run_id: str, reason: str, as_json: bool) -> None:
    """Withdraw a prepared run that was never released: what it would have paid is due again."""
    status = withdraw(ledger_of(ctx), run_id, reason)
    emit(status.as_json(), as_json,
         f"withdrew run {run_id} ({pounds_for_people(status.total)} never paid; due again in "
         f"the next run): {status.text()}")


COMMANDS = (policy_group, release_cmd, withdraw_cmd, remittance_group)
reconcile_group.add_command(paid_vs_remitted_cmd)
