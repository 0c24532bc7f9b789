"""The termly payment file and its line file, built only from a run's recorded events.

Because the rows come from the recorded SchoolPaid events (not from a recalculation), a
file rebuilt later from the ledger is byte-identical to the one written at the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.events import LINE_KINDS
from topup_ledger.domain.money import pounds
from topup_ledger.io import arrow_files
from topup_ledger.io.finance_files import write_finance_files
from topup_ledger.storage.runs import run_payments, school_names
from topup_ledger.storage.store import EventStore
from topup_ledger.storage.streams import PAYMENTS_STREAM


def run_kind(sequence: int) -> str:
    return "main" if sequence == 1 else "supplementary"


def file_stem(prefix: str, run: ev.PaymentRunRecorded) -> str:
    kind = "" if run.sequence == 1 else "-supplementary"
    return f"{prefix}-{run.run_id}{kind}"


def school_row(run: ev.PaymentRunRecorded, payment: ev.SchoolPaid,
               names: Mapping[str, str]) -> dict[str, Any]:
    totals = dict.fromkeys(LINE_KINDS, 0)
    for line in payment.lines:
        totals[line.kind] += line.amount
    total = sum(totals.values())
    return {
        "run_id": run.run_id, "run_kind": run_kind(run.sequence), "period": run.period,
        "school_urn": payment.school, "school_name": names.get(payment.school, ""),
        "regular_pence": totals["regular"], "arrears_pence": totals["arrears"],
        "clawback_pence": totals["clawback"], "protection_pence": totals["protection"],
        "cushion_pence": totals["cushion"], "total_pence": total, "total_gbp": pounds(total),
        "seal": run.seal,
    }


def line_rows(run: ev.PaymentRunRecorded, payment: ev.SchoolPaid) -> Iterator[dict[str, Any]]:
    for line in payment.lines:
        yield {
            "run_id": run.run_id, "run_kind": run_kind(run.sequence), "period": run.period,
            "school_urn": payment.school, "plan_ref": line.plan, "pupil_ref": line.pupil,
            "line_kind": line.kind, "for_period": line.for_period,
            "amount_pence": line.amount, "amount_gbp": pounds(line.amount),
            "basis": line.basis, "band_or_hours": line.band_or_hours, "days": line.days,
            "reason": line.reason, "caused_by": " ".join(line.caused_by),
        }


def write_run_files(run: ev.PaymentRunRecorded, paid: Iterable[ev.SchoolPaid],
                    names: Mapping[str, str], out: Path, *, safe: bool = True) -> list[Path]:
    """The run's files from its school payments, given in school order as the run recorded
    them. They are read once, so ``paid`` may be read from the ledger as the files are
    built: a national run's payments are never all in memory at once.

    ``safe``: the CSVs neutralise text a spreadsheet would run as a formula (a run recorded
    before they did, rebuilt, keeps the bytes it was written with)."""
    school_stem, line_stem = out / file_stem("payments", run), out / file_stem("payment-lines", run)
    with (arrow_files.written("payments", school_stem, safe=safe) as schools,
          arrow_files.written("payment-lines", line_stem, safe=safe) as lines):
        last = ""
        for payment in paid:
            if payment.school < last:
                raise ValueError(f"the payments of run {run.run_id} are not in school order "
                                 f"({payment.school} after {last})")
            last = payment.school
            schools.add(school_row(run, payment, names))
            for row in line_rows(run, payment):
                lines.add(row)
    return [*arrow_files.paths(school_stem), *arrow_files.paths(line_stem)]


def write_files_for_run(store: EventStore, run_id: str, out: Path) -> list[Path]:
    """Write a run's payment files from its recorded events alone (byte-identical later)."""
    found = [r for r in store.stream_recorded(PAYMENTS_STREAM)
             if isinstance(r.fact, ev.PaymentRunRecorded) and r.fact.run_id == run_id]
    if not found:
        raise RuleError("run", f"no payment run {run_id} in the ledger")
    run = found[0].fact
    assert isinstance(run, ev.PaymentRunRecorded)
    # runs recorded since events name their actor have formula-safe CSVs
    safe = found[0].recorded_by != "unknown"
    nets: list[tuple[str, int]] = []  # each school's net, noted as the files read them
    # the run's own payments, not the reversals a withdrawal appends to its stream
    noted = noting(run_payments(store, run_id, run.schools), nets)
    files = write_run_files(run, noted, school_names(store), out, safe=safe)
    return files + write_finance_files(store, run, nets, out)


def noting(paid: Iterable[ev.SchoolPaid], nets: list[tuple[str, int]]) -> Iterator[ev.SchoolPaid]:
    """``paid`` as it is read, each school's net noted in ``nets`` (the finance files'
    input: the payments are read once)."""
    for school, net, payment in ((p.school, sum(line.amount for line in p.lines), p)
                                 for p in paid):
        nets.append((school, net))
        yield payment
