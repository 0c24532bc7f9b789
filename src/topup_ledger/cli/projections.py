"""`topup funding`, `topup reconcile hours-vs-band|paid-vs-due` and `topup rebuild`.

Parse, bring the projections up to date (or replay them as of a time), write the files,
print. The folds and their rules live in ``projections/``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from topup_ledger.cli.output import limit_option, plural, table
from topup_ledger.cli.support import Failure, as_moment, emit, events_progress, ledger_of, refusals
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.money import pounds_for_people
from topup_ledger.projections import file_stem, funding, hours_vs_band, paid_vs_due, write_output
from topup_ledger.projections.db import ProjectionDB, projections_path
from topup_ledger.projections.runner import OUTPUTS, folds_for, rebuild, view
from topup_ledger.projections.view import View
from topup_ledger.storage.store import EventStore

BIG = 20_000  # catch-ups longer than this show a progress bar (on a terminal)


def reads(func: Callable[..., Any]) -> Callable[..., Any]:
    """A bad --period or --school is refused plainly (these commands record nothing)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RuleError as error:
            raise Failure(f"{error.field}: {error.problem}") from None

    return wrapper


def out_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="reports",
                        show_default=True, help="Folder for the CSV and Parquet files.")(func)


def as_of_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--as-of", "as_of", callback=as_moment, metavar="TIME",
                        help="As known at this recorded time, e.g. 2025-12-01T17:00:00Z "
                        "(a date alone means the end of that day, UTC).")(func)


@contextmanager
def folded(store: EventStore, outputs: Sequence[str], as_of: datetime | None) -> Iterator[View]:
    """The projections behind ``outputs``, caught up (or as of a time), with a progress bar
    on a terminal for a long catch-up."""
    with events_progress("folding events", store.max_position(), at_least=BIG) as step, \
            view(store, outputs, as_of, progress=step) as v:
        yield v


