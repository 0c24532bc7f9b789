"""Paying through the council's finance system: `topup school set` (who a school is paid
through), `topup finance mapping set|show` (the LA's codes and file layouts) and
`topup finance payees` (every school's route and references on a date), and `topup
recoveries` (what schools owe back, never sent as a negative payment)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from topup_ledger.cli.output import limit_option, plural, table
from topup_ledger.cli.support import as_date, as_moment, emit, ledger_of, refusals
from topup_ledger.domain import events as ev
from topup_ledger.domain.money import pounds_for_people
from topup_ledger.domain.payees import (
    DEFAULT_MAPPING,
    missing_for_route,
    route_reference,
    split_by_route,
)
from topup_ledger.io.finance_files import recorded_finance
from topup_ledger.io.finance_mapping import mapping_toml, read_mapping
from topup_ledger.services.payees import mapping_facts, payees_on, set_mapping, set_payee
from topup_ledger.services.recording import Ledger
from topup_ledger.services.recoveries import outstanding, owed_rows


def said(ledger_repeated: bool, event: str) -> str:
    return f"already recorded as {event}, nothing new" if ledger_repeated else f"recorded {event}"


@click.command("set")
@click.argument("urn")
@click.option("--route", type=click.Choice(ev.ROUTES), default=None,
              help="How the school is paid (required the first time).")
@click.option("--laestab", default=None, help="LA code and establishment number, 7 digits.")
@click.option("--trust", default=None, help="The academy trust's or proprietor's name.")
@click.option("--trust-ref", default=None, help="The trust's reference (e.g. DfE group UID).")
@click.option("--supplier", default=None,
              help="Supplier reference in accounts payable (academy, independent, "
                   "non-maintained-special, post16).")
@click.option("--cost-centre", default=None, help="Cost centre (maintained schools).")
@click.option("--recoupment-la", "--la-code", "la_code", default=None,
              help="For other-la: the LA to recoup from, 3 digits.")
@click.option("--from", "effective", default=None, callback=as_date("from"),
              help="From when it holds (default: from the start).")
@click.option("--reason", default="")
@click.pass_context
@refusals
def school_set_cmd(ctx: click.Context, urn: str, route: str | None, laestab: str | None,
                   trust: str | None, trust_ref: str | None, supplier: str | None,
                   cost_centre: str | None, la_code: str | None, effective: date | None,
                   reason: str) -> None:
    """Record who school URN is paid through: its route and references. Options not given
    keep the value in force on --from; an empty value ("") clears one."""
    ledger = ledger_of(ctx)
    event = set_payee(ledger, urn, route=route, laestab=laestab, trust=trust,
                      trust_ref=trust_ref, supplier=supplier, cost_centre=cost_centre,
                      la_code=la_code, effective=effective, reason=reason)
    fact = next(r.fact for r in ledger.store.stream(f"payee:{urn}") if r.id == event)
    assert isinstance(fact, ev.SchoolPayeeSet)
    lacking = missing_for_route(fact)
    click.echo(f"{said(ledger.repeated, event)}: school {urn} paid as {fact.route}"
               + (f" from {effective}" if effective else "")
               + (f"\n  note: {lacking}: a run will refuse to pay it" if lacking else ""))


@click.group("finance")
def finance_group() -> None:
    """The finance system's side: the LA's mapping, and the schools' payees."""


@finance_group.group("mapping")
def mapping_group() -> None:
    """The finance mapping: codes, budget-return lines, each finance file's columns."""


@mapping_group.command("set")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", default="")
@click.pass_context
@refusals
def mapping_set_cmd(ctx: click.Context, path: Path, reason: str) -> None:
    """Record the finance mapping in the TOML file PATH (keys left out keep their default)."""
    ledger = ledger_of(ctx)
    mapping = read_mapping(path)
    event = set_mapping(ledger, mapping, path.name, reason)
    click.echo(f"{said(ledger.repeated, event)}: finance mapping from {path.name}; runs from "
               "now on write their files by it")


