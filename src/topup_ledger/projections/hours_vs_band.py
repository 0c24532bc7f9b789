"""Hours-vs-band reconciliation: what each plan moved to a band cost before and after.

For each transfer (``plan.transferred_to_band``, as corrected): the prior hours-based annual
amount kept on the event, the band's annual amount for the financial year of the transfer
date at the school's setting, the annual protection (the larger of the two is paid while the
plan is protected), and the difference band − prior; then totals by school, band and setting,
the overall cost-neutrality line, and the band calibration table a Schools Forum reviews:
per band and rate, how the prior hours-based amounts of the plans placed in it are spread.

A transfer's school and band depend on the plan's whole history (corrections can move
them), so a plan with a transfer is recomputed from all its facts, read from the ledger,
whenever something of its own or the reference data changes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import financial_year_of, parse_year
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.money import pounds, round_half_up
from topup_ledger.domain.neutrality import (
    Cost,
    Funded,
    cushion_cost,
    funded_after_transfer,
    plan_cost,
    priced_years,
    reduction_at_prices,
    year_end,
)
from topup_ledger.domain.plan import Plan, RecordedFact
from topup_ledger.domain.reference import Reference
from topup_ledger.projections.base import Decoder, PlanFold
from topup_ledger.projections.view import View

# A row of hv_row: plan, transfer event, its position, pupil, school, setting, transferred on,
# financial year, band, prior annual, band annual (None: no tariff), protection, protect until, note,
# the hours before the transfer, and the days funded since (JSON: [days, setting, band,
# protected] up to the end of the latest priced year), for the full cost (domain/neutrality.py).
TransferRow = tuple[str, str, int, str, str, str, str, str, str, int, int | None, int, str, str,
                    str, str]


class HoursVsBand(PlanFold[Reference, list[TransferRow]]):
    name = "hours-vs-band"
    prefix = "hv"
    SCHEMA = 3

    def tables(self) -> list[str]:
        table = self.table
        return [*self.base_tables(),
                f"CREATE TABLE {table('transferred')} (plan TEXT PRIMARY KEY) WITHOUT ROWID",
                f"CREATE TABLE {table('row')} (plan TEXT NOT NULL, event TEXT NOT NULL, "
                "position INTEGER NOT NULL, pupil TEXT NOT NULL, school TEXT NOT NULL, "
                "setting TEXT NOT NULL, transferred_on TEXT NOT NULL, financial_year TEXT NOT NULL, "
                "band TEXT NOT NULL, prior INTEGER NOT NULL, band_annual INTEGER, "
                "protection INTEGER NOT NULL, protect_until TEXT NOT NULL, note TEXT NOT NULL, "
                "prior_hours TEXT NOT NULL, funded TEXT NOT NULL, "
                "PRIMARY KEY (plan, event)) WITHOUT ROWID"]

    def touch(self, conn: sqlite3.Connection, plans: dict[str, bool]) -> None:
        """Only plans with a transfer have rows: mark those dirty."""
        table = self.table
        conn.executemany(f"INSERT OR IGNORE INTO {table('transferred')} VALUES (?)",
                         ((p,) for p, moved in plans.items() if moved))
        if self.everything:
            return
        conn.executemany(f"INSERT OR IGNORE INTO {table('dirty')} SELECT plan FROM {table('transferred')} "
                         "WHERE plan = ?", ((p,) for p in plans))

    def all_dirty(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"INSERT OR IGNORE INTO {self.table('dirty')} "
                     f"SELECT plan FROM {self.table('transferred')}")

    def context(self, conn: sqlite3.Connection, decoder: Decoder) -> Reference:
        return self.reference(conn, decoder)

    def worked_out(self, conn: sqlite3.Connection, plans: list[str], context: Reference,
                   decoder: Decoder) -> list[TransferRow]:
        rows = []
        for plan_ref, facts in self.plan_facts(conn, plans, decoder).items():
            if facts:
                rows += transfer_rows(plan_ref, facts, context)
        return rows

    def write(self, conn: sqlite3.Connection, plans: list[str], rows: list[TransferRow],
              context: Reference) -> None:
        marks = ",".join("?" * len(plans))
        conn.execute(f"DELETE FROM {self.table('row')} WHERE plan IN ({marks})", plans)
        conn.executemany(f"INSERT INTO {self.table('row')} VALUES ({','.join('?' * 16)})", rows)


def transfer_rows(plan_ref: str, facts: list[RecordedFact], ref: Reference) -> list[TransferRow]:
    """A row for each transfer to a band in the plan's history as corrected (docs/rules.md §10)."""
    try:
        plan = Plan(facts)
    except RuleError:
        return []
    positions = {r.id: r.position for r in plan.facts}
    years = priced_years(ref.terms)
    try:
        found = funded_after_transfer(plan, ref.terms, year_end(years[-1])) if years else None
    except RuleError:  # a school not in the ledger: the row's note says so
        found = None
    hours, funded = found if found is not None else (None, [])
    rows: list[TransferRow] = []
    for event_id, fact in plan.in_effect_order():
        if not isinstance(fact, ev.TransferredToBand):
            continue
        state = plan.state_on(fact.effective)
        school = state.school if state is not None else plan.issued.school
        added = ref.terms.schools.get(school)
        setting = added.setting if added else ""
        year = financial_year_of(fact.effective)
        rate = ref.terms.band_rate(year, setting, fact.band, fact.effective) if added else None
        note = ("" if rate is not None else
                f"no tariff for band {fact.band} in financial year {year}" if added else
                f"school {school} is not in the ledger")
        protection = max(0, fact.prior_annual - rate) if (
            fact.protect_until is not None and rate is not None) else 0
        rows.append((plan_ref, event_id, positions[event_id], plan.issued.pupil, school, setting,
                     fact.effective.isoformat(), year, fact.band, fact.prior_annual, rate,
                     protection, fact.protect_until.isoformat() if fact.protect_until else "", note,
                     "" if hours is None else str(hours),
                     json.dumps([[f.days, f.setting, f.band, f.protected] for f in funded])))
    return rows


