"""`topup report finance PERIOD`: one static page (and its PDF) for the LA's finance team and
the Schools Forum: pictures of what was paid and why, each with its data table and alt text.

- total paid by period, split regular / arrears / claw-back / protection / cushion: the
  recorded payment lines of every run, by the run's period;
- paid against due by period: the paid-vs-due reconciliation, summed by period;
- band mix by setting in PERIOD: the funding projection's plans by band, per setting;
- prior hours-based amount against band amount, per transferred plan (with y = x);
- band calibration: per band, the spread of the prior amounts of the plans placed in it
  against the band's value (the latest financial year the ledger has transfers for, up to
  PERIOD's);
- cost neutrality of the move on the full cost: the hours-vs-band reconciliation's full-cost
  columns (band + protection + cushion against the prior, at the latest priced financial
  year's prices, docs/rules.md §13), overall and by setting;
- recoveries outstanding: what each school still owes (a run that clawed back more than it
  paid the school carried the excess forward), as known at the last run for a period up to
  PERIOD.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import financial_year_of
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.money import pounds_for_people
from topup_ledger.io.private import write_private
from topup_ledger.projections import funding, hours_vs_band, paid_vs_due
from topup_ledger.projections.recoveries import outstanding, owed_rows
from topup_ledger.projections.runner import view as projections_view
from topup_ledger.statements import plots
from topup_ledger.statements.model import KIND_WORDS
from topup_ledger.statements.source import read_view
from topup_ledger.storage.store import EventStore

KINDS = tuple(KIND_WORDS)
TABLE_EACH_WAY = 25


@dataclass
class Chart:
    id: str
    title: str
    alt: str  # what the picture shows, for a reader who cannot see it
    svg: str
    columns: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)  # columns that hold amounts or counts
    note: str = ""


@dataclass
class FinanceReport:
    period: str
    position: int
    known_at: datetime | None
    charts: list[Chart]
    paid_by_period: dict[str, dict[str, int]]  # period → kind → pence (for tests and JSON)
    run_totals: dict[str, int]  # period → what its runs recorded as their totals


def build_finance(store: EventStore, period_id: str) -> FinanceReport:
    """The report as the ledger knows it now; refuses an unknown period (RuleError)."""
    ledger = read_view(store, schools=())  # runs and reference data only: lines read below
    period = ledger.period(period_id)
    calendar = ledger.calendar_for(period.id, years_back=10)
    order = {p.id: p.start for p in calendar.periods}
    paid: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KINDS, 0))
    for _, recorded in store.recorded(types=(ev.SchoolPaid.TYPE,)):
        fact = recorded.fact
        if order.get(fact.period, period.start) > period.start:
            continue
        for line in fact.lines:
            paid[fact.period][line.kind] += line.amount
    periods = sorted(paid, key=lambda p: order.get(p, period.start))
    run_totals: dict[str, int] = defaultdict(int)
    for run in ledger.runs:
        if run.period in paid:
            run_totals[run.period] += run.total

    with projections_view(store, ["funding", "paid-vs-due", "hours-vs-band"]) as v:
        reconciled = paid_vs_due.rows(v)
        placed = funding.rows(v, period=period.id)
        moved = hours_vs_band.rows(v)
        calibrated = hours_vs_band.calibration(v)
    transfers = [r for r in moved if r["level"] == "plan"]
    # recoveries as known when the last run for a period up to PERIOD was recorded
    runs = {run.run_id for run in ledger.runs if order.get(run.period, period.end) <= period.start}
    last = max((position for position, recorded in store.recorded(types=(ev.RunFinance.TYPE,))
                if recorded.fact.run_id in runs), default=None)
    owed = owed_rows(outstanding(store, upto=last) if last is not None else [],
                     {urn: added.name for urn, added in ledger.schools.items()})
    charts = [paid_chart(periods, paid), due_chart(periods, reconciled),
              mix_chart(period.id, placed), transfer_chart(transfers),
              calibration_chart(calibrated, financial_year_of(period.end)),
              neutrality_chart(moved), recoveries_chart(owed)]
    return FinanceReport(period.id, ledger.position, ledger.recorded_at,
                         [c for c in charts if c is not None], dict(paid), dict(run_totals))


def _money_row(values: list[int]) -> list[str]:
    return [pounds_for_people(v) for v in values]


def paid_chart(periods: list[str], paid: dict[str, dict[str, int]]) -> Chart:
    series = {kind: [paid[p][kind] for p in periods] for kind in KINDS}
    totals = [sum(paid[p].values()) for p in periods]
    top = max(range(len(periods)), key=lambda i: totals[i]) if periods else 0
    alt = (f"Stacked bars of the total paid in each period's runs from {periods[0]} to "
           f"{periods[-1]}, split by kind of line; the most was paid for {periods[top]}, "
           f"{pounds_for_people(totals[top])}." if periods else "No run has been paid yet.")
    return Chart(
        "paid-by-period", "Total paid by period, by kind of line", alt,
        plots.stacked_by_period(periods, series, KIND_WORDS) if periods else "",
        ["Period", *(KIND_WORDS[k] for k in KINDS), "Total"],
        [[p, *_money_row([paid[p][k] for k in KINDS]), pounds_for_people(sum(paid[p].values()))]
         for p in periods], set(range(1, len(KINDS) + 2)),
        "Arrears and claw-back are counted in the period whose run paid them.")


def due_chart(periods: list[str], reconciled: list[dict[str, Any]]) -> Chart:
    due: dict[str, int] = defaultdict(int)
    paid: dict[str, int] = defaultdict(int)
    for row in reconciled:
        if row["period"] in periods:
            due[row["period"]] += row["due_pence"]
            paid[row["period"]] += row["paid_pence"]
    gaps = [p for p in periods if due[p] != paid[p]]
    alt = ("Paired bars per period of what is due as known now and what has been paid for that "
           "period; " + (f"they differ for {', '.join(gaps)}." if gaps else
                         "they are equal in every period."))
    return Chart(
        "paid-against-due", "Paid against due, by the period paid for", alt,
        plots.paired_by_period(periods, [due[p] for p in periods], [paid[p] for p in periods])
        if periods else "",
        ["Period", "Due as known now", "Paid for the period", "Outstanding"],
        [[p, *_money_row([due[p], paid[p], due[p] - paid[p]])] for p in periods], {1, 2, 3},
        "Paid for a period includes the arrears and claw-back later runs paid for it.")


def mix_chart(period: str, placed: list[dict[str, Any]]) -> Chart | None:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in placed:
        setting = row["setting"] or "unknown"
        for part in str(row["bands"]).split():
            band, _, n = part.partition(":")
            counts[setting][band] += int(n)
        if row["plans_hours"]:
            counts[setting]["hours"] += row["plans_hours"]
    if not counts:
        return None
    settings = sorted(counts)
    bands = sorted({b for c in counts.values() for b in c}, key=lambda b: (b == "hours", b))
    biggest = max(settings, key=lambda s: sum(counts[s].values()))
    alt = (f"Horizontal bars per setting of the plans placed in {period}, split by band (and "
           f"plans still on hours); {biggest} settings have the most, "
           f"{sum(counts[biggest].values())}.")
    return Chart(
        "band-mix", f"Band mix by setting, {period}", alt,
        plots.band_mix(settings, bands, counts), ["Setting", *bands, "All"],
        [[s, *(str(counts[s].get(b, 0)) for b in bands), str(sum(counts[s].values()))]
         for s in settings], set(range(1, len(bands) + 2)),
        "A plan that moved school in the period counts at each school.")


def transfer_chart(transfers: list[dict[str, Any]]) -> Chart | None:
    priced = [r for r in transfers if r["band_annual_pence"] is not None]
    if not priced:
        return None
    below = sum(1 for r in priced if r["band_annual_pence"] < r["prior_annual_pence"])
    alt = (f"A scatter of the {len(priced)} plans moved from hours to a band: the prior "
           f"hours-based amount a year across, the band amount up, with the line where they are "
           f"equal; {below} lie below it (the band pays less than the hours did).")
    # the table: the plans furthest from y = x, each way (the whole list is the
    # hours-vs-band reconciliation's)
    ordered = sorted(priced, key=lambda r: (r["difference_pence"], r["plan_ref"]))
    shown = ordered if len(ordered) <= 2 * TABLE_EACH_WAY else [
        *ordered[:TABLE_EACH_WAY], *ordered[-TABLE_EACH_WAY:]]
    return Chart(
        "prior-against-band", "Prior hours-based amount against band amount, per transferred plan",
        alt, plots.prior_against_band([r["prior_annual_pence"] for r in priced],
                                      [r["band_annual_pence"] for r in priced]),
        ["Plan", "School", "Band", "Prior a year", "Band a year", "Difference"],
        [[r["plan_ref"], r["school_urn"], r["band"],
          *_money_row([r["prior_annual_pence"], r["band_annual_pence"], r["difference_pence"]])]
         for r in shown], {3, 4, 5},
        f"{len(priced)} plans; " + ("all shown, largest reduction first." if shown is ordered else
                                    f"the {TABLE_EACH_WAY} largest reductions and the "
                                    f"{TABLE_EACH_WAY} largest increases shown; every plan is "
                                    "in topup reconcile hours-vs-band."))


def calibration_chart(rows: list[dict[str, Any]], year: str) -> Chart | None:
    years = sorted({r["financial_year"] for r in rows if r["financial_year"] <= year})
    if not years:
        return None
    latest = years[-1]
    found = sorted((r for r in rows if r["financial_year"] == latest), key=lambda r: r["band"])
    bands = [r["band"] for r in found]
    alt = (f"For each band of {latest}, a bar from the lowest to the highest prior hours-based "
           "amount of the plans placed in it, a dot at their median and a diamond at the band's "
           "value.")
    return Chart(
        "band-calibration", f"Band calibration, financial year {latest}", alt,
        plots.calibration(bands, [r["band_rate_pence"] for r in found],
                          [r["prior_min_pence"] for r in found],
                          [r["prior_median_pence"] for r in found],
                          [r["prior_max_pence"] for r in found]),
        ["Band", "Plans", "Band value", "Prior lowest", "Prior median", "Prior highest",
         "Band less prior mean"],
        [[r["band"], str(r["plans"]), *_money_row([r["band_rate_pence"], r["prior_min_pence"],
                                                   r["prior_median_pence"], r["prior_max_pence"],
                                                   r["rate_minus_mean_pence"]])] for r in found],
        {1, 2, 3, 4, 5, 6})


def neutrality_chart(moved: list[dict[str, Any]]) -> Chart:
    """Overall (the reconciliation's overall line) and by setting (its schools' lines, which
    carry the cushion, summed by setting)."""
    money = ("prior_cost", "band_cost", "protection_cost", "cushion_cost")
    groups: dict[str, dict[str, int]] = {}
    for row in moved:
        if row["level"] == "overall":
            groups = {"All settings": {"plans": row["plans"]} |
                      {m: row[f"{m}_pence"] for m in money}, **groups}
        elif row["level"] == "school":
            found = groups.setdefault(row["setting"] or "unknown", dict.fromkeys(("plans", *money), 0))
            found["plans"] += row["plans"]
            for m in money:
                found[m] += row[f"{m}_pence"]
    prices = next((r["prices_year"] for r in moved if r["level"] == "overall"), "")
    title = "Cost neutrality of the move to bands, on the full cost"
    columns = ["Settings", "Plans", "Prior cost", "Band", "Protection", "Cushion", "Full cost",
               "Difference", "Difference %"]
    overall = groups.get("All settings")
    if not prices or overall is None or not overall["plans"]:
        return Chart("cost-neutrality", title, "No plan moved from hours to a band is priced "
                     "yet, so there is nothing to compare.", "", columns, [], note="")
    full = {g: f["band_cost"] + f["protection_cost"] + f["cushion_cost"] for g, f in groups.items()}
    difference = full["All settings"] - overall["prior_cost"]
    alt = (f"Horizontal bars, for all settings and then each setting, of the prior hours-based "
           f"cost of the plans moved to bands against their full cost (band, protection and "
           f"cushion stacked), at {prices} prices over the days funded; in all the full cost is "
           f"{pounds_for_people(full['All settings'])} against {pounds_for_people(overall['prior_cost'])}, "
           f"{'more' if difference > 0 else 'less' if difference < 0 else 'the same'}"
           f"{' by ' + pounds_for_people(abs(difference)) if difference else ''}.")
    names = list(groups)
    return Chart(
        "cost-neutrality", title, alt,
        plots.full_cost(names, *([groups[g][m] for g in names] for m in money)), columns,
        [[g, str(f["plans"]), *_money_row([f["prior_cost"], f["band_cost"], f["protection_cost"],
                                           f["cushion_cost"], full[g], full[g] - f["prior_cost"]]),
          percent_for_people(hours_vs_band.percent(full[g] - f["prior_cost"], f["prior_cost"]))]
         for g, f in groups.items()], set(range(1, 9)),
        f"At {prices} prices (one financial year's rates and tariffs), over the days each plan "
        "has been funded since its transfer; the cushion counts in its school's setting. Plans "
        "that cannot be priced are left out; each plan is in topup reconcile hours-vs-band "
        "--prices FY.")


def _school(row: dict[str, Any]) -> str:
    return f"{row['school_name']} ({row['school_urn']})" if row["school_name"] else row["school_urn"]


def percent_for_people(shown: str) -> str:
    """hours_vs_band.percent's "-14.96" as "−14.96%" (the minus sign the amounts use)."""
    return f"{shown.replace('-', '−')}%" if shown else ""


