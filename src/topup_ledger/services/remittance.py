"""Remittance (issue 23): what the bank or AP system reports as paid, imported as facts,
and matched against what the ledger released (``topup reconcile paid-vs-remitted``).

A remittance CSV has a column for the payee (a payee or supplier reference, or the school's
URN), the run or payment reference, the amount and the date paid; an LA's own export names
them its way, given as a mapping (``payee=Supplier No``). Each line is a fact in a stream
named by its content and its occurrence in the file, so importing the same file twice
records nothing twice, while two identical lines in one file (a payment made twice) are
both kept.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.payees import payment_reference
from topup_ledger.domain.recoveries import cash
from topup_ledger.domain.remittance import remitted_state
from topup_ledger.io.import_csv import (
    FileRefused,
    date_cell,
    normalise,
    pounds_cell,
    read_table,
    required,
)
from topup_ledger.services.payees import recorded_finance
from topup_ledger.services.recording import Ledger, check_text
from topup_ledger.storage.releases import RELEASED, run_statuses
from topup_ledger.storage.runs import run_payments
from topup_ledger.storage.store import Recorded

FIELDS = ("payee", "reference", "amount", "paid_on")
# The names a column may have in a remittance export, each field's own name first.
ALIASES = {
    "payee": ("payee", "supplier", "supplier_reference", "supplier_ref", "payee_reference", "urn"),
    "reference": ("reference", "run", "run_id", "payment_reference", "payment_ref"),
    "amount": ("amount", "amount_paid", "paid", "value"),
    "paid_on": ("paid_on", "date_paid", "payment_date", "date"),
}


def remittance_stream(line: ev.RemittanceLine, occurrence: int) -> str:
    key = f"{line.payee}\x1f{line.reference}\x1f{line.amount}\x1f{line.paid_on}\x1f{occurrence}"
    return "remittance:" + hashlib.sha256(key.encode()).hexdigest()[:32]


def columns_of(headers: list[str], mapping: Mapping[str, str], name: str) -> dict[str, str]:
    """Which column of the file holds each field: the mapping's, else a known name."""
    found = {}
    for wanted in FIELDS:
        if wanted in mapping:
            column = normalise(mapping[wanted])
            if column not in headers:
                raise FileRefused(f"{name}, line 1: the mapping names column {mapping[wanted]!r} "
                                  f"for {wanted}, but the file has no such column")
        else:
            column = next((a for a in ALIASES[wanted] if a in headers), "")
            if not column:
                raise FileRefused(f"{name}, line 1: no column for {wanted} (one of "
                                  f"{', '.join(ALIASES[wanted])}, or map it: --map {wanted}=COLUMN)")
        found[wanted] = column
    return found


@dataclass
class Imported:
    recorded: int = 0
    already: int = 0
    lines: int = 0


def import_remittance(ledger: Ledger, path: Path, mapping: Mapping[str, str] | None = None
                      ) -> Imported:
    """Record each line of a remittance file, or none: a line that cannot be read refuses
    the file, naming its line and field. A line recorded before is not recorded again."""
    table = read_table(path)
    unknown = set(mapping or {}) - set(FIELDS)
    if unknown:
        raise RuleError("map", f"{', '.join(sorted(unknown))}: not a remittance field "
                        f"(the fields are {', '.join(FIELDS)})")
    columns = columns_of(table.headers, mapping or {}, table.path)
    seen: dict[tuple[Any, ...], int] = defaultdict(int)
    facts = []
    for row in table.rows:
        try:
            amount = pounds_cell(row, columns["amount"])
            paid_on = date_cell(row, columns["paid_on"])
            if amount is None:
                raise RuleError(columns["amount"], "is empty")
            if paid_on is None:
                raise RuleError(columns["paid_on"], "is empty")
            line = ev.RemittanceLine(required(row, columns["payee"]),
                                     required(row, columns["reference"]), amount, paid_on,
                                     f"{Path(table.path).name}:{row.line}")
            check_text(line)
        except RuleError as error:
            raise RuleError(error.field, f"{table.path}, line {row.line}, column "
                            f"{table.original.get(error.field, error.field)!r}: "
                            f"{error.problem}") from None
        key = (line.payee, line.reference, line.amount, line.paid_on)
        seen[key] += 1
        facts.append((remittance_stream(line, seen[key]), line))
    found = Imported(lines=len(facts))
    store, now, batch = ledger.store, ledger.clock(), []
    for stream, line in facts:
        if store.version(stream):
            found.already += 1
        else:
            batch.append(Recorded(stream, 1, now, line))
    store.append(batch)
    found.recorded = len(batch)
    return found


@dataclass
class RemittedRow:
    run_id: str
    payee: str
    released: int | None
    remitted: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return remitted_state(self.released, self.remitted)

    def as_row(self) -> dict[str, Any]:
        paid = sum(self.remitted)
        released = self.released or 0
        return {"run_id": self.run_id, "payee": self.payee, "released_pence": released,
                "remitted_pence": paid, "difference_pence": paid - released,
                "payments": len(self.remitted), "state": self.state,
                "sources": "; ".join(self.sources)}


RUN_ID = re.compile(r"\d{4}-\d{2}-[a-z0-9][a-z0-9_-]{0,31}-r[1-9][0-9]*")


