"""`topup la set`: the paying local authority's details for the head of its statements."""

from __future__ import annotations

import click

from topup_ledger.cli.support import emit, ledger_of, refusals


@click.group("la")
def la_group() -> None:
    """The paying local authority's own details."""


@la_group.command("set")
@click.option("--name", required=True, help="The LA's name, e.g. Anyshire County Council.")
@click.option("--address", "address", multiple=True,
              help="One line of its postal address; repeat for each line.")
@click.option("--contact", default="", help="Who schools contact: a team, email or telephone.")
@click.option("--query-how", "query_how", default="",
              help="How a school queries a figure on its statement, in words.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def la_set(ctx: click.Context, name: str, address: tuple[str, ...], contact: str,
           query_how: str, as_json: bool) -> None:
    """Set the LA details printed at the head of every statement (as on a remittance);
    a later setting replaces the earlier."""
    ledger = ledger_of(ctx)
    event = ledger.set_la_details(name, address, contact, query_how)
    words = "already recorded as" if ledger.repeated else "recorded"
    emit({"event": event, "repeated": ledger.repeated, "name": name}, as_json,
         f"{words} {event}: the LA details for statements ({name})")
