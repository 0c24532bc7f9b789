"""`topup import` (load a CSV export of schools, rates, tariffs, plans or changes) and
`topup demo` (a county-sized LA through the move to bands).

Registered on the main group in cli.py with ``main.add_command(import_cmd, "import")`` and
``main.add_command(demo_cmd, "demo")``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from topup_ledger.cli.output import plural
from topup_ledger.cli.support import Failure, emit, ledger_of, refusals
from topup_ledger.io.import_csv import FileRefused, read_table, write_rejects
from topup_ledger.services.demo import DEFAULT_PLANS, DemoError, build_demo, steps
from topup_ledger.services.importer import KINDS, ImportResult, import_table

SHOWN_REJECTS = 10
BIG = 20_000  # lines: a file this long shows a progress bar (on a terminal)


def default_rejects(path: Path) -> Path:
    return path.with_name(f"{path.stem}.rejects.csv")


def summary(result: ImportResult, rejects_file: Path | None) -> str:
    rows = plural(result.rows, "row")
    parts = [f"{result.recorded:,} recorded ({plural(result.events if result.committed else 0, 'event')})",
             f"{result.already:,} already recorded", f"{result.rejected:,} rejected"]
    lines = [f"{result.path} ({result.kind}): {rows}: " + ", ".join(parts)]
    if result.blank_lines:
        lines.append(f"{plural(result.blank_lines, 'blank line')} skipped")
    if result.ignored_columns:
        lines.append("columns not read: " + ", ".join(result.ignored_columns))
    rejected = result.rejects()
    if rejected:
        lines.append(f"rejected rows (all {len(rejected):,} are in {rejects_file}):")
        lines += [f"  line {o.line}, {o.field or 'row'}: {o.reason}" for o in rejected[:SHOWN_REJECTS]]
        if len(rejected) > SHOWN_REJECTS:
            lines.append(f"  … and {len(rejected) - SHOWN_REJECTS:,} more")
    if result.rejected and not result.partial:
        valid = (f", or use --partial to record the {plural(result.not_recorded, 'valid row')} now"
                 if result.not_recorded else "")
        lines.append(f"nothing was recorded because {plural(result.rejected, 'row')} "
                     f"{'was' if result.rejected == 1 else 'were'} rejected: "
                     f"fix {'it' if result.rejected == 1 else 'them'} and import the file again{valid}")
    elif result.rejected:
        lines.append(f"--partial: {plural(result.recorded, 'valid row')} recorded; fix the rejected rows "
                     f"and import them again (the rejects file can be imported as it is)")
    elif not result.committed:
        lines.append("nothing new to record")
    return "\n".join(lines)


@click.command("import")
@click.argument("path", metavar="FILE.csv",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(KINDS),
              help="What the file holds (otherwise told from its columns).")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write rejected rows [default: FILE.rejects.csv, if any are rejected].")
@click.option("--partial", is_flag=True,
              help="Record the valid rows even if some are rejected (otherwise nothing is).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def import_cmd(ctx: click.Context, path: Path, kind: str | None, rejects_path: Path | None,
               partial: bool, as_json: bool) -> None:
    """Import FILE.csv: every row is recorded, already recorded, or rejected with its line.

    A file with any rejected row records nothing unless --partial is given; importing the
    same file again records nothing new. Exit code 0: no row rejected; 1: rows rejected,
    the rest recorded (--partial); 2: rows rejected, nothing recorded.
    """
    ledger = ledger_of(ctx)
    try:
        table = read_table(path)
        if rejects_path is not None and rejects_path.resolve() == path.resolve():
            raise Failure("--rejects must not be the file being imported")
        if table.lines >= BIG and sys.stderr.isatty() and not as_json:
            with click.progressbar(length=table.lines, label=f"checking {path.name}",
                                   file=sys.stderr) as bar:
                result = import_table(ledger, table, kind, partial=partial, progress=bar.update)
        else:
            result = import_table(ledger, table, kind, partial=partial)
    except FileRefused as error:
        raise Failure(str(error)) from None
    rejected = result.rejects()
    written: Path | None = None
    if rejected or rejects_path is not None:
        written = write_rejects(rejects_path or default_rejects(path), table,
                                [(o.line, o.field, o.reason) for o in rejected])
    report = {**result.as_json(), "rejects_file": str(written) if written else None}
    emit(report, as_json, summary(result, written))
    if rejected:
        ctx.exit(1 if result.committed or partial else 2)


@click.command("demo")
@click.option("--plans", type=click.IntRange(1, 100_000), default=DEFAULT_PLANS, show_default=True,
              help="Plans issued over the three years (schools scale with them: 450 for 8,000).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default="topup-demo", show_default=True, help="Folder for the demo LA.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same LA.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@refusals
def demo_cmd(plans: int, out: Path, seed: int, as_json: bool) -> None:
    """Build a county-sized LA in a fresh ledger and pay it through the move to bands.

    Generates schools, rates, tariffs, plans and three years of changes, imports them batch
    by batch with a termly payment run after each (9 runs, 2025-26 to 2027-28), and leaves
    the ledger, the import files, the payment files and summary.json in one folder.
    """
    try:
        if as_json or not sys.stderr.isatty():  # progress for people only
            summary = build_demo(out, plans=plans, seed=seed, step=lambda label: None)
        else:
            room = max(shutil.get_terminal_size().columns - 60, 0)  # one line: never wrapped
            with click.progressbar(length=steps(), label="building the demo LA", file=sys.stderr,
                                   width=16, item_show_func=lambda item: (item or "")[:room]) as bar:
                summary = build_demo(out, plans=plans, seed=seed,
                                     step=lambda label: bar.update(1, label))
    except DemoError as error:
        raise Failure(str(error)) from None
    text = "\n".join([*summary.lines(),
                      f"the demo LA (ledger, import files, payment files, projections, statements, "
                      f"verify report, summary.json) is in {out.resolve()}"])
    emit(summary.as_json(), as_json, text)