def school_period_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--period, --school, --as-of, --out and --json: what each per-school projection takes."""
    for option in reversed([
        click.option("--period", "period_id", help="Only this period, e.g. 2025-26/autumn."),
        click.option("--school", help="Only this school (URN)."),
        as_of_option, out_option,
        click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
        limit_option,
    ]):
        func = option(func)
    return func


def report(projection: str, v: View, files: Sequence[Path], **parts: Any) -> dict[str, Any]:
    """What a projection command prints with --json: where in the ledger, its parts, its files."""
    return {"projection": projection, "ledger_position": v.position, "known_at": v.known_at,
            "as_of": v.as_of.isoformat() if v.as_of else None, **parts,
            "files": [str(f) for f in files]}


def gbp(pence: int) -> str:
    return pounds_for_people(pence)


def heading(title: str, v: Any) -> str:
    known = f"as known at {v.known_at}" if v.known_at else "on an empty ledger"
    asked = f" (asked as of {v.as_of.isoformat()})" if v.as_of is not None else ""
    return f"{title} {known}, ledger position {v.position}{asked}"


def files_line(files: Sequence[Path]) -> str:
    return "wrote " + ", ".join(str(f) for f in files)


@click.command("funding")
@school_period_options
@click.pass_context
@refusals
@reads
def funding_cmd(ctx: click.Context, period_id: str | None, school: str | None,
                as_of: datetime | None, out: Path, as_json: bool, limit: int) -> None:
    """Per school and period: plans by basis and band, run-rate, due as known now, paid."""
    store = ledger_of(ctx).store
    with folded(store, ["funding"], as_of) as v:
        found = funding.rows(v, period_id, school)
        plans = funding.distinct_plans(v, period_id, school)
    files = write_output("funding", found, out, file_stem("funding", period_id, school, as_of))
    totals = funding.totals(found, plans)
    if as_json:
        return emit(report("funding", v, files, rows=found, totals=totals), True, "")
    click.echo(heading("per-school funding", v))
    table(["period", "school", "name", "plans", "hours", "band", "bands", "run-rate/yr", "due", "paid",
           "difference"],
          [[r["period"], r["school_urn"], r["school_name"], r["plans"], r["plans_hours"],
            r["plans_band"], r["bands"], gbp(r["run_rate_pence"]), gbp(r["due_pence"]),
            gbp(r["paid_pence"]), gbp(r["difference_pence"])] for r in found],
          right=[False, False, False, True, True, True, False, True, True, True, True],
          flexible=["name"], optional=["bands", "hours", "band", "run-rate/yr", "name"], limit=limit,
          what="school-period",
          total=["total", "", "", totals.get("plans", ""), "", "", "",
                 gbp(totals["run_rate_pence"]) if "run_rate_pence" in totals else "",
                 gbp(totals["due_pence"]), gbp(totals["paid_pence"]), gbp(totals["difference_pence"])])
    lines = []
    unpriced = [r for r in found if r["unpriced_plans"]]
    if unpriced:
        lines.append(f"{plural(len(unpriced), 'school-period')} {'has' if len(unpriced) == 1 else 'have'} "
                     "plans the ledger cannot price yet (left out of due): "
                     + "; ".join(sorted({r["missing"] for r in unpriced})))
    lines.append(files_line(files))
    click.echo("\n".join(lines))


@click.group("reconcile")
def reconcile_group() -> None:
    """Reconciliations: hours against bands, and paid against due."""


PLAN_ROWS_SHOWN = 40


@reconcile_group.command("hours-vs-band")
@click.option("--school", help="Only plans at this school (URN).")
@click.option("--prices", metavar="FY", default=None,
              help="The financial year whose prices the full cost is worked out at, e.g. 2026-27 "
                   "(default: the latest year with an hourly rate and a tariff).")
@as_of_option
@out_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@limit_option
@click.pass_context
@refusals
@reads
def hours_vs_band_cmd(ctx: click.Context, school: str | None, prices: str | None,
                      as_of: datetime | None, out: Path, as_json: bool, limit: int) -> None:
    """Plans moved to bands: cost neutrality on the full cost (band + protection + cushion
    against the prior, at one year's prices, over the days funded), the prior against the
    band at the transfers' prices, and the band calibration."""
    store = ledger_of(ctx).store
    with folded(store, ["hours-vs-band"], as_of) as v:
        found = hours_vs_band.rows(v, school, prices)
        bands = hours_vs_band.calibration(v, school)
    files = [*write_output("hours-vs-band", found, out, file_stem("hours-vs-band", None, school, as_of)),
             *write_output("band-calibration", bands, out,
                           file_stem("band-calibration", None, school, as_of))]
    if as_json:
        return emit(report("hours-vs-band", v, files, rows=found, calibration=bands), True, "")
    plans = [r for r in found if r["level"] == "plan"]
    click.echo(heading("hours vs band", v))
    money = ["prior/yr", "band/yr", "protection/yr", "difference", "%", "prior cost", "full cost",
             "full %"]

    def amounts(r: dict[str, Any]) -> list[str]:
        return [gbp(r["prior_annual_pence"]), gbp(r["band_annual_pence"]),
                gbp(r["protection_annual_pence"]), gbp(r["difference_pence"]), r["difference_percent"],
                gbp(r["prior_cost_pence"]), gbp(r["full_cost_pence"]), r["full_difference_percent"]]

    if not plans:
        click.echo("no plan has moved from hours to a band yet")
    elif len(plans) <= PLAN_ROWS_SHOWN:
        table(["plan", "school", "setting", "band", "from", *money],
              [[r["plan_ref"], r["school_urn"], r["setting"], r["band"], r["transferred_on"],
                *amounts(r)] for r in plans],
              right=[False] * 5 + [True] * 8,
              optional=["setting", "from", "protection/yr", "%", "prior cost", "full cost", "full %"])
    else:
        click.echo(f"{plural(len(plans), 'plan')} moved to bands: one row each in {files[0]}")
    for level in ("school", "band", "setting"):
        rows = [r for r in found if r["level"] == level]
        if rows:
            key = {"school": "school_urn", "band": "band", "setting": "setting"}[level]
            click.echo(f"\nby {level}")
            table([level, "plans", *money], [[r[key], r["plans"], *amounts(r)] for r in rows],
                  right=[False] + [True] * 9,
                  optional=["protection/yr", "%", "prior cost", "full cost", "full %"], limit=limit,
                  what=level)
    overall = found[-1]
    lines = ["", full_cost_line(overall, plural(overall["plans"], "plan")),
             "cost neutrality at the transfers' prices (a year each): "
             f"{plural(overall['plans'], 'plan')}, prior "
             f"{gbp(overall['prior_annual_pence'])} a year, bands {gbp(overall['band_annual_pence'])} a "
             f"year, difference {gbp(overall['difference_pence'])}"
             + (f" ({overall['difference_percent']}%)" if overall["difference_percent"] else "")
             + f"; protection {gbp(overall['protection_annual_pence'])} a year"]
    notes = sorted({r["note"] for r in plans if r["note"]})
    if notes:
        lines.append("not priced (left out of totals): " + "; ".join(notes))
    cost_notes = sorted({r["cost_note"] for r in found if r["cost_note"] and not r["note"]})
    if cost_notes:
        lines.append(f"full cost not priced at {overall['prices_year']} prices (left out of its "
                     "totals): " + "; ".join(cost_notes))
    click.echo("\n".join(lines))
    if bands:
        click.echo("\nband calibration (prior hours-based amounts of the plans moved to each band)")
        table(["year", "band", "rate", "plans", "mean", "median", "min", "max", "rate − mean"],
              [[b["financial_year"], b["band"], gbp(b["band_rate_pence"]), b["plans"],
                gbp(b["prior_mean_pence"]), gbp(b["prior_median_pence"]),
                gbp(b["prior_min_pence"]), gbp(b["prior_max_pence"]),
                gbp(b["rate_minus_mean_pence"])] for b in bands],
              right=[False, False] + [True] * 7, optional=["median", "min", "max"])
    click.echo(files_line(files))


def full_cost_line(overall: dict[str, Any], plans: str) -> str:
    """The cost-neutrality line on the full cost, as the command and the demo say it."""
    if not overall["prices_year"]:
        return "cost neutrality on the full cost: no financial year has an hourly rate and a tariff yet"
    percent = f" ({overall['full_difference_percent']}%)" if overall["full_difference_percent"] else ""
    return (f"cost neutrality on the full cost at {overall['prices_year']} prices over the days "
            f"funded: {plans}, prior {gbp(overall['prior_cost_pence'])}; bands "
            f"{gbp(overall['band_cost_pence'])} + protection {gbp(overall['protection_cost_pence'])} "
            f"+ cushion {gbp(overall['cushion_cost_pence'])} = {gbp(overall['full_cost_pence'])}, "
            f"difference {gbp(overall['full_difference_pence'])}{percent}")


@reconcile_group.command("paid-vs-due")
@school_period_options
@click.pass_context
@refusals
@reads
def paid_vs_due_cmd(ctx: click.Context, period_id: str | None, school: str | None,
                    as_of: datetime | None, out: Path, as_json: bool, limit: int) -> None:
    """Per school and period: due as known now, paid, outstanding, and the events behind it;
    then what each school still owes as a recovery (a run that clawed back more than it
    paid the school carries the excess forward instead of sending a negative payment)."""
    store = ledger_of(ctx).store
    with folded(store, ["paid-vs-due"], as_of) as v:
        found = paid_vs_due.rows(v, period_id, school)
        # as known at the rows' ledger position; owed is per school, not per period
        owed = paid_vs_due.recoveries_outstanding(store, v, school)
    files = write_output("paid-vs-due", found, out, file_stem("paid-vs-due", period_id, school, as_of))
    totals = paid_vs_due.totals(found)
    if as_json:
        return emit(report("paid-vs-due", v, files, rows=found, totals=totals,
                           recoveries_outstanding=owed), True, "")
    click.echo(heading("paid vs due", v))
    table(["period", "school", "name", "due", "paid", "outstanding", "status", "explained by"],
          [[r["period"], r["school_urn"], r["school_name"], gbp(r["due_pence"]), gbp(r["paid_pence"]),
            gbp(r["outstanding_pence"]), r["status"], r["explained_by"]] for r in found],
          right=[False, False, False, True, True, True, False, False],
          flexible=["name", "explained by"], optional=["name", "explained by"], limit=limit,
          what="school-period",
          total=["total", "", "", gbp(totals["due_pence"]), gbp(totals["paid_pence"]),
                 gbp(totals["outstanding_pence"]), f"{totals['unsettled']:,} unsettled", ""])
    if owed:
        click.echo(f"recoveries outstanding: {gbp(sum(r['owed_pence'] for r in owed))} owed by "
                   f"{plural(len(owed), 'school')}, netted against their next payments")
        table(["school", "name", "owes", "since run", "since", "carried", "recovered"],
              [[r["school_urn"], r["school_name"], gbp(r["owed_pence"]), r["since_run"], r["since"],
                gbp(r["carried_pence"]), gbp(r["recovered_pence"])] for r in owed],
              right=[False, False, True, False, False, True, True], flexible=["name"],
              optional=["name"], what="school")
    else:
        click.echo("recoveries outstanding: none")
    click.echo(files_line(files))


@click.command("rebuild")
@click.option("--projection", "names", multiple=True, type=click.Choice(sorted(OUTPUTS)),
              help="Only this projection (repeatable); all of them by default.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def rebuild_cmd(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Rebuild projections from the events alone (funding and paid-vs-due share one fold)."""
    store = ledger_of(ctx).store
    folds = folds_for(names)
    path = projections_path(store.location)
    db = ProjectionDB(path)
    try:
        started = time.perf_counter()
        with events_progress("rebuilding", store.max_position(),
                             at_least=0 if not as_json else 1 << 62) as step:  # none with --json
            events = rebuild(store, db, folds, progress=step)
        seconds = time.perf_counter() - started
    finally:
        db.close()
    rate = events / seconds if seconds else 0.0
    served = {fold.name: sorted(o for o, f in OUTPUTS.items() if f == fold.name and o != fold.name)
              for fold in folds}
    what = ", ".join(f"{name} (for {', '.join(outputs)})" for name, outputs in served.items())
    text = (f"rebuilt {what} from "
            f"{plural(events, 'event')} in {seconds:.2f} s ({rate:,.0f} events/s) into {path}")
    emit({"rebuilt": list(served), "events": events, "seconds": round(seconds, 3),
          "events_per_second": round(rate), "file": str(path)}, as_json, text)
