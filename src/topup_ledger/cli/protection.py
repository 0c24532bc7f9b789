"""`topup plan protect | protection-extend | protection-end` and `topup protection-policy`:
protection as facts of its own (docs/rules.md §10). Parse, call, print."""

from __future__ import annotations

from datetime import date

import click

from topup_ledger.cli.support import as_date, emit, ledger_of, refusals
from topup_ledger.domain import events as ev
from topup_ledger.services import protection


def said(ledger: object, event: str) -> str:
    if getattr(ledger, "repeated", False):
        return f"already recorded as {event}, nothing new"
    return f"recorded {event}"


@click.command("protect")
@click.argument("ref")
@click.option("--from", "effective", required=True, callback=as_date("from"),
              help="The first day protected (on or after the transfer).")
@click.option("--until", required=True, callback=as_date("until"),
              help="The last day protected (inclusive).")
@click.option("--reason", required=True, help="Why protection is granted.")
@click.pass_context
@refusals
def protect_cmd(ctx: click.Context, ref: str, effective: date, until: date, reason: str) -> None:
    """Grant protection after a transfer: pay the larger of the prior and the band amount
    from a day up to another. It ends earlier at a band change, a move or the plan ceasing."""
    ledger = ledger_of(ctx)
    event = protection.grant(ledger, ref, effective, until, reason)
    click.echo(f"{said(ledger, event)}: plan {ref} protected from {effective} to {until}")


@click.command("protection-extend")
@click.argument("ref")
@click.option("--until", required=True, callback=as_date("until"),
              help="The new last day protected (inclusive).")
@click.option("--reason", required=True, help="Why protection is extended.")
@click.pass_context
@refusals
def extend_cmd(ctx: click.Context, ref: str, until: date, reason: str) -> None:
    """Extend a plan's protection that runs to its end date, from the day after it."""
    ledger = ledger_of(ctx)
    event = protection.extend(ledger, ref, until, reason)
    click.echo(f"{said(ledger, event)}: plan {ref} protection extended to {until}")


@click.command("protection-end")
@click.argument("ref")
@click.option("--from", "effective", required=True, callback=as_date("from"),
              help="The first day no longer protected.")
@click.option("--reason", required=True, help="Why protection ends early.")
@click.pass_context
@refusals
def end_cmd(ctx: click.Context, ref: str, effective: date, reason: str) -> None:
    """End a plan's protection early (protected up to the day before)."""
    ledger = ledger_of(ctx)
    event = protection.end(ledger, ref, effective, reason)
    click.echo(f"{said(ledger, event)}: plan {ref} no longer protected from {effective}")


@click.command("protection-policy")
@click.option("--prior", type=click.Choice(ev.PROTECTION_PRIORS), default=None,
              help="recomputed: the prior hours priced at each protected day's financial-year "
                   "rate; frozen: at the terms of the day before the transfer.")
@click.option("--reason", default="", help="Why, e.g. the Schools Forum decision.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def policy_cmd(ctx: click.Context, prior: str | None, reason: str, as_json: bool) -> None:
    """The LA's protection policy: set it with --prior, or show the one in force. A new
    policy reprices every protected day; the next run pays the differences."""
    ledger = ledger_of(ctx)
    if prior is not None:
        event = protection.set_policy(ledger, prior, reason)
        if not as_json:
            click.echo(f"{said(ledger, event)}: protection prior {prior}")
            return
    found, event_id = protection.policy(ledger)
    emit({"prior": found, "event": event_id}, as_json,
         f"protection prior {found} ({'set by ' + event_id if event_id else 'the default'})")


PLAN_COMMANDS = (protect_cmd, extend_cmd, end_cmd)
COMMANDS = (policy_cmd,)