def check_run_id(run_id: str) -> str:
    """A run id as the ledger makes them (it names files): e.g. 2025-26-autumn-r1."""
    if not RUN_ID.fullmatch(run_id):
        raise RuleError("run", f"{run_id!r} is not a run id such as 2025-26-autumn-r1")
    return run_id


def paid_vs_remitted(ledger: Ledger, run_id: str | None = None) -> list[RemittedRow]:
    """Per released run and school, released against remitted; and every payment reported
    against a run or payee the ledger did not release to. Payees are schools' URNs."""
    if run_id is not None:
        check_run_id(run_id)
    store = ledger.store
    rows: dict[tuple[str, str], RemittedRow] = {}
    order = []
    references: dict[str, tuple[str, str]] = {}  # a payment reference or supplier → (run, URN)
    for status in run_statuses(store):
        if status.state != RELEASED or (run_id and status.run_id != run_id):
            continue
        order.append(status.run_id)
        finance = recorded_finance(store, status.run_id)
        sent = cash_sent(finance)
        for paid in run_payments(store, status.run_id):
            key = (status.run_id, paid.school)
            row = rows.setdefault(key, RemittedRow(status.run_id, paid.school, 0))
            row.released = (row.released or 0) + sum(line.amount for line in paid.lines)
        for school, pence in sent.items():
            rows[(status.run_id, school)].released = pence
        references.update(payee_references(finance))
    for _, recorded in store.recorded(types=(ev.RemittanceLine.TYPE,)):
        line = recorded.fact
        assert isinstance(line, ev.RemittanceLine)
        key = references.get(line.reference) or references.get(f"{line.reference}\t{line.payee}")
        reference, payee = key or (line.reference, line.payee)
        if run_id and reference != run_id:
            continue
        row = rows.get((reference, payee))
        if row is None:
            row = rows[(reference, payee)] = RemittedRow(reference, payee, None)
        row.remitted.append(line.amount)
        row.sources.append(line.source)
    rank = {run: i for i, run in enumerate(order)}
    return sorted(rows.values(), key=lambda r: (rank.get(r.run_id, len(rank)), r.run_id, r.payee))


def cash_sent(finance: ev.RunFinance | None) -> dict[str, int]:
    """Where a run's finance files send a school other than its net: nothing for a negative
    net (a recovery carried forward), less what it still owed (a recovery netted): what the
    bank pays, and so what a remittance is matched against (issue 22). ``finance`` is the
    run's finance record (None: the run was made without finance)."""
    return {} if finance is None else {r.school: cash(r) for r in finance.recoveries}


def payee_references(finance: ev.RunFinance | None) -> dict[str, tuple[str, str]]:
    """How an AP remittance may name a school's payment in a run: by its payment reference
    (``TOPUP-<run>-<URN>``, unique per school and run), or by the run and the school's
    supplier reference where no other school of the run shares it (a trust's academies may)."""
    if finance is None:
        return {}
    run_id = finance.run_id
    found = {payment_reference(run_id, p.school): (run_id, p.school) for p in finance.payees}
    suppliers = Counter(p.supplier for p in finance.payees if p.supplier)
    found.update({f"{run_id}\t{p.supplier}": (run_id, p.school) for p in finance.payees
                  if p.supplier and suppliers[p.supplier] == 1})
    return found


def write_paid_vs_remitted(rows: list[RemittedRow], out: Path, run_id: str | None) -> list[Path]:
    from topup_ledger.io import arrow_files

    out.mkdir(parents=True, exist_ok=True)
    stem = out / ("paid-vs-remitted" + (f"-{run_id}" if run_id else ""))
    return arrow_files.write("paid-vs-remitted", (r.as_row() for r in rows), stem)


# The demo's remittance, as an AP system might export it: its own column names, mapped.
DEMO_COLUMNS = ("Supplier Ref", "Payment Reference", "Amount Paid", "Payment Date")
DEMO_MAPPING = {"payee": "Supplier Ref", "reference": "Payment Reference",
                "amount": "Amount Paid", "paid_on": "Payment Date"}


def write_demo_remittance(ledger: Ledger, paid_on: Mapping[str, Any], path: Path) -> Path:
    """A remittance for every released run (``paid_on``: run id → the date paid) with two
    exceptions an LA meets: the first school of the last run paid £100.00 short, and the
    first school of the first run paid twice. Payments of nothing or less are not made."""
    import csv

    runs = [s.run_id for s in run_statuses(ledger.store)
            if s.state == RELEASED and s.run_id in paid_on]
    rows: list[list[str]] = []
    for n, run_id in enumerate(runs):
        first = True
        sent = cash_sent(recorded_finance(ledger.store, run_id))
        for paid in run_payments(ledger.store, run_id):
            amount = sent.get(paid.school, sum(line.amount for line in paid.lines))
            if amount <= 0:
                continue
            day = paid_on[run_id].strftime("%d/%m/%Y")
            short = 10000 if first and n == len(runs) - 1 and amount > 10000 else 0
            row = [paid.school, run_id, f"{(amount - short) / 100:.2f}", day]
            rows.append(row)
            if first and n == 0:
                rows.append(row)  # the AP run paid it twice
            first = False
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(DEMO_COLUMNS)
        writer.writerows(rows)
    return path
