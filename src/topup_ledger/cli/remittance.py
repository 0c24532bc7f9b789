"""``topup remittance import`` and ``topup reconcile paid-vs-remitted`` (issue 23)."""

from __future__ import annotations

from pathlib import Path

import click

from topup_ledger.cli.output import limit_option, plural, table
from topup_ledger.cli.support import Failure, check_folder, emit, ledger_of, refusals
from topup_ledger.domain.money import pounds_for_people
from topup_ledger.io.import_csv import FileRefused
from topup_ledger.services.remittance import (
    import_remittance,
    paid_vs_remitted,
    write_paid_vs_remitted,
)


@click.group("remittance")
def remittance_group() -> None:
    """What the bank or AP system reports it paid."""


@remittance_group.command("import")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--map", "maps", multiple=True, metavar="FIELD=COLUMN",
              help="Your export's column for a field (payee, reference, amount, paid_on), "
                   "e.g. --map payee='Supplier No'.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def remittance_import(ctx: click.Context, path: Path, maps: tuple[str, ...], as_json: bool) -> None:
    """Record a remittance CSV: payee (or supplier reference, or URN), run or payment
    reference, amount, date paid. Importing it again records nothing twice."""
    mapping = {}
    for item in maps:
        name, sep, column = item.partition("=")
        if not sep or not column.strip():
            raise Failure(f"--map {item!r} is not FIELD=COLUMN, e.g. payee='Supplier No'")
        mapping[name.strip()] = column.strip()
    try:
        found = import_remittance(ledger_of(ctx), path, mapping)
    except FileRefused as error:
        raise Failure(f"{error}; nothing was recorded", exit_code=6) from None
    emit({"lines": found.lines, "recorded": found.recorded, "already_recorded": found.already},
         as_json, f"{path}: {plural(found.lines, 'payment')}: {found.recorded} recorded, "
                  f"{found.already} already recorded")


@click.command("paid-vs-remitted")
@click.option("--run", "run_id", default=None, help="Only this run, e.g. 2025-26-autumn-r1.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write paid-vs-remitted CSV and Parquet here.")
@click.option("--json", "as_json", is_flag=True)
@limit_option
@click.pass_context
@refusals
def paid_vs_remitted_cmd(ctx: click.Context, run_id: str | None, out: Path | None,
                         as_json: bool, limit: int) -> None:
    """Per released run and school: released, remitted, difference and state (matched,
    short, over, missing, unexpected, duplicate)."""
    rows = paid_vs_remitted(ledger_of(ctx), run_id)
    files = []
    if out is not None:
        check_folder(out)
        files = write_paid_vs_remitted(rows, out, run_id)
    found = [r.as_row() for r in rows]
    counts: dict[str, int] = {}
    for row in found:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    if as_json:
        return emit({"rows": found, "states": counts, "files": [str(f) for f in files]}, True, "")
    click.echo(", ".join(f"{plural(n, 'row')} {state}" for state, n in sorted(counts.items()))
               or "no released runs and no remittance yet")
    table(["run", "payee", "released", "remitted", "difference", "state"],
          [[r["run_id"], r["payee"], pounds_for_people(r["released_pence"]),
            pounds_for_people(r["remitted_pence"]), pounds_for_people(r["difference_pence"]),
            r["state"]] for r in found],
          right=[False, False, True, True, True], limit=limit, what="row")
    for f in files:
        click.echo(f"  wrote {f}")
