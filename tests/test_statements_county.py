"""Every statement of a generated LA (three years of termly runs, moves, backdated reviews,
transfers, cessations, corrections, tariff revisions): figures equal the payment files, and
no statement names a pupil who was never at that school."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_statements import read_csv
from topup_ledger.domain import events as ev
from topup_ledger.domain.plan import Plan, RecordedFact
from topup_ledger.services.demo import build_demo
from topup_ledger.statements import write_period
from topup_ledger.statements.render import render_csv
from topup_ledger.storage.store import EventStore

PLANS = 300


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EventStore, Path]]:
    folder = tmp_path_factory.mktemp("county") / "la"
    build_demo(folder, plans=PLANS, seed=5)
    store = EventStore(str(folder / "ledger.sqlite"))
    yield store, folder
    store.close()


def pupils_of_schools(store: EventStore) -> dict[str, set[str]]:
    """Per school, every pupil it may see: plans ever placed there (as first recorded or as
    corrected at any point) and every pupil it was ever paid for."""
    facts: dict[str, list[RecordedFact]] = defaultdict(list)
    allowed: dict[str, set[str]] = defaultdict(set)
    pupil: dict[str, str] = {}
    for position, r in store.recorded():
        fact = r.fact
        if isinstance(fact, ev.SchoolPaid):
            allowed[fact.school] |= {line.pupil for line in fact.lines if line.pupil}
        elif fact.TYPE.startswith("plan."):
            facts[fact.plan].append(RecordedFact(r.id, fact, position))
            if isinstance(fact, ev.PlanIssued):
                pupil[fact.plan] = fact.pupil
            for school in Plan(facts[fact.plan]).schools():
                allowed[school].add(pupil[fact.plan])
    return allowed


def test_every_statement_agrees_with_the_payment_files_and_shows_only_its_own_pupils(
        county: tuple[EventStore, Path], tmp_path: Path) -> None:
    store, folder = county
    payments = folder / "payments"
    runs = [r.fact for _, r in store.recorded(types=(ev.PaymentRunRecorded.TYPE,))]
    assert len(runs) >= 9
    allowed = pupils_of_schools(store)
    every_pupil = set().union(*allowed.values())
    checked = changes = moves = 0
    for run in runs:
        school_rows = {r["school_urn"]: r for r in read_csv(payments / f"payments-{run.run_id}.csv")}
        line_rows: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in read_csv(payments / f"payment-lines-{run.run_id}.csv"):
            line_rows[row["school_urn"]].append(row)
        result = write_period(store, run.period, tmp_path / run.run_id, ["html"])
        assert {s.school for s in result.statements} == set(school_rows)
        for s in result.statements:
            row = school_rows[s.school]
            assert s.totals.total == int(row["total_pence"])
            for kind in ("regular", "arrears", "clawback", "protection", "cushion"):
                assert getattr(s.totals, kind) == int(row[f"{kind}_pence"])
            assert [(x.plan, x.kind, x.for_period, x.amount) for x in s.lines] == [
                (r["plan_ref"], r["line_kind"], r["for_period"], int(r["amount_pence"]))
                for r in line_rows[s.school]]
            assert sum(c.total for c in s.children) + s.cushion == s.totals.total
            assert s.seal == run.seal
            html = (tmp_path / run.run_id / f"statement-{s.school}-{run.period.replace('/', '-')}.html"
                    ).read_text()
            shown = {p for p in every_pupil if p in html} | {
                p for p in re.findall(r"PR-[0-9A-F]+", render_csv(s))}
            assert shown <= allowed[s.school], (s.school, run.period, shown - allowed[s.school])
            assert {c.pupil for c in s.children} <= shown
            checked += 1
            changes += len(s.changes)
            moves += sum(c.kind in ("moved-in", "moved-out") for c in s.changes)
    assert checked > 100 and changes > 0 and moves > 0
