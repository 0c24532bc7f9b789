"""`topup demo`: a county-sized LA from scratch, through the three-year move to bands.

The generator (``generator.py``) makes a synthetic LA laid out in time: batches of import
files, each followed by a termly payment run. The demo writes those files into the demo
folder, imports each batch through the same importer as ``topup import`` (one atomic
append per batch), makes each payment run, and writes every run's payment files. The
ledger's clock is the simulation's: a batch is recorded the day before its run and a run
on its first day, so the audit history reads as the LA would have lived it.

Everything lands in one folder: ``ledger.sqlite``, ``input/`` (the generated CSVs, with
``schedule.csv`` and ``run.sh`` to replay them by hand), ``payments/`` (written and their
digests recorded after each run, as ``topup pay`` does), ``projections/`` (funding, paid vs
due, hours vs band), ``statements/`` (every school's statement for the last term), a closing
seal, ``verify.txt``/``verify.json`` (``topup verify`` of all of it) and ``summary.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from topup_ledger.audit.verify import report_text, verify
from topup_ledger.domain.money import pounds, pounds_for_people
from topup_ledger.io.import_csv import read_table
from topup_ledger.projections import file_stem, funding, hours_vs_band, paid_vs_due, write_output
from topup_ledger.projections.runner import view
from topup_ledger.services.demo_finance import RouteSplit, set_up_finance
from topup_ledger.services.generator import KIND_ORDER, GeneratedLA, generate
from topup_ledger.services.importer import Import
from topup_ledger.services.payment_run import pay_and_write
from topup_ledger.services.recording import Ledger
from topup_ledger.services.remittance import (
    DEMO_MAPPING,
    import_remittance,
    paid_vs_remitted,
    write_demo_remittance,
    write_paid_vs_remitted,
)
from topup_ledger.services.run_controls import RunControls
from topup_ledger.services.sealing import seal
from topup_ledger.statements import write_period
from topup_ledger.statements.finance import write_finance
from topup_ledger.storage.releases import release_policy
from topup_ledger.storage.store import EventStore

DEFAULT_PLANS = 8000
MARKER = ".topup-demo"
OWNED = ("ledger.sqlite", "ledger.projections.sqlite", "input", "payments", "projections",
         "statements", "reports", "summary.json", "verify.txt", "verify.json", MARKER)

Step = Callable[[str], None]


class DemoError(RuntimeError):
    """The demo could not build its LA (a folder in the way, or a generator bug)."""


def schools_for(plans: int) -> int:
    """About 450 schools for 8,000 plans, at least a handful."""
    return max(8, min(600, round(plans * 450 / 8000)))


def steps(years: int = 3) -> int:
    """How many times ``build_demo`` calls ``step``: generate, write, 2 per term,
    projections, statements, seal and verify."""
    return 2 + 2 * 3 * years + 3


@dataclass
class Neutrality:
    """Hours-vs-band cost neutrality over the plans moved to bands, as the hours-vs-band
    reconciliation reports it: the prior hours-based annual amounts kept on the transfers
    against the band amounts of the same plans, and what protection adds a year."""

    plans: int = 0
    prior: int = 0
    banded: int = 0
    protection: int = 0
    # On the full cost (docs/rules.md §13): at one year's prices over the days funded.
    prices_year: str = ""
    prior_cost: int = 0
    band_cost: int = 0
    protection_cost: int = 0
    cushion_cost: int = 0

    @property
    def ratio(self) -> float:
        return self.banded / self.prior if self.prior else 0.0

    @property
    def full_cost(self) -> int:
        return self.band_cost + self.protection_cost + self.cushion_cost

    @property
    def full_ratio(self) -> float:
        return self.full_cost / self.prior_cost if self.prior_cost else 0.0


@dataclass
class DemoSummary:
    folder: str
    plans: int
    schools: int
    events: int
    runs: list[dict[str, object]] = field(default_factory=list)
    total_paid: int = 0
    due_now: int = 0
    unsettled: int = 0
    neutrality: Neutrality = field(default_factory=Neutrality)
    outputs: dict[str, str] = field(default_factory=dict)
    seal: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    opening: int = 0
    generated: str = ""
    finance: RouteSplit = field(default_factory=RouteSplit)
    remitted: dict[str, int] = field(default_factory=dict)  # paid-vs-remitted rows by state

    def lines(self) -> list[str]:
        n = self.neutrality
        change = (n.ratio - 1) * 100
        return [
            f"an LA of {self.schools:,} schools and {self.plans:,} plans ({self.opening:,} open on "
            f"1 September 2025, the rest issued later), over three academic years:",
            f"  {self.generated}",
            *(f"  {r['run_id']}: {r['schools']:,} schools, {pounds_for_people(int(r['total']))}"  # type: ignore[call-overload]
              for r in self.runs),
            f"total paid over {len(self.runs)} termly runs: {pounds_for_people(self.total_paid)}; "
            f"due as known now {pounds_for_people(self.due_now)}, {self.unsettled} school-terms "
            f"unsettled",
            *self.finance.lines(),
            f"cost neutrality on the full cost: {n.plans:,} plans moved from hours to bands, at "
            f"{n.prices_year} prices over the days funded: prior hours-based "
            f"{pounds_for_people(n.prior_cost)}; bands {pounds_for_people(n.band_cost)} + protection "
            f"{pounds_for_people(n.protection_cost)} + cushion {pounds_for_people(n.cushion_cost)} = "
            f"{pounds_for_people(n.full_cost)} ({(n.full_ratio - 1) * 100:+.2f}%)",
            f"  bands alone at the transfers' prices: prior {pounds_for_people(n.prior)} a year, "
            f"bands {pounds_for_people(n.banded)} a year ({change:+.1f}%), protection "
            f"{pounds_for_people(n.protection)} a year",
            f"ledger: {self.events:,} events; took {sum(self.seconds.values()):.0f}s: "
            + ", ".join(f"{label} {self.seconds.get(key, 0):.1f}s" for key, label in (
                ("generate", "generating"), ("import", "importing"),
                ("pay", "payment runs and their files"), ("projections", "projections"),
                ("statements", "statements"), ("verify", "seal and verify"))),
            *(f"  {what}: {where}" for what, where in self.outputs.items()),
            *(["paid vs remitted: " + ", ".join(f"{n:,} {state}" for state, n in
                                                  sorted(self.remitted.items()))]
              if self.remitted else []),
            f"closing seal (keep it outside the ledger; `topup verify --digest` checks it): "
            f"{self.seal}",
        ]

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["total_paid_gbp"] = pounds(self.total_paid)
        data["neutrality"]["ratio"] = round(self.neutrality.ratio, 6)
        data["neutrality"]["full_cost"] = self.neutrality.full_cost
        data["neutrality"]["full_ratio"] = round(self.neutrality.full_ratio, 6)
        return data


def prepare(folder: Path) -> None:
    """A fresh demo folder: refuse to clear one the demo did not make."""
    if folder.exists():
        if not folder.is_dir():
            raise DemoError(f"{folder} is a file, not a folder")
        contents = {p.name for p in folder.iterdir()}
        if contents and MARKER not in contents:
            raise DemoError(f"{folder} already holds files the demo did not make; "
                            "choose another folder with --out")
        for name in contents & set(OWNED):
            path = folder / name
            if path.is_dir():
                _remove_tree(path)
            else:
                path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by topup demo; the demo may clear this folder\n")


def _remove_tree(path: Path) -> None:
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    path.rmdir()


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, clock_time(hour), tzinfo=UTC)


def build_demo(folder: Path, *, plans: int = DEFAULT_PLANS, schools: int | None = None,
               seed: int = 1, step: Step | None = None) -> DemoSummary:
    """Build the demo LA in ``folder`` and return what happened."""
    tick = step or (lambda label: None)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    prepare(folder)
    school_count = schools or schools_for(plans)
    la = generate(plans=plans, schools=school_count, seed=seed)
    tick("generated the LA")
    la.write(folder / "input")
    tick("wrote the import files")
    timings["generate"] = time.perf_counter() - started
    store = EventStore(str(folder / "ledger.sqlite"), create=True)
    try:
        summary = _replay(la, folder, store, tick, timings)
    finally:
        store.close()
    summary.plans, summary.schools, summary.seconds = plans, school_count, timings
    summary.opening, summary.generated = la.stats["opening_plans"], la.describe_changes()
    (folder / "summary.json").write_text(json.dumps(summary.as_json(), indent=2) + "\n")
    return summary


def _replay(la: GeneratedLA, folder: Path, store: EventStore, tick: Step,
            timings: dict[str, float]) -> DemoSummary:
    clock_now = [at(la.runs[0].on - timedelta(days=1), 9)]
    ledger = Ledger(store, clock=lambda: clock_now[0])
    summary = DemoSummary(str(folder), 0, 0, 0)
    timings["import"] = timings["pay"] = 0.0
    paid_on: dict[str, date] = {}
    for batch in la.batches:
        t0 = time.perf_counter()
        clock_now[0] = at(batch.run.on - timedelta(days=1), 16)
        job = Import(ledger)
        for kind, _ in batch.files():
            assert kind in KIND_ORDER
            table = read_table(folder / "input" / batch.folder / f"{kind}.csv")
            result = job.stage_table(table, kind)
            if result.rejected:
                first = result.rejects()[0]
                raise DemoError(f"the generator wrote a row the ledger refuses: {table.path} line "
                                f"{first.line}, {first.field}: {first.reason}")
        job.commit()
        if batch is la.batches[0]:  # routes, payees and the finance mapping (issue 22)
            set_up_finance(ledger, la, folder / "input")
        timings["import"] += time.perf_counter() - t0
        tick(f"imported {batch.folder}")
        t0 = time.perf_counter()
        clock_now[0] = at(batch.run.on, 9)
        result, _ = pay_and_write(ledger, batch.run.period, folder / "payments",
                                  controls=RunControls(release_policy(store)))
        paid_on[result.run_id] = batch.run.on + timedelta(days=7)
        timings["pay"] += time.perf_counter() - t0
        summary.runs.append({"run_id": result.run_id, "period": result.period,
                             "schools": len(result.schools), "total": result.total,
                             "seal": result.seal})
        summary.total_paid += result.total
        summary.finance.add(ledger, result.run_id, [(s.school, s.pence) for s in result.schools])
        tick(f"paid {batch.run.period}")
    summary.outputs["payment files"] = "payments/ (CSV and Parquet: per school, and per line, of each run)"
    summary.outputs["finance files"] = ("payments/finance-* (journal, AP payments, recoupment: CSV "
                                        "and Parquet; a workbook per run), by input/finance/finance.toml")
    summary.outputs.update(_remittance(ledger, folder, paid_on, summary))
    t0 = time.perf_counter()
    summary.outputs.update(_projections(store, folder, summary))
    tick("wrote the projections")
    timings["projections"], t0 = time.perf_counter() - t0, time.perf_counter()
    last = la.runs[-1].period
    written = write_period(store, last, folder / "statements" / last.replace("/", "-"))
    summary.outputs["school statements"] = str(written.index.relative_to(folder))
    report = write_finance(store, last, folder / "reports")
    summary.outputs["finance report"] = str(report[0].relative_to(folder))
    tick("wrote the school statements")
    timings["statements"], t0 = time.perf_counter() - t0, time.perf_counter()
    closing = seal(ledger, "end of the demo: every run and its files")
    report = verify(store, folders=[folder / "payments"])
    (folder / "verify.txt").write_text(report_text(report) + "\n", encoding="utf-8")
    (folder / "verify.json").write_text(json.dumps(report.as_json(), indent=2) + "\n")
    if not report.ok:
        raise DemoError(f"verify found problems in the demo ledger: see {folder / 'verify.txt'}")
    summary.seal = closing.digest
    summary.outputs["verify report"] = "verify.txt (and verify.json)"
    tick("sealed and verified the ledger")
    timings["verify"] = time.perf_counter() - t0
    summary.events = store.max_position()
    return summary


def _remittance(ledger: Ledger, folder: Path, paid_on: dict[str, date],
                summary: DemoSummary) -> dict[str, str]:
    """The runs' remittance as the AP system would send it back (one payment short, one made
    twice), imported, and matched against what the ledger released. The demo is one officer
    on SQLite (its actor is the OS login), so its runs are one-person: released as recorded."""
    path = write_demo_remittance(ledger, paid_on, folder / "input" / "remittance.csv")
    import_remittance(ledger, path, DEMO_MAPPING)
    rows = paid_vs_remitted(ledger)
    write_paid_vs_remitted(rows, folder / "projections", None)
    for row in rows:
        summary.remitted[row.state] = summary.remitted.get(row.state, 0) + 1
    return {"remittance": "input/remittance.csv, matched in projections/paid-vs-remitted.csv"}


def _projections(store: EventStore, folder: Path, summary: DemoSummary) -> dict[str, str]:
    """Per-school funding, paid vs due and hours vs band, as `topup funding` and `topup
    reconcile` write them; the summary takes its totals from them."""
    out = folder / "projections"
    with view(store, ["funding", "paid-vs-due", "hours-vs-band"]) as v:
        outputs = {"funding": funding.rows(v), "paid-vs-due": paid_vs_due.rows(v),
                   "hours-vs-band": hours_vs_band.rows(v),
                   "band-calibration": hours_vs_band.calibration(v)}
    for name, rows in outputs.items():
        write_output(name, rows, out, file_stem(name))
    totals = paid_vs_due.totals(outputs["paid-vs-due"])
    summary.due_now, summary.unsettled = totals["due_pence"], totals["unsettled"]
    overall = [r for r in outputs["hours-vs-band"] if r["level"] == "overall"]
    if overall:
        o = overall[0]
        summary.neutrality = Neutrality(o["plans"], o["prior_annual_pence"], o["band_annual_pence"],
                                        o["protection_annual_pence"], o["prices_year"],
                                        o["prior_cost_pence"], o["band_cost_pence"],
                                        o["protection_cost_pence"], o["cushion_cost_pence"])
    return {"projections": "projections/ (funding, paid-vs-due, hours-vs-band, band-calibration)"}


def run_demo(folder: Path, say: Callable[[str], None], *, plans: int = DEFAULT_PLANS,
             seed: int = 1, step: Step | None = None) -> Path:
    """Build the demo and tell ``say`` what happened; returns the folder."""
    summary = build_demo(folder, plans=plans, seed=seed, step=step)
    for line in summary.lines():
        say(line)
    return folder
