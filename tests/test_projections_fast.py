"""Faster must not mean different (issue 8): the projections' fast paths give the same files
as the plain path that prices every period of every plan again from its facts.

The fast path takes a plan-period's due from its payment lines when the payment run left it
settled (nothing bearing on the plan recorded since the last run covered it); the plain path
ignores payments when working out due. Both run on the same ledger, each into its own
projection file, and every output file must match byte for byte. Each test runs on SQLite
and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from test_projections import scenario, write_all
from topup_ledger.projections import runner
from topup_ledger.projections.db import ProjectionDB, projections_path
from topup_ledger.projections.school_periods.fold import SchoolPeriods
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger


class PlainSchoolPeriods(SchoolPeriods):
    def __init__(self) -> None:
        super().__init__(settle_from_runs=False)


def both_paths(location: str, clock: Any, out: Path, monkeypatch: pytest.MonkeyPatch
               ) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Every output file written by the fast path and by the plain path, each from nothing."""
    found = []
    for name, fold in (("fast", SchoolPeriods), ("plain", PlainSchoolPeriods)):
        with monkeypatch.context() as patch:
            patch.setitem(runner.FOLDS, "school-periods", fold)
            patch.setenv("TOPUP_PROJECTIONS", str(out / f"{name}.projections.sqlite"))
            found.append(write_all(location, clock, out / name))
    return found[0], found[1]