# Reading: rows, totals and calibration.


def percent(part: int, whole: int) -> str:
    """part / whole as a percentage with two decimals, rounded half up; '' if whole is 0."""
    if whole == 0:
        return ""
    hundredths = round_half_up(Fraction(part * 10_000, whole))
    sign = "-" if hundredths < 0 else ""
    whole_part, rest = divmod(abs(hundredths), 100)
    return f"{sign}{whole_part}.{rest:02d}"


@dataclass
class Totals:
    plans: int = 0
    prior: int = 0
    band: int = 0
    protection: int = 0
    # The full cost at one year's prices over the days funded (docs/rules.md §13).
    priced: int = 0  # plans whose full cost is priced
    prior_cost: int = 0
    band_cost: int = 0
    protection_cost: int = 0
    cushion_cost: int = 0

    @property
    def difference(self) -> int:
        return self.band - self.prior

    @property
    def full_cost(self) -> int:
        return self.band_cost + self.protection_cost + self.cushion_cost

    @property
    def full_difference(self) -> int:
        return self.full_cost - self.prior_cost

    def add(self, row: dict[str, Any]) -> None:
        self.plans += 1
        self.prior += row["prior_annual_pence"]
        self.band += row["band_annual_pence"]
        self.protection += row["protection_annual_pence"]
        if not row["cost_note"]:
            self.priced += 1
            self.prior_cost += row["prior_cost_pence"]
            self.band_cost += row["band_cost_pence"]
            self.protection_cost += row["protection_cost_pence"]


def _money(prefix: str, pence: int) -> dict[str, Any]:
    return {f"{prefix}_pence": pence, f"{prefix}_gbp": pounds(pence)}


def full_columns(prices: str, days: int, protected_days: int, prior: int, band: int,
                 protection: int, cushion: int, note: str) -> dict[str, Any]:
    """The full-cost columns: band + protection + cushion against the prior, at ``prices``."""
    full = band + protection + cushion
    return {"prices_year": prices, "funded_days": days, "protected_days": protected_days,
            **_money("prior_cost", prior), **_money("band_cost", band),
            **_money("protection_cost", protection), **_money("cushion_cost", cushion),
            **_money("full_cost", full), **_money("full_difference", full - prior),
            "full_difference_percent": percent(full - prior, prior), "cost_note": note}


