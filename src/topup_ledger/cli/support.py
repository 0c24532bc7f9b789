"""What every `topup` command shares: opening the ledger, parsing options, refusals."""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click
from eventsourcing.persistence import PersistenceError

from topup_ledger.domain.calendar import parse_date, parse_moment
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.money import parse_decimal, parse_pounds
from topup_ledger.services.recording import Ledger, utc_now
from topup_ledger.storage.store import (
    ConflictError,
    EventStore,
    StoreError,
    check_postgres_url,
    check_sqlite_path,
    describe,
    is_postgres,
)
from topup_ledger.storage.store import storage_problem as store_problem
from topup_ledger.storage.upcasting import UnknownSchemaVersion

DEFAULT_LEDGER = "topup-ledger.sqlite"
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Failure(click.ClickException):
    """A refusal the user can act on: printed without a traceback, exit code set."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def refusals(func: F) -> F:
    """Turn the ledger's refusals into clear messages and non-zero exits."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RuleError as error:
            raise Failure(f"{error.field}: {error.problem}; nothing was recorded") from None
        except MissingTerms as error:
            raise Failure("the ledger is missing what this needs; nothing was recorded:\n  "
                          + "\n  ".join(error.missing) + financial_years_hint(error.missing)) from None
        except ConflictError as error:
            raise Failure(f"conflict: {error}", exit_code=3) from None
        except StoreError as error:
            raise Failure(naming_the_ledger(str(error)), exit_code=4) from None
        except UnknownSchemaVersion as error:
            raise Failure(f"{error}; nothing was recorded", exit_code=5) from None
        except (PersistenceError, sqlite3.Error) as error:
            raise Failure(storage_problem(error), exit_code=4) from None
        except OSError as error:  # a file or folder given (or made from one) that cannot be used
            raise Failure(file_problem(error), exit_code=6) from None
        except MemoryError:
            # the machine's memory, or a limit set on this process (ulimit -v, a container):
            # what was being recorded was not committed, so nothing of it is in the ledger
            raise Failure("ran out of memory (the machine's, or a limit set on this process); "
                          "nothing was recorded: run it again with more memory", exit_code=7) from None
        except Exception as error:
            if type(error).__module__.startswith("psycopg"):
                raise Failure(storage_problem(error), exit_code=4) from None
            raise

    return wrapper  # type: ignore[return-value]


def financial_years_hint(missing: Sequence[str]) -> str:
    """Rates and tariffs are per financial year (1 April to 31 March), periods per academic
    year: a summer term needs the next financial year's. Say so, with the commands."""
    years = sorted({m.group(1) for text in missing
                    for m in re.finditer(r"financial year (\d{4}-\d{2})", text)})
    if not years:
        return ""
    return ("\n(rates and tariffs are set per financial year, 1 April to 31 March, so a summer "
            "term needs the next one's: " + "; ".join(
                f"`topup rate set --fy {y} ...`, `topup tariff set --fy {y} ...`" for y in years) + ")")


def check_folder(path: Path) -> None:
    """Refuse an output folder that could not be made, without making it: a file where a
    folder must be, or a parent this user cannot write in (raised as the OSError it would
    have been, for ``refusals`` to word)."""
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(ancestor))
    if ancestor != path and not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "permission denied", str(ancestor))


def file_problem(error: OSError) -> str:
    """An input or output path that cannot be used, in words: which one and why."""
    names = [str(n) for n in (error.filename, error.filename2) if n is not None]
    why = (error.strerror or str(error) or type(error).__name__).lower()
    where = f"{' → '.join(names)}: " if names else ""
    if isinstance(error, IsADirectoryError):
        why = "is a folder, not a file"
    elif isinstance(error, NotADirectoryError):
        why = "a part of this path is a file, not a folder"
    return f"cannot use {where}{why}"


def current_location() -> str:
    ctx = click.get_current_context(silent=True)
    return str((ctx.find_root().obj or {}).get("location", "")) if ctx else ""


def storage_problem(error: BaseException) -> str:
    return store_problem(current_location(), error)


def naming_the_ledger(message: str) -> str:
    """A storage refusal says which ledger (password hidden): a user may have several."""
    location = current_location()
    where = describe(location) if location else ""
    return message if not where or where in message else f"{message} (ledger: {where})"


def open_ledger(ctx: click.Context, *, create: bool = False) -> Ledger:
    obj = ctx.ensure_object(dict)
    location = obj["location"]
    try:
        if is_postgres(location):
            check_postgres_url(location)
        else:
            check_sqlite_path(location, create=create)
        store = EventStore(location, create=create, key_file=obj.get("key_file"))
    except StoreError as error:
        raise Failure(str(error), exit_code=4) from None
    ctx.call_on_close(store.close)
    return Ledger(store, clock=obj.get("clock", utc_now))


def ledger_of(ctx: click.Context) -> Ledger:
    return open_ledger(ctx)


OptionCallback = Callable[[click.Context, click.Parameter, str | None], T | None]


def as_date(field: str) -> OptionCallback[date]:
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
        if value is None:
            return None
        try:
            return parse_date(value, field)
        except RuleError as error:
            raise click.BadParameter(error.problem) from None
    return convert


def parsed_by(parse: Callable[[str], T]) -> OptionCallback[T]:
    """An option callback: the value as ``parse`` reads it, its ValueError as click's own
    refusal of the option (None when the option is not given)."""
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> T | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    return convert


as_decimal: OptionCallback[Decimal] = parsed_by(parse_decimal)
as_pence: OptionCallback[int] = parsed_by(parse_pounds)


def emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


@contextmanager
def events_progress(label: str, total: int, *, at_least: int
                    ) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for a pass over ``total`` events, told how many are done;
    only on a terminal and only for passes of ``at_least`` events (None otherwise)."""
    if not sys.stderr.isatty() or total < at_least:
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        done = [0]

        def update(count: int) -> None:
            bar.update(count - done[0])
            done[0] = count

        yield update


# ``--as-of TIME``: a recorded time, or a date meaning the end of that day (UTC).
as_moment: OptionCallback[datetime] = parsed_by(parse_moment)