def test_settled_dues_give_the_same_files_at_every_step(ledger: Ledger, clock: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for step, name in enumerate(scenario(ledger, clock, tmp_path / "payments")):
        fast, plain = both_paths(ledger.store.location, clock, tmp_path / f"step-{step}", monkeypatch)
        assert fast == plain, name
    assert len(fast) == 8


def test_settled_dues_give_the_same_files_on_a_generated_la(ledger: Ledger, clock: Any,
                                                            tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A synthetic LA over two years: backdated changes, corrections, moves, ceasings,
    tariff revisions and six termly runs, compared after every run and before every other
    run (its batch of changes recorded since the last run: some plans settled, some not)."""
    from topup_ledger.services.generator import generate
    from topup_ledger.services.importer import import_file

    la = generate(plans=120, schools=12, years=2, seed=7)
    la.write(tmp_path / "la")
    compared = 0
    for batch in la.batches:
        day = batch.run.on
        clock.now = max(clock.now, datetime(day.year, day.month, day.day, 8, tzinfo=UTC) - timedelta(days=1))
        for kind, _ in batch.files():
            import_file(ledger, tmp_path / "la" / batch.folder / f"{kind}.csv", kind)
        if batch.number % 2 == 0:
            fast, plain = both_paths(ledger.store.location, clock,
                                     tmp_path / f"before-{batch.number}", monkeypatch)
            assert fast == plain, f"before run {batch.number}"
            compared += 1
        clock.advance(days=1)
        pay(ledger, batch.run.period)
        fast, plain = both_paths(ledger.store.location, clock, tmp_path / f"after-{batch.number}",
                                 monkeypatch)
        assert fast == plain, f"after run {batch.number}"
        compared += 1
    assert compared == 9
    # Revisions after the last run: of a year no period overlaps (nothing changes), of the
    # next financial year (the second academic year is priced again, the first stays
    # settled), of the first year's hourly rate, and a new school (nothing stays settled).
    for step, revise in enumerate((
            lambda: ledger.set_tariff("2024-25", {"C": 400_000}, reason="late correction"),
            lambda: ledger.set_tariff("2027-28", {"C": 700_000}, reason="approved early"),
            lambda: ledger.set_tariff("2026-27", {"B": 333_333, "D": 777_777}, reason="revised"),
            lambda: ledger.set_rate("2025-26", 1250, Decimal(38), 600_000, reason="revised"),
            lambda: ledger.add_school("199999", "New Academy", "mainstream"))):
        revise()
        fast, plain = both_paths(ledger.store.location, clock, tmp_path / f"revised-{step}",
                                 monkeypatch)
        assert fast == plain, f"revision {step}"
    funding = (tmp_path / f"after-{la.batches[-1].number}" / "fast" / "funding.csv").read_text()
    assert funding.count("\n") > 12  # schools × periods: the comparison is not of empty files


def test_plans_shared_over_cores_give_the_same_files(ledger: Ledger, clock: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Dirty plans worked out in forked children (a share from one plan up, so every refresh
    of two plans or more forks) give the same files, incrementally and from nothing, as one
    process does."""
    from topup_ledger.engine import cores

    def written(name: str, *, shared: bool) -> dict[str, bytes]:
        with monkeypatch.context() as patch:
            patch.setattr(cores, "cores", lambda: 2 if shared else 1)
            patch.setattr(cores, "PLANS_PER_CORE", 1)
            patch.setenv("TOPUP_PROJECTIONS", str(tmp_path / f"{name}.projections.sqlite"))
            return write_all(ledger.store.location, clock, tmp_path / name)

    forks = []
    original = cores.shared_out

    def counted(shares: Any, work: Any) -> Any:
        forks.append(len(shares))
        return original(shares, work)

    monkeypatch.setattr(cores, "shared_out", counted)
    for step, name in enumerate(scenario(ledger, clock, tmp_path / "payments")):
        shared = written(f"shared-{step}", shared=True)  # updated step by step
        assert shared == written(f"alone-{step}", shared=False), name
    assert written("shared-fresh", shared=True) == shared
    assert len(shared) == 8 and max(forks) == 2


def test_a_child_that_fails_leaves_its_plans_dirty(ledger: Ledger, clock: Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from topup_ledger.engine import cores
    from topup_ledger.projections.db import ProjectionDB, projections_path
    from topup_ledger.projections.runner import catch_up, folds_for
    from topup_ledger.projections.school_periods import recompute

    for _ in scenario(ledger, clock, tmp_path / "payments"):
        pass
    parent = os.getpid()
    original = recompute.plan_rows

    def fails_in_a_child(*args: Any) -> Any:
        if os.getpid() != parent:
            raise RuntimeError("a child failed")
        return original(*args)

    monkeypatch.setattr(cores, "cores", lambda: 2)
    monkeypatch.setattr(cores, "PLANS_PER_CORE", 2)
    monkeypatch.setattr(recompute, "plan_rows", fails_in_a_child)
    db = ProjectionDB(projections_path(ledger.store.location))
    with pytest.raises(RuntimeError, match="a child failed"):
        catch_up(ledger.store, db, folds_for(["funding"]))
    plans = db.conn.execute("SELECT COUNT(*) FROM sp_plan").fetchone()[0]
    assert db.conn.execute("SELECT COUNT(*) FROM sp_dirty").fetchone()[0] == plans >= 4
    assert db.conn.execute("SELECT COUNT(*) FROM sp_due").fetchone()[0] == 0
    db.close()
    monkeypatch.setattr(recompute, "plan_rows", original)
    resumed = write_all(ledger.store.location, clock, tmp_path / "resumed")
    monkeypatch.setattr(cores, "cores", lambda: 1)
    monkeypatch.setenv("TOPUP_PROJECTIONS", str(tmp_path / "alone.projections.sqlite"))
    assert write_all(ledger.store.location, clock, tmp_path / "alone") == resumed


def generated_steps(ledger: Ledger, clock: Any, folder: Path) -> Iterator[str]:
    """A synthetic LA over two years, a step before and after each of its six termly runs:
    each run moves the horizon on to its period."""
    from topup_ledger.services.generator import generate
    from topup_ledger.services.importer import import_file

    la = generate(plans=120, schools=12, years=2, seed=11)
    la.write(folder)
    for batch in la.batches:
        day = batch.run.on
        clock.now = max(clock.now, datetime(day.year, day.month, day.day, 8, tzinfo=UTC) - timedelta(days=1))
        for kind, _ in batch.files():
            import_file(ledger, folder / batch.folder / f"{kind}.csv", kind)
        yield f"before run {batch.number}"
        clock.advance(days=1)
        pay(ledger, batch.run.period)
        yield f"after run {batch.number}"


def test_the_horizon_moving_on_extends_rows_to_the_same_files(
        ledger: Ledger, clock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After each run the horizon reaches the run's period: one projection file, updated at
    every step, only adds every plan's rows for the periods reached, and gives the files a
    rebuild from nothing gives (on the fast and on the plain path)."""
    from topup_ledger.engine import cores

    monkeypatch.setattr(cores, "cores", lambda: 1)  # extended plans are counted here
    extended: list[int] = []
    original = SchoolPeriods.extension

    def counted(self: SchoolPeriods, conn: Any, context: Any) -> Any:
        found = original(self, conn, context)
        if found is not None:
            assert found[1].after is not None
            extended.append(len(found[0]))
        return found

    monkeypatch.setattr(SchoolPeriods, "extension", counted)

    def written(name: str, fold: type[SchoolPeriods], out: Path) -> dict[str, bytes]:
        with monkeypatch.context() as patch:
            patch.setitem(runner.FOLDS, "school-periods", fold)
            patch.setenv("TOPUP_PROJECTIONS", str(tmp_path / f"{name}.projections.sqlite"))
            return write_all(ledger.store.location, clock, out / name)

    steps = 0
    for step, name in enumerate(generated_steps(ledger, clock, tmp_path / "la")):
        out = tmp_path / f"step-{step}"
        before = len(extended)
        updated = written("updated", SchoolPeriods, out)
        plain = written("plain-updated", PlainSchoolPeriods, out)
        if name.startswith("after") and step > 1:
            assert len(extended) > before, f"{name}: nothing was extended"
        extended_here = len(extended)
        assert updated == written(f"fresh-{step}", SchoolPeriods, out), name
        assert len(extended) == extended_here  # from nothing, every plan is worked out
        assert plain == updated, name
        steps += 1
    assert steps == 12 and sum(extended) >= 5 * 2 * 100
    assert updated["funding.csv"].count(b"\n") > 12


class Killed(BaseException):
    """The process dies mid-transaction (as a signal would end it)."""


def test_an_extension_cut_short_then_moved_on_again_works_every_plan_out(
        ledger: Ledger, clock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed part-way through extending (some plans reached the new period, some not), and
    the horizon moves on again before the next update: the plans no longer share one period
    to extend from, so every plan is worked out again, and the files are a rebuild's."""
    from topup_ledger.engine import cores
    from topup_ledger.projections import base

    monkeypatch.setattr(cores, "cores", lambda: 1)
    monkeypatch.setattr(base, "CHUNK", 10)
    location = ledger.store.location
    steps = generated_steps(ledger, clock, tmp_path / "la")
    for name in steps:
        if name == "after run 3":
            break
    monkeypatch.setenv("TOPUP_PROJECTIONS", str(tmp_path / "updated.projections.sqlite"))
    write_all(location, clock, tmp_path / "first")
    assert next(steps) == "before run 4" and next(steps) == "after run 4"
    original = SchoolPeriods.write
    writes = []

    worked_out_afresh: set[str] = set()  # dirty plans (changed in batch 4): rows replaced

    def killed(self: SchoolPeriods, conn: Any, plans: list[str], rows: Any, context: Any) -> None:
        if context.after is not None:
            writes.append(len(plans))
            if len(writes) == 3:
                raise Killed
        else:
            worked_out_afresh.update(plans)
        original(self, conn, plans, rows, context)

    monkeypatch.setattr(SchoolPeriods, "write", killed)
    with pytest.raises(Killed):
        write_all(location, clock, tmp_path / "killed")
    monkeypatch.setattr(SchoolPeriods, "write", original)
    db = ProjectionDB(projections_path(location))
    left = db.conn.execute("SELECT COUNT(*) FROM sp_extend").fetchone()[0]
    plans = db.conn.execute("SELECT COUNT(*) FROM sp_plan").fetchone()[0]
    db.close()
    # Two chunks of ten extended, the third rolled back with its marks.
    assert writes == [10, 10, 10] and worked_out_afresh
    assert 0 < left == plans - len(worked_out_afresh) - 20
    clock.advance(days=100)
    pay(ledger, "2026-27/spring")  # the next term's run, with nothing new to import
    moved_on = SchoolPeriods.extend_to_new_horizon
    answers = []
    monkeypatch.setattr(SchoolPeriods, "extend_to_new_horizon",
                        lambda self, *args: answers.append(moved_on(self, *args)) or answers[-1])
    updated = write_all(location, clock, tmp_path / "updated")
    assert answers == [False]  # the horizon moved on, but from where? Every plan is dirty.
    monkeypatch.setenv("TOPUP_PROJECTIONS", str(tmp_path / "fresh.projections.sqlite"))
    assert updated == write_all(location, clock, tmp_path / "fresh")
