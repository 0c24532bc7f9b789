"""Idempotency everywhere (issue 9): every command that records something, run a second time
with the same arguments, records nothing new (and says so) or refuses the repeat clearly;
commands that write files write the same bytes again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import FakeClock, new_location
from reliability_support import (
    AUTUMN,
    batch,
    content,
    import_all,
    record_figure,
    reference_files,
    topup,
)
from topup_ledger.domain.errors import RuleError
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.store import EventStore


def first_plans(la: Path) -> tuple[str, str, str]:
    """An hours-based plan, a banded plan and a school other than the banded plan's."""
    rows = [r.split(",") for r in
            (batch(la, 1) / "plans.csv").read_text(encoding="utf-8").splitlines()[1:]]
    hours = next(r for r in rows if r[4])
    banded = next(r for r in rows if r[5])
    return hours[0], banded[0], next(r[2] for r in rows if r[2] != banded[2])


# Each recording command, and what its repeat must say: "already recorded" (recorded
# nothing, exit 0) or a refusal (exit 2) naming why.
def recording_commands(la: Path, tmp_path: Path) -> list[tuple[list[str], str]]:
    hours_plan, band_plan, other_school = first_plans(la)
    periods = tmp_path / "periods.csv"
    periods.write_text("period,start,end,share\nautumn,2026-09-01,2026-12-31,4/12\n"
                       "spring,2027-01-01,2027-03-31,3/12\nsummer,2027-04-01,2027-08-31,5/12\n")
    return [
        (["init"], "ledger ready at"),
        (["school", "add", "100777", "--name", "Brook Primary", "--setting", "mainstream"],
         "already recorded as school:100777/1, nothing new"),
        (["school", "cushion", other_school, "--from", "2025-09-01", "--until", "2026-08-31",
          "--share", "50", "--reason", "move to bands"], "already recorded as cushion:"),
        (["calendar", "set", "--year", "2026-27", "--file", str(periods)],
         "already recorded as calendar:2026-27/1, nothing new"),
        (["rate", "set", "--year", "2026-27", "--hourly", "19", "--weeks", "39"],
         "already recorded as rate:2026-27/"),
        (["tariff", "set", "--year", "2026-27", "--band", "A=1600", "--band", "D=7700"],
         "already recorded as tariff:2026-27/"),
        (["plan", "issue", "NEW-1", "--pupil", "PR-NEW-1", "--school", other_school, "--from",
          "2025-10-01", "--hours", "10"], "plan NEW-1 was already issued"),
        (["plan", "hours", hours_plan, "--hours", "15", "--from", "2025-10-06", "--reason",
          "review"], f"already recorded as {hours_plan}/"),
        (["plan", "band", band_plan, "--band", "C", "--from", "2025-10-13", "--reason",
          "annual-review"], f"already recorded as {band_plan}/"),
        (["plan", "correct", band_plan, "--event", "2", "--band", "D", "--note", "it was D"],
         f"already recorded as {band_plan}/"),
        (["plan", "move", band_plan, "--school", other_school, "--from", "2025-11-03"],
         f"plan {band_plan} is already at school {other_school} on 2025-11-03"),
        (["plan", "transfer", hours_plan, "--band", "D", "--from", "2025-12-01"],
         f"plan {hours_plan} is already on band D on 2025-12-01"),
        (["plan", "cease", "NEW-1", "--from", "2026-01-01", "--reason", "moved away"],
         "plan NEW-1 already ceased from 2026-01-01"),
        (["import", str(batch(la, 2) / "plans.csv")], "0 recorded (0 events)"),
        (["import", str(batch(la, 2) / "changes.csv")], "nothing new to record"),
        (["pay", AUTUMN, "--out", str(tmp_path / "pay")], "nothing new to pay for 2025-26/autumn"),
    ]


def test_every_recording_command_repeated_records_nothing_twice(
        backend: str, tmp_path: Path, la: Path) -> None:
    location = new_location(backend, tmp_path)
    topup(location, "init")
    import_all(location, [*reference_files(la), batch(la, 1) / "plans.csv",
                          batch(la, 2) / "tariffs.csv"])
    repeated = 0
    for args, says in recording_commands(la, tmp_path):
        topup(location, *args)
        before = content(location)
        again = topup(location, *args, ok=False)
        assert content(location) == before, f"topup {' '.join(args)} recorded something twice"
        assert says in again.output, (args, again.output)
        if again.exit_code:
            assert again.exit_code == 2 and again.output.startswith("error: ")
            assert again.output.rstrip().endswith("nothing was recorded")
        repeated += 1
    # A seal on demand records the chain head now: a second seal covers the first.
    first = topup(location, "seal").output.split()[1]
    second = topup(location, "seal").output.split()[1]
    assert first != second and topup(location, "verify", "--digest", first).exit_code == 0
    record_figure("idempotency", backend=backend, commands=repeated + 1)


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_commands_that_write_files_write_the_same_bytes_again(tmp_path: Path, la: Path) -> None:
    location = str(tmp_path / "ledger.sqlite")
    topup(location, "init")
    import_all(location, [*reference_files(la), batch(la, 1) / "plans.csv"])
    commands = [
        ["pay", AUTUMN, "--out", "{out}", "--copy"],  # released, then copies of the release
        ["funding", "--out", "{out}"],
        ["reconcile", "paid-vs-due", "--out", "{out}"],
        ["reconcile", "hours-vs-band", "--out", "{out}"],
        ["statements", AUTUMN, "--format", "html", "--format", "csv", "--out", "{out}"],
        ["export", "events", "--out", "{out}/events.parquet"],
    ]
    for args in commands:
        runs = []
        for n in (1, 2):
            out = tmp_path / f"{args[0]}-{args[1]}-{n}"
            topup(location, *[a.format(out=out) for a in args])
            runs.append({name.removeprefix("COPY-"): sha for name, sha in digests(out).items()})
        assert runs[0] == runs[1] and runs[0], args
    before = content(location)
    topup(location, "rebuild")
    topup(location, "rebuild")
    assert content(location) == before


def test_the_payment_run_itself_refuses_a_period_of_an_impossible_year(tmp_path: Path,
                                                                       clock: FakeClock) -> None:
    store = EventStore(str(tmp_path / "ledger.sqlite"), create=True)
    try:
        with pytest.raises(RuleError):
            pay(Ledger(store, clock=clock), "99999-00/autumn")
    finally:
        store.close()
