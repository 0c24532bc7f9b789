"""How `topup` prints for people: tables through rich that fit the terminal (long text cut
with an ellipsis, money right-aligned), counts with the right plural, colour only on a
terminal (``NO_COLOR`` honoured by rich), long tables cut at ``--limit`` rows, and a table
longer than the terminal shown through the pager (``$PAGER``, else less), only on a terminal:
``topup --no-pager`` never pages, ``--pager`` pages whatever the length."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

DEFAULT_LIMIT = 50
# Output that is not a terminal (a file, a pipe to grep) is not cut to a width unless
# COLUMNS asks for one: every name and reason whole.
PIPE_WIDTH = 10_000


def plural(count: int, word: str, words: str | None = None) -> str:
    """1 → '1 school', 2 → '2 schools', 1234 → '1,234 schools'."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def console() -> Console:
    """A console on today's stdout (click's test runner swaps it): the terminal's width on a
    terminal, else COLUMNS or no limit; styles and colour only on a terminal, and none at
    all when NO_COLOR is set (https://no-color.org)."""
    out = sys.stdout
    tty = out.isatty()
    if tty:
        width = shutil.get_terminal_size().columns
    else:
        width = int(os.environ.get("COLUMNS", "0") or 0) or PIPE_WIDTH
    styled = tty and not os.environ.get("NO_COLOR")
    return Console(file=out, width=width, force_terminal=styled, no_color=not styled,
                   color_system="auto" if styled else None, highlight=False, soft_wrap=False)


def on_terminal() -> bool:
    """Whether stdout is a person's terminal (not a file, a pipe or a test's runner)."""
    return sys.stdout.isatty()


def pager_choice() -> bool | None:
    """``topup --pager`` (True), ``--no-pager`` (False) or neither (None: when it is long)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj.get("pager") if isinstance(obj, dict) else None


def pages(lines: int, height: int) -> bool:
    """Whether a table of ``lines`` goes through the pager: never off a terminal (pipes, files
    and tests read every line as it is), else as asked, else when it is taller than the
    terminal."""
    if not on_terminal():
        return False
    choice = pager_choice()
    return lines > height - 2 if choice is None else choice


def limit_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--limit", type=click.IntRange(min=0), default=DEFAULT_LIMIT, show_default=True,
                        help="Rows shown in the table (0: all); --json always gives every row.")(func)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[bool] = (),
          flexible: Sequence[str] = (), optional: Sequence[str] = (), limit: int = 0,
          what: str = "row", total: Sequence[Any] | None = None, wrap: Sequence[str] = ()) -> None:
    """Print a table that fits the width: money and counts right-aligned; only the columns
    named in ``flexible`` (names, reasons, seals) give way, cut with '…', so an amount, a
    date or an id is never cut; the columns named in ``optional`` are left out, in that
    order, while the others do not fit. ``limit`` rows at most (0: all), then how many more
    there are; a ``total`` row closes the table whatever the limit. A flexible column named
    in ``wrap`` wraps onto more lines rather than being cut."""
    shown = [["" if c is None else str(c) for c in row] for row in (rows if not limit else rows[:limit])]
    last = [] if total is None else [["" if c is None else str(c) for c in total]]
    aligned = list(right) + [False] * (len(headers) - len(right))
    keep = list(range(len(headers)))
    widths = [max([len(h)] + [len(r[i]) for r in shown + last]) for i, h in enumerate(headers)]
    out = console()

    def spare() -> int:
        return (out.width - 2 * (len(keep) - 1)
                - sum(widths[i] if headers[i] not in flexible else min(widths[i], 8) for i in keep))

    for name in optional:
        if spare() >= 0:
            break
        keep = [i for i in keep if headers[i] != name]
    flex = [i for i in keep if headers[i] in flexible]
    room = spare() + sum(min(widths[i], 8) for i in flex)
    for i in flex:  # each flexible column gets its share of what the others leave, at least 8
        widths[i] = min(widths[i], max(8, room // len(flex)))
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                 header_style="bold")
    wraps = {i for i in keep if headers[i] in wrap}
    for i in keep:
        grid.add_column(headers[i], justify="right" if aligned[i] else "left", no_wrap=i not in wraps,
                        overflow="fold" if i in wraps else "ellipsis", min_width=widths[i],
                        max_width=widths[i])
    # Cells are plain Text: a "[corrected by P2/3]" in a cell is words, not rich's markup.
    for n, row in enumerate(shown):
        grid.add_row(*(Text(row[i] if i in wraps else cut(row[i], widths[i])) for i in keep),
                     end_section=bool(last) and n == len(shown) - 1)
    for row in last:
        grid.add_row(*(Text(cut(row[i], widths[i])) for i in keep), style="bold")
    if rows or last:
        if pages(len(out.render_lines(grid, pad=False)) if on_terminal() else 0, out.height):
            with out.pager():
                out.print(grid)
        else:
            out.print(grid)
    if limit and len(rows) > limit:
        click.echo(f"… {plural(len(rows) - limit, 'more ' + what)} (--limit 0 shows all, --json "
                   "every row)")


def paragraph(text: str, indent: str = "") -> None:
    """Prose (a note, a verdict, advice) wrapped at the width tables fit; whole lines when the
    output is not a terminal. Digests and commands are printed on lines of their own, never
    through this: they are copied, not read."""
    width = console().width
    click.echo(textwrap.fill(text, width=width, subsequent_indent=indent, break_long_words=False,
                             break_on_hyphens=False) if width < PIPE_WIDTH else text)


@contextmanager
def working(what: str, *, quiet: bool = False) -> Iterator[None]:
    """A spinner with ``what`` on stderr while a long step runs: only on a terminal, and
    never with --json (``quiet``)."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    with Console(stderr=True).status(what):
        yield


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, ending '…' if it had to be cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