def plan_rows(conn: sqlite3.Connection, ref: Reference, prices: str, school: str | None = None
              ) -> Iterator[dict[str, Any]]:
    where, params = ("WHERE school = ?", (school,)) if school else ("", ())
    names = {urn: s.name for urn, s in ref.terms.schools.items()}
    for (plan, event, _position, pupil, urn, setting, on, year, band, prior, rate, protection,
         until, note, hours, funded) in conn.execute(
            f"SELECT * FROM hv_row {where} ORDER BY school, plan, position", params):
        band_annual = rate if rate is not None else 0
        difference = band_annual - prior if rate is not None else 0
        cost, cost_note = Cost(), note
        if not note and hours:
            try:
                cost = plan_cost(Decimal(hours), [Funded(*f) for f in json.loads(funded)],
                                 ref.terms, prices)
            except MissingTerms as gap:
                cost_note = "; ".join(gap.missing)
        yield {"level": "plan", "plan_ref": plan, "pupil_ref": pupil, "school_urn": urn,
               "school_name": names.get(urn, ""), "setting": setting, "band": band,
               "transferred_on": on, "financial_year": year, "protect_until": until,
               "transfer_event": event, "plans": 1,
               **_money("prior_annual", prior), **_money("band_annual", band_annual),
               **_money("protection_annual", protection), **_money("difference", difference),
               "difference_percent": percent(difference, prior) if rate is not None else "",
               "note": note, "prior_hours": hours,
               **full_columns(prices, cost.days, cost.protected_days, round_half_up(cost.prior),
                              round_half_up(cost.band), round_half_up(cost.protection), 0,
                              cost_note)}


def total_row(level: str, totals: Totals, prices: str, note: str = "", **keys: str) -> dict[str, Any]:
    row = {"level": level, "plan_ref": "", "pupil_ref": "", "school_urn": "", "school_name": "",
           "setting": "", "band": "", "transferred_on": "", "financial_year": "",
           "protect_until": "", "transfer_event": "", "plans": totals.plans,
           **_money("prior_annual", totals.prior), **_money("band_annual", totals.band),
           **_money("protection_annual", totals.protection),
           **_money("difference", totals.difference),
           "difference_percent": percent(totals.difference, totals.prior), "note": "",
           "prior_hours": "",
           **full_columns(prices, 0, 0, totals.prior_cost, totals.band_cost,
                          totals.protection_cost, totals.cushion_cost, note)}
    row.update(keys)
    return row


def school_cushion(ref: Reference, urn: str, plans: list[dict[str, Any]], prices: str,
                   horizon: date) -> int:
    """The school's cushion at ``prices`` on its days up to ``horizon`` (whole pence): its
    share of the net reduction of the plans moved at the school in the cushion's year."""
    cushion = ref.cushions.get(urn)
    if cushion is None:
        return 0
    setting = ref.terms.setting_of(urn)
    reductions = [reduction_at_prices(Decimal(row["prior_hours"]), row["band"], setting, ref.terms,
                                      prices)
                  for row in plans if row["school_urn"] == urn and row["prior_hours"]
                  and financial_year_of(date.fromisoformat(row["transferred_on"])) == cushion.year]
    return round_half_up(cushion_cost(cushion, reductions, prices, horizon))


