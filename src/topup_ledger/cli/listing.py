"""What the ledger holds: `topup schools`, `plans`, `rates`, `tariffs`, `calendars`, `runs`
and `status`. Each reads through ``services.listing`` and prints a table, or every row
with --json. They record nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from topup_ledger.cli.output import limit_option, plural, table
from topup_ledger.cli.support import ledger_of, refusals
from topup_ledger.domain.money import pounds_for_people
from topup_ledger.services import listing


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(func)


def as_json_text(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def nothing(what: str, hint: str) -> None:
    click.echo(f"no {what} in the ledger yet: {hint}")


@click.command("schools")
@limit_option
@json_option
@click.pass_context
@refusals
def schools_cmd(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The schools in the ledger: URN, name, setting, LA code, and the route and reference
    they are paid by today (`topup school set`)."""
    rows = listing.schools(ledger_of(ctx))
    if as_json:
        return as_json_text(rows)
    if not rows:
        return nothing("schools", "add one with `topup school add` or `topup import schools.csv`")
    click.echo(plural(len(rows), "school"))
    table(["URN", "name", "setting", "LA code", "route", "cost centre / supplier"],
          [[r["urn"], r["name"], r["setting"], r["la_code"] or "", r["route"], r["paid_by"]]
           for r in rows], flexible=["name"], limit=limit, what="school")


@click.command("plans")
@click.option("--school", help="Only plans now at this school (URN).")
@click.option("--band", help="Only plans now on this band.")
@click.option("--basis", type=click.Choice(["hours", "band"]), help="Only plans now on this basis.")
@limit_option
@json_option
@click.pass_context
@refusals
def plans_cmd(ctx: click.Context, school: str | None, band: str | None, basis: str | None,
              limit: int, as_json: bool) -> None:
    """Every plan as it stands after its latest change (a ceased plan as on its last day)."""
    rows = listing.plans(ledger_of(ctx), school, band, basis)
    if as_json:
        return as_json_text(rows)
    if not rows:
        filtered = any(v is not None for v in (school, band, basis))
        return click.echo("no plan matches" if filtered else
                          "no plans in the ledger yet: issue one with `topup plan issue` or "
                          "`topup import plans.csv`")
    ceased = sum(1 for r in rows if r["ceased_from"])
    click.echo(plural(len(rows), "plan") + (f" ({ceased:,} ceased)" if ceased else ""))
    table(["plan", "pupil", "school", "kind", "basis", "band/hours", "from", "ceased"],
          [[r["plan"], r["pupil"], r["school"], r["kind"], r["basis"],
            r["band"] if r["basis"] == "band" else f"{r['hours']} h/wk", r["from"],
            r["ceased_from"] or ""] for r in rows],
          right=[False] * 5 + [True], flexible=["pupil"], limit=limit, what="plan")


@click.command("rates")
@json_option
@click.pass_context
@refusals
def rates_cmd(ctx: click.Context, as_json: bool) -> None:
    """Hourly rates by financial year (1 April to 31 March)."""
    rows = listing.rates(ledger_of(ctx))
    if as_json:
        return as_json_text(rows)
    if not rows:
        return nothing("hourly rates", "set one with `topup rate set --fy 2025-26 ...`")
    table(["financial year", "from", "to", "hourly rate", "weeks", "threshold", "reason"],
          [[r["financial_year"], r["from"], r["to"], pounds_for_people(r["hourly_rate_pence"]),
            r["weeks"], pounds_for_people(r["threshold_pence"]), r["reason"]] for r in rows],
          right=[False, False, False, True, True, True], flexible=["reason"])