@mapping_group.command("show")
@click.option("--default", "default", is_flag=True, help="The defaults, not the mapping in force.")
@click.pass_context
@refusals
def mapping_show_cmd(ctx: click.Context, default: bool) -> None:
    """The mapping in force, as the TOML file that would set it."""
    found = [] if default else mapping_facts(ledger_of(ctx).store)
    click.echo(mapping_toml(found[-1].mapping if found else DEFAULT_MAPPING), nl=False)


@finance_group.command("payees")
@click.option("--on", "day", default=None, callback=as_date("on"),
              help="The payment date to show them for (default: today).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def payees_cmd(ctx: click.Context, day: date | None, as_json: bool) -> None:
    """Every school's route and the references its route pays it by, on a date."""
    ledger = ledger_of(ctx)
    when = day or ledger.clock().date()
    found = payees_on(ledger.store, when)
    schools = ledger.terms().schools
    rows = []
    for urn in sorted(schools):
        payee = found.get(urn)
        rows.append({"urn": urn, "name": schools[urn].name,
                     "route": payee.route if payee else "",
                     "laestab": payee.laestab if payee else "",
                     "reference": route_reference(payee) if payee else "",
                     "trust": payee.trust if payee else "",
                     "missing": missing_for_route(payee) or ""})
    if as_json:
        emit(rows, True, "")
        return
    click.echo(f"{plural(len(rows), 'school')} on {when}")
    table(["URN", "name", "route", "LAESTAB", "cost centre / supplier / LA", "trust", "missing"],
          [[r["urn"], r["name"], r["route"], r["laestab"], r["reference"], r["trust"], r["missing"]]
           for r in rows], flexible=["name", "trust", "missing"], what="school")


@click.command("recoveries")
@click.option("--as-of", "when", default=None, callback=as_moment,
              help="A recorded time (ISO, UTC if no offset) or a date (the end of that day).")
@limit_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@refusals
def recoveries_cmd(ctx: click.Context, when: datetime | None, limit: int, as_json: bool) -> None:
    """What each school still owes from runs that clawed back more than they paid it, and
    since when: netted against its next payments; at a financial year's end, to invoice."""
    ledger = ledger_of(ctx)
    owed = outstanding(ledger.store, when)
    schools = ledger.terms().schools
    rows = owed_rows(owed, {urn: school.name for urn, school in schools.items()})
    if as_json:
        emit(rows, True, "")
        return
    if not rows:
        click.echo("no school owes anything" + (f" as of {when.isoformat()}" if when else ""))
        return
    total = sum(o.pence for o in owed)
    click.echo(f"{plural(len(rows), 'school')} owe {pounds_for_people(total)}"
               + (f" as of {when.isoformat()}" if when else ""))
    table(["URN", "name", "owed", "since run", "since", "carried", "recovered"],
          [[r["school_urn"], r["school_name"], pounds_for_people(r["owed_pence"]), r["since_run"],
            r["since"], pounds_for_people(r["carried_pence"]),
            pounds_for_people(r["recovered_pence"])] for r in rows],
          right=[False, False, True, False, False, True, True], flexible=["name"], limit=limit,
          what="school")


def run_finance_note(ledger: Ledger, run_id: str, nets: list[tuple[str, int]]
                     ) -> tuple[dict[str, object], str]:
    """What `topup pay` adds for a run with finance files: the payment date, what goes by
    each route and the recoveries (empty for a run made without finance)."""
    finance = recorded_finance(ledger.store, run_id)
    if finance is None:
        return {}, ""
    split = split_by_route(finance, nets)
    carried = sum(r.carried for r in finance.recoveries)
    recovered = sum(r.recovered for r in finance.recoveries)
    data = {"pay_on": finance.pay_on.isoformat(),
            "by_route": {route: {"schools": n, "pence": pence} for route, (n, pence) in split.items()},
            "carried_pence": carried, "recovered_pence": recovered}
    text = [f"pay on {finance.pay_on}: " + (", ".join(
        f"{route} {plural(n, 'school')} {pounds_for_people(pence)}"
        for route, (n, pence) in split.items()) or "nothing to send")]
    if carried or recovered:
        text.append(f"recoveries: {pounds_for_people(carried)} carried forward (paid nothing), "
                    f"{pounds_for_people(recovered)} recovered from earlier runs")
    return data, "\n".join(text)