def report_rows(conn: sqlite3.Connection, ref: Reference, school: str | None = None,
                prices: str | None = None) -> list[dict[str, Any]]:
    """Plan rows, then totals by school, band and setting, then the overall line.

    Totals are sums of the plan rows above them (plans that cannot be priced are listed with
    a note and left out of every total); a school's total adds its cushion, and the overall
    line every school's."""
    years = priced_years(ref.terms)
    year = prices_year(years, prices)
    plans = list(plan_rows(conn, ref, year, school))
    by: dict[str, dict[tuple[str, ...], Totals]] = {"school": {}, "band": {}, "setting": {}}
    overall = Totals()
    for row in plans:
        if row["note"]:
            continue
        by["school"].setdefault((row["school_urn"], row["school_name"], row["setting"]),
                                Totals()).add(row)
        by["band"].setdefault((row["band"],), Totals()).add(row)
        by["setting"].setdefault((row["setting"],), Totals()).add(row)
        overall.add(row)
    rows = plans
    for (urn, name, setting), totals in sorted(by["school"].items()):
        note = ""
        if year:
            try:
                totals.cushion_cost = school_cushion(ref, urn, plans, year, year_end(years[-1]))
            except MissingTerms as gap:
                note = "cushion not priced: " + "; ".join(gap.missing)
        overall.cushion_cost += totals.cushion_cost
        rows.append(total_row("school", totals, year, note, school_urn=urn, school_name=name,
                              setting=setting))
    for (band,), totals in sorted(by["band"].items()):
        rows.append(total_row("band", totals, year, band=band))
    for (setting,), totals in sorted(by["setting"].items()):
        rows.append(total_row("setting", totals, year, setting=setting))
    rows.append(total_row("overall", overall, year))
    return rows


def prices_year(years: list[str], asked: str | None) -> str:
    """The financial year whose prices the full cost is worked out at: the one asked for,
    which must be priced, or the latest priced year ('' if none is)."""
    if asked is None:
        return years[-1] if years else ""
    parse_year(asked, "prices")
    if asked not in years:
        raise RuleError("prices", f"financial year {asked} has no hourly rate and tariff "
                        f"(priced: {', '.join(years) or 'none yet'})")
    return asked


def median_of(middle: list[int]) -> int:
    """The median from the one (odd count) or two (even count) middle values, in whole pence,
    halves rounded up: exact integer arithmetic."""
    if len(middle) == 1:
        return middle[0]
    return round_half_up(Fraction(middle[0] + middle[1], 2))


def calibration_rows(conn: sqlite3.Connection, school: str | None = None) -> list[dict[str, Any]]:
    """Per financial year, band and band rate: the spread of prior hours-based amounts."""
    where = "AND school = ?" if school else ""
    params: tuple[str, ...] = (school,) if school else ()
    groups = conn.execute(
        "SELECT financial_year, band, band_annual, COUNT(*), SUM(prior), MIN(prior), MAX(prior), "
        "GROUP_CONCAT(DISTINCT setting) FROM hv_row WHERE band_annual IS NOT NULL "
        f"{where} GROUP BY financial_year, band, band_annual "
        "ORDER BY financial_year, band, band_annual", params).fetchall()
    rows = []
    for year, band, rate, count, total, low, high, settings in groups:
        middle = [v for (v,) in conn.execute(
            "SELECT prior FROM hv_row WHERE financial_year = ? AND band = ? AND band_annual = ? "
            f"{where} ORDER BY prior LIMIT ? OFFSET ?",
            (year, band, rate, *params, 2 - count % 2, (count - 1) // 2))]
        mean = round_half_up(Fraction(total, count))
        rows.append({
            "financial_year": year, "band": band, **_money("band_rate", rate),
            "settings": " ".join(sorted(settings.split(","))), "plans": count,
            **_money("prior_mean", mean), **_money("prior_median", median_of(middle)),
            **_money("prior_min", low), **_money("prior_max", high),
            **_money("rate_minus_mean", rate - mean),
            **_money("prior_total", total), **_money("band_total", rate * count),
        })
    return rows


def _stamp(view: View, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"ledger_position": view.position, "known_at": view.known_at, **row} for row in found]


def rows(view: View, school: str | None = None, prices: str | None = None) -> list[dict[str, Any]]:
    ref = HoursVsBand().reference(view.db.conn, view.decoder)
    if school is not None and school not in ref.terms.schools:
        raise RuleError("school", f"school {school} is not in the ledger")
    return _stamp(view, report_rows(view.db.conn, ref, school, prices))


def calibration(view: View, school: str | None = None) -> list[dict[str, Any]]:
    return _stamp(view, calibration_rows(view.db.conn, school))
