"""``topup pay PERIOD --preview``: the run worked out exactly as ``pay`` would, recording
nothing (issue 23). Per school: its total, and how it differs from what the school was
paid in the last run; every arrears and claw-back line with its cause; the periods the run
reaches back into; and everything that would make ``pay`` refuse."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.events import PaymentLine
from topup_ledger.domain.money import pounds
from topup_ledger.engine import collector
from topup_ledger.engine.run import reference_and_plans, work_out
from topup_ledger.engine.window import calendar_for
from topup_ledger.services.payment_run import run_id_for
from topup_ledger.services.recording import Ledger
from topup_ledger.services.run_controls import CatchUp, catch_up_of
from topup_ledger.storage.releases import release_policy
from topup_ledger.storage.runs import run_payments

BACK_KINDS = ("arrears", "clawback")


@dataclass
class SchoolPreview:
    school: str
    total: int
    lines: int
    last_run_total: int  # what the school was paid in the last run (0 if not in it)
    by_kind: dict[str, int] = field(default_factory=dict)
    back_lines: list[PaymentLine] = field(default_factory=list)  # arrears and claw-back

    @property
    def difference(self) -> int:
        return self.total - self.last_run_total

    def as_json(self) -> dict[str, Any]:
        return {"school_urn": self.school, "total_pence": self.total, "lines": self.lines,
                "last_run_pence": self.last_run_total, "difference_pence": self.difference,
                "by_kind_pence": dict(sorted(self.by_kind.items())),
                "arrears_and_clawback": [
                    {"plan": line.plan, "pupil": line.pupil, "kind": line.kind,
                     "for_period": line.for_period, "amount_pence": line.amount,
                     "reason": line.reason, "caused_by": list(line.caused_by)}
                    for line in self.back_lines]}


@dataclass
class Preview:
    period: str
    run_id: str | None  # the run ``pay`` would record (None: it would record nothing)
    release: str
    last_run: str | None
    schools: list[SchoolPreview] = field(default_factory=list)
    reaches_back: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    catch_up: CatchUp = field(default_factory=CatchUp)

    @property
    def total(self) -> int:
        return sum(s.total for s in self.schools)

    @property
    def would_refuse(self) -> bool:
        return bool(self.refusals)

    def as_json(self) -> dict[str, Any]:
        return {"period": self.period, "run_id": self.run_id, "recorded": False,
                "release": self.release, "last_run": self.last_run,
                "would_refuse": self.would_refuse, "refusals": self.refusals,
                "catch_up": {"never_run": self.catch_up.never_run,
                             "default_terms": self.catch_up.default_terms},
                "reaches_back_into": self.reaches_back,
                "total_pence": self.total, "total_gbp": pounds(self.total),
                "schools": [s.as_json() for s in self.schools]}


def last_run_totals(ledger: Ledger, run_id: str | None) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    if run_id is not None:
        for paid in run_payments(ledger.store, run_id):
            totals[paid.school] += sum(line.amount for line in paid.lines)
    return totals


def preview(ledger: Ledger, period_id: str, *, catch_up: bool = False) -> Preview:
    """What ``topup pay period_id`` would record now; records nothing."""
    store = ledger.store
    with collector.paused():
        upto = store.max_position()
        known, plans = reference_and_plans(store, upto)
        last = known.last_standing_run()
        last_id = last[1].fact.run_id if last else None  # type: ignore[attr-defined]
        found = Preview(period_id, None, release_policy(store), last_id)
        try:
            order = {p.id: p.start for p in
                     calendar_for(known, period_id, plans.first_issued()).periods}
            found.catch_up = catch_up_of(known, period_id, plans.first_issued())
            if found.catch_up and not catch_up:
                found.refusals += [f"catch-up without --catch-up: {said}"
                                   for said in found.catch_up.lines()]
            try:
                sequence, lines = work_out(known, period_id, plans, store)
            except MissingTerms as gap:
                found.refusals += gap.missing
                return found
        except RuleError as error:
            found.refusals.append(f"{error.field}: {error.problem}")
            return found
        finally:
            plans.close()
    with lines:
        found.refusals += [f"event {name} at position {position} is not authenticated by the "
                           f"ledger's key ({why})" for position, name, why in
                           store.unauthenticated(upto)]
        before = last_run_totals(ledger, last_id)
        reached: set[str] = set()
        counts = {t.school: t for t in lines.totals()}
        for school, school_lines in lines.by_school():
            by_kind: dict[str, int] = defaultdict(int)
            for line in school_lines:
                by_kind[line.kind] += line.amount
                if line.for_period != period_id:
                    reached.add(line.for_period)
            found.schools.append(SchoolPreview(
                school, counts[school].pence, counts[school].lines, before.get(school, 0),
                dict(by_kind), [line for line in school_lines if line.kind in BACK_KINDS]))
    if sequence == 1 or found.schools:
        found.run_id = run_id_for(period_id, sequence)
    found.reaches_back = sorted(reached, key=lambda p: (order.get(p) is None, order.get(p), p))
    return found
