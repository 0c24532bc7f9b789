"""What the ledger holds, listed: schools, plans, rates, tariffs, calendars, payment runs and
the ledger's own state. Each function reads the store (through the folded ``Reference`` for
reference data) and returns plain rows, the same for a table and for ``--json``."""

from __future__ import annotations

import os
import sqlite3
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import parse_year
from topup_ledger.domain.money import pounds, pounds_for_people
from topup_ledger.domain.plan import Plan, RecordedFact
from topup_ledger.services.payees import payee_columns, payees_on
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.releases import RunStatus, run_statuses
from topup_ledger.storage.store import describe
from topup_ledger.storage.streams import PAYMENTS_STREAM, SEALS_STREAM

PLAN_TYPES = ev.PLAN_FACTS  # every fact of a plan, protection's too


def financial_year_dates(year: str) -> tuple[date, date]:
    """'2025-26' → 1 April 2025 to 31 March 2026."""
    start = parse_year(year)
    return date(start, 4, 1), date(start + 1, 3, 31)


def academic_year_dates(year: str) -> tuple[date, date]:
    """'2025-26' → 1 September 2025 to 31 August 2026."""
    start = parse_year(year)
    return date(start, 9, 1), date(start + 1, 8, 31)


def schools(ledger: Ledger) -> list[dict[str, Any]]:
    reference = ledger.reference()
    paid_through = payees_on(ledger.store, ledger.clock().date())  # today's (issue 22)
    return [{"urn": s.urn, "name": s.name, "setting": s.setting, "la_code": s.la_code,
             **payee_columns(paid_through.get(s.urn))}
            for s in sorted(reference.terms.schools.values(), key=lambda s: s.urn)]


def rates(ledger: Ledger) -> list[dict[str, Any]]:
    rows = []
    for year, fact in sorted(ledger.reference().terms.rates.items()):
        first, last = financial_year_dates(year)
        rows.append({"financial_year": year, "from": first.isoformat(), "to": last.isoformat(),
                     "hourly_rate_pence": fact.hourly_rate, "hourly_rate_gbp": pounds(fact.hourly_rate),
                     "weeks": str(fact.weeks), "threshold_pence": fact.threshold,
                     "threshold_gbp": pounds(fact.threshold), "reason": fact.reason})
    return rows


def tariffs(ledger: Ledger) -> list[dict[str, Any]]:
    rows = []
    for (year, setting), bands in sorted(ledger.reference().terms.tariffs.items(),
                                         key=lambda item: (item[0][0], item[0][1] or "")):
        first, last = financial_year_dates(year)
        rows.append({"financial_year": year, "from": first.isoformat(), "to": last.isoformat(),
                     "setting": setting, "bands_pence": dict(sorted(bands.items()))})
    return rows


def calendars(ledger: Ledger) -> list[dict[str, Any]]:
    rows = []
    for year, periods in sorted(ledger.reference().calendars.items()):
        first, last = academic_year_dates(year)
        rows.append({"academic_year": year, "from": first.isoformat(), "to": last.isoformat(),
                     "periods": [{"period": p.id, "start": p.start.isoformat(),
                                  "end": p.end.isoformat(),
                                  "share": f"{p.share.numerator}/{p.share.denominator}",
                                  "school_days": p.school_days} for p in periods]})
    return rows


def every_plan(ledger: Ledger) -> list[Plan]:
    """Every plan with all its facts, read in one pass over the ledger, in the order issued."""
    streams: dict[str, list[RecordedFact]] = defaultdict(list)
    for position, recorded in ledger.store.recorded(types=PLAN_TYPES):
        streams[recorded.originator_id].append(RecordedFact(recorded.id, recorded.fact, position))
    return [Plan(facts) for facts in streams.values()]


def plans(ledger: Ledger, school: str | None = None, band: str | None = None,
          basis: str | None = None) -> list[dict[str, Any]]:
    """Every plan as it stands after its latest change: where, on what basis, and whether it
    has ceased (with the school and basis it had on its last day)."""
    rows = []
    for plan in every_plan(ledger):
        ceased = plan.ceased_from
        days = [getattr(f, "effective", None) for _, f in plan.in_effect_order()]
        last = max(d for d in days if d is not None)
        state = plan.state_on(ceased - timedelta(days=1) if ceased else last)
        if state is None:
            continue
        row = {"plan": plan.issued.plan, "pupil": state.pupil, "school": state.school,
               "kind": state.kind, "basis": state.basis, "band": state.band,
               "hours": str(state.hours) if state.hours is not None else None,
               "from": plan.start.isoformat(),
               "ceased_from": ceased.isoformat() if ceased else None, "events": len(plan.facts)}
        if ((school is None or row["school"] == school) and (band is None or row["band"] == band)
                and (basis is None or row["basis"] == basis)):
            rows.append(row)
    return sorted(rows, key=lambda r: (r["school"], r["plan"]))