@click.command("tariffs")
@json_option
@click.pass_context
@refusals
def tariffs_cmd(ctx: click.Context, as_json: bool) -> None:
    """Band values by financial year (1 April to 31 March) and setting."""
    rows = listing.tariffs(ledger_of(ctx))
    if as_json:
        return as_json_text(rows)
    if not rows:
        return nothing("tariffs", "publish one with `topup tariff set --fy 2025-26 --band A=1600 ...`")
    years = sorted({r["financial_year"] for r in rows})
    values = {(r["setting"] or "every setting", band, r["financial_year"]): pence
              for r in rows for band, pence in r["bands_pence"].items()}
    keys = sorted({(setting, band) for setting, band, _ in values},
                  key=lambda k: (k[0] != "every setting", k))
    click.echo("band values a year, by financial year (1 April to 31 March)")
    table(["setting", "band", *years],
          [[setting if i == 0 or keys[i - 1][0] != setting else "", band,
            *(pounds_for_people(values[setting, band, y]) if (setting, band, y) in values else "–"
              for y in years)]
           for i, (setting, band) in enumerate(keys)],
          right=[False, False] + [True] * len(years), flexible=["setting"])


@click.command("calendars")
@json_option
@click.pass_context
@refusals
def calendars_cmd(ctx: click.Context, as_json: bool) -> None:
    """Recorded payment calendars by academic year (1 September to 31 August)."""
    rows = listing.calendars(ledger_of(ctx))
    if as_json:
        return as_json_text(rows)
    if not rows:
        return nothing("payment calendars", "record one with `topup calendar set --ay 2025-26`")
    table(["academic year", "period", "start", "end", "share", "school days"],
          [[r["academic_year"] if i == 0 else "", p["period"], p["start"], p["end"], p["share"],
            p["school_days"] if p["school_days"] is not None else ""]
           for r in rows for i, p in enumerate(r["periods"])],
          right=[False] * 4 + [True, True])


@click.command("runs")
@limit_option
@json_option
@click.pass_context
@refusals
def runs_cmd(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Payment runs recorded, in order: period, schools, total and seal."""
    rows = listing.runs(ledger_of(ctx))
    if as_json:
        return as_json_text(rows)
    if not rows:
        return nothing("payment runs", "make one with `topup pay 2025-26/autumn`")
    click.echo(plural(len(rows), "payment run"))
    table(["run", "period", "recorded", "schools", "total", "seal"],
          [[r["run_id"], r["period"], r["recorded_at"][:10], f"{r['schools']:,}",
            pounds_for_people(r["total_pence"]), r["seal"]] for r in rows],
          right=[False, False, False, True, True], flexible=["seal"], limit=limit, what="payment run")


@click.command("status")
@json_option
@click.pass_context
@refusals
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """The ledger: where it is, its events, last event and seal, how far the projections have
    read it, and whether its events are encrypted."""
    found = listing.status(ledger_of(ctx))
    if as_json:
        return as_json_text(found)
    last, seal = found["last_event"], found["last_seal"]
    lines = [f"ledger       {found['ledger']}", f"events       {found['events']:,}"]
    lines.append("last event   " + (f"{last['id']} ({last['type']}) at position {last['position']:,}, "
                                   f"recorded {last['recorded_at']}" if last else "none"))
    behind = seal and found["events"] - seal["position"]
    lines.append("last seal    " + (f"{seal['seal']}\n             recorded {seal['recorded_at']}"
                                   + (f", {plural(behind, 'event')} since" if behind else "")
                                   if seal else "none (`topup seal` records one)"))
    if found["projections"]:
        lines.append("projections  " + ", ".join(
            f"{name} at {position:,}" + ("" if position == found["events"] else
                                         f" ({plural(found['events'] - position, 'event')} behind)")
            for name, position in found["projections"].items()))
    else:
        lines.append("projections  none built yet (`topup funding` or `topup rebuild` builds them)")
    if found["key_id"]:
        lines.append(f"key          {found['key_id']} (ledger {found['ledger_id']})")
    lines.append("encryption   " + ("events encrypted (TOPUP_CIPHER_KEY is set)" if found["encrypted"]
                                   else "none (TOPUP_CIPHER_KEY is not set)"))
    click.echo("\n".join(lines))


COMMANDS = [schools_cmd, plans_cmd, rates_cmd, tariffs_cmd, calendars_cmd, runs_cmd, status_cmd]
