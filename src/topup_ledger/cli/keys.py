"""`topup key rotate`: a new ledger key from now on (``services.key_rotation``)."""

from __future__ import annotations

from pathlib import Path

import click

from topup_ledger.cli.output import paragraph
from topup_ledger.cli.support import Failure, emit, ledger_of, refusals
from topup_ledger.services.key_rotation import RotationRefused, rotate_key


@click.group("key")
def key_group() -> None:
    """The ledger's key, held outside the database."""


@key_group.command("rotate")
@click.option("--reason", required=True, help="Why the key changes, e.g. 'yearly rotation'.")
@click.option("--new-key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The new key, made beforehand in a secret store (default: a new random key "
                   "kept beside the old one).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def rotate_cmd(ctx: click.Context, reason: str, new_key_file: Path | None, as_json: bool) -> None:
    """Record that a new key authenticates every event from now on. The old key keeps
    authenticating the events before: keep it, verify needs it."""
    try:
        result = rotate_key(ledger_of(ctx), reason, new_key_file)
    except RotationRefused as error:
        raise Failure(str(error), exit_code=4) from None
    if as_json:
        return emit(result.as_json(), True, "")
    paragraph(f"recorded {result.event} at position {result.position:,}: key {result.key_id} "
              f"authenticates every event after it; key {result.previous_key_id} the events "
              "before it")
    click.echo(f"new key:  {result.new_key_file}")
    click.echo(f"old key:  {result.old_key_file}")
    if result.default_replaced:
        paragraph("the default key file now holds the new key; keep the old key's file: "
                  "`topup verify` needs it for the events before the rotation")
    else:
        paragraph("the key in use came from TOPUP_LEDGER_KEY or a key file given: give the new "
                  "key the same way from now on, and keep the old one (`topup verify` finds old "
                  "keys in the files TOPUP_LEDGER_OLD_KEY_FILES lists)")