def runs(ledger: Ledger) -> list[dict[str, Any]]:
    rows = []
    controls = {s.run_id: s for s in run_statuses(ledger.store)}  # who prepared, released
    for recorded in ledger.store.stream_recorded(PAYMENTS_STREAM):
        fact = recorded.fact
        if isinstance(fact, ev.PaymentRunRecorded):
            rows.append({"run_id": fact.run_id, "period": fact.period, "sequence": fact.sequence,
                         "supplementary": fact.sequence > 1,
                         "recorded_at": recorded.recorded_at.isoformat(), "schools": fact.schools,
                         "total_pence": fact.total, "total_gbp": pounds(fact.total),
                         "seal": fact.seal, **released_as(controls.get(fact.run_id))})
    return rows


def released_as(status: RunStatus | None) -> dict[str, Any]:
    if status is None:
        return {}
    return {"state": status.state, "release": status.release,
            "prepared_by": status.prepared_by, "released_by": status.released_by,
            "withdrawn_by": status.withdrawn_by}


def status(ledger: Ledger) -> dict[str, Any]:
    """Where the ledger is, how many events it holds, its last event and seal, how far each
    projection has folded it, the id of the key it is signed with (if it has one) and
    whether its events are encrypted."""
    from topup_ledger.projections.db import projections_path

    store = ledger.store
    events = store.max_position()
    last: dict[str, Any] | None = None
    if events:
        for position, recorded in store.recorded(after=events - 1):
            last = {"position": position, "id": recorded.id, "type": recorded.fact.TYPE,
                    "recorded_at": recorded.recorded_at.isoformat()}
    seal: dict[str, Any] | None = None
    sealed = store.stream_recorded(SEALS_STREAM)
    if sealed:
        fact = sealed[-1].fact
        if isinstance(fact, ev.Sealed):
            seal = {"seal": f"{fact.head}@{fact.position}", "position": fact.position,
                    "recorded_at": sealed[-1].recorded_at.isoformat(), "reason": fact.reason}
    path = projections_path(store.location)
    projections: dict[str, int] = {}
    if path.exists():  # read only: a status never writes
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
            try:
                found = conn.execute("SELECT projection, position FROM tracking ORDER BY projection")
                projections = {name: position for name, position in found.fetchall()}
            finally:
                conn.close()
        except sqlite3.Error:
            projections = {}
    # The ledger's own key, where the store has one (read, never printed: only its id).
    key = getattr(getattr(store, "mapper", None), "ledger_key", None)
    return {"ledger": describe(store.location), "events": events, "last_event": last,
            "last_seal": seal, "projections_file": str(path), "projections": projections,
            "ledger_id": getattr(store, "ledger_id", None) or None,
            "key_id": getattr(key, "id", None) if key is not None else None,
            "encrypted": bool(os.environ.get("TOPUP_CIPHER_KEY"))}


def replaced(ledger: Ledger, kind: str, year: str, setting: str | None = None) -> str | None:
    """In words, the rate, tariff or calendar that a new one for ``year`` would replace (None
    if there is none): read before the new one is recorded."""
    reference = ledger.reference()
    if kind == "rate":
        rate = reference.terms.rates.get(year)
        if rate is None:
            return None
        return (f"{pounds_for_people(rate.hourly_rate)} an hour × {rate.weeks} weeks, threshold "
                f"{pounds_for_people(rate.threshold)}")
    if kind == "tariff":
        bands = reference.terms.tariffs.get((year, setting))
        if not bands:
            return None
        return ", ".join(f"{b}={pounds_for_people(p)}" for b, p in sorted(bands.items()))
    periods = reference.calendars.get(year)
    if not periods:
        return None
    return ", ".join(f"{p.id} {p.start}–{p.end}" for p in periods)