def recoveries_chart(owed: list[dict[str, Any]]) -> Chart:
    title = "Recoveries outstanding"
    columns = ["School", "Name", "Owes", "Since run", "Since", "Carried", "Recovered"]
    total = sum(r["owed_pence"] for r in owed)
    most = max(owed, key=lambda r: r["owed_pence"]) if owed else {}
    alt = ((f"A bar for each of the {len(owed)} schools that still owe, {pounds_for_people(total)} "
            f"in all; the most is owed by {_school(most)}, {pounds_for_people(most['owed_pence'])}."
            if len(owed) > 1 else f"A bar for the one school that still owes: {_school(most)}, "
            f"{pounds_for_people(total)}.") if owed else
           "No school owes anything: no run has clawed back more than it paid a school, or "
           "every such excess has been recovered.")
    return Chart(
        "recoveries-outstanding", title, alt,
        plots.owed_by_school([_school(r) for r in owed], [r["owed_pence"] for r in owed])
        if owed else "", columns,
        [[r["school_urn"], r["school_name"], pounds_for_people(r["owed_pence"]), r["since_run"],
          r["since"], *_money_row([r["carried_pence"], r["recovered_pence"]])] for r in owed],
        {2, 5, 6},
        "Where a run's net for a school is negative the school is paid nothing and the excess "
        "is carried forward, then netted against its next payments; what is still owed at a "
        "financial year's end is invoiced. As known at the last run for a period up to this one.")


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("topup_ledger.statements", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(svg=Markup)
    return env


def render_finance(report: FinanceReport) -> str:
    return _environment().get_template("finance.html.j2").render(r=report)


def write_finance(store: EventStore, period_id: str, out: Path, pdf: bool = True) -> list[Path]:
    """The page, and its PDF laid out from the same HTML; returns the files written."""
    try:
        report = build_finance(store, period_id)
    except KeyError as error:  # pragma: no cover - defensive: a projection without a column
        raise RuleError("report", f"the finance report cannot read {error}") from None
    html = render_finance(report)
    stem = f"finance-{report.period.replace('/', '-')}"
    written = [write_private(out / f"{stem}.html", html)]
    if pdf:
        import weasyprint

        written.append(write_private(out / f"{stem}.pdf", weasyprint.HTML(string=html).write_pdf(
            pdf_variant="pdf/ua-1", pdf_tags=True)))
    return written
