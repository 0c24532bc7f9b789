"""Read-only views of one plan: its history and its due for a period, as plain data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from topup_ledger.domain import events as ev
from topup_ledger.domain.entitlement import dues, stretches
from topup_ledger.domain.money import pounds, round_half_up
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.codec import to_data
from topup_ledger.storage.streams import plan_stream


@dataclass(frozen=True)
class HistoryRow:
    id: str
    type: str
    effective: str
    recorded_at: str
    what: str
    why: str
    corrected_by: list[str]
    recorded_by: str = "unknown"  # the authenticated actor ("unknown" for older events)

    def as_json(self) -> dict[str, object]:
        return self.__dict__.copy()


def plain_pounds(pence: int) -> str:
    """'£6341.45': how ``history --json`` has always written an amount (kept as it is)."""
    return f"£{pounds(pence)}"


def describe_fact(fact: ev.Fact, money: Callable[[int], str] = plain_pounds) -> tuple[str, str]:
    """(what happened, why) in plain words, for histories and statements; ``money`` writes an
    amount (``pounds_for_people`` for a terminal)."""
    if isinstance(fact, ev.PlanIssued):
        basis = f"band {fact.band}" if fact.band else f"{fact.hours} hours a week"
        return (f"{fact.kind.upper()} plan issued for pupil {fact.pupil} at school "
                f"{fact.school} on {basis}", "")
    if isinstance(fact, ev.HoursChanged):
        return f"hours changed to {fact.hours} a week", fact.reason
    if isinstance(fact, ev.TransferredToBand):
        protect = f", protected until {fact.protect_until}" if fact.protect_until else ""
        return (f"transferred from hours to band {fact.band} (prior hours-based amount "
                f"{money(fact.prior_annual)} a year{protect})", "move to banded funding")
    if isinstance(fact, ev.BandChanged):
        return f"band changed to {fact.band}", fact.reason
    if isinstance(fact, ev.PlacementMoved):
        return f"moved to school {fact.school}", ""
    if isinstance(fact, ev.PlanCeased):
        return "plan ceased (funded to the day before)", fact.reason
    if isinstance(fact, ev.ProtectionGranted):
        return f"protection granted from {fact.effective} to {fact.until}", fact.reason
    if isinstance(fact, ev.ProtectionExtended):
        return f"protection extended from {fact.effective} to {fact.until}", fact.reason
    if isinstance(fact, ev.ProtectionEnded):
        return f"protection ended early: not protected from {fact.effective}", fact.reason
    if isinstance(fact, ev.Corrected):
        given = {k: v for k, v in to_data(fact).items()
                 if k in ("band", "hours", "effective", "school") and v is not None}
        fields = ", ".join(f"{'from' if k == 'effective' else k} {v}" for k, v in given.items())
        return f"correction of {fact.corrects}: it should have said {fields}", fact.note
    return fact.TYPE, getattr(fact, "reason", "")


def history(ledger: Ledger, ref: str, money: Callable[[int], str] = plain_pounds) -> list[HistoryRow]:
    """Every event of a plan in its order; ``money`` writes the amounts in its words."""
    plan = ledger.plan(ref)  # refuses an unknown plan
    corrected_by: dict[str, list[str]] = {}
    for record in plan.facts:
        if isinstance(record.fact, ev.Corrected):
            corrected_by.setdefault(record.fact.corrects, []).append(record.id)
    rows = []
    for recorded in ledger.store.stream_recorded(plan_stream(ref)):
        fact = recorded.fact
        what, why = describe_fact(fact, money)
        effective = getattr(fact, "effective", None)
        rows.append(HistoryRow(recorded.id, fact.TYPE,
                               effective.isoformat() if isinstance(effective, date) else "",
                               recorded.recorded_at.isoformat(timespec="seconds"), what, why,
                               corrected_by.get(recorded.id, []), recorded.recorded_by))
    return rows


def due_report(ledger: Ledger, ref: str, period_id: str) -> dict[str, object]:
    """The plan's entitlement for a period as known now, with the stretches behind it."""
    plan = ledger.plan(ref)
    calendar, period = ledger.period(period_id, first=plan.start)
    terms = ledger.terms()
    # The year so far first: it names every gap the period's cumulative due depends on.
    due = dues(plan, [*calendar.year_before(period), period], terms).get(period.id, {})
    found = stretches(plan, period, terms)
    return {
        "plan": ref,
        "period": period.id,
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "share": f"{period.share.numerator}/{period.share.denominator}",
        "stretches": [{
            "from": s.start.isoformat(),
            "to": (s.end_exclusive - timedelta(days=1)).isoformat(),
            "days": s.days,
            "school": s.school,
            "basis": s.basis,
            "band_or_hours": s.band_or_hours,
            "annual_pence": round_half_up(s.annual.base),
            "protection_annual_pence": round_half_up(s.annual.protection),
            "because": " ".join(plan.with_corrections(s.because)),
        } for s in found],
        "due": [{"school": school, "component": component, "pence": pence,
                 "gbp": pounds(pence)} for (school, component), pence in sorted(due.items())],
        "total_pence": sum(due.values()),
        "total_gbp": pounds(sum(due.values())),
    }
