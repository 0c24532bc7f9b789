"""A run's finance files (issue 22): what the council's finance system loads, built only from
the run's recorded events (its record, its school payments and its ``payment.run_finance``),
so that they are rebuilt byte for byte later and ``topup verify`` checks them.

- a journal for maintained schools, to each school's cost centre;
- an accounts-payable payment file for the supplier routes (academy trusts, independent and
  non-maintained special schools, post-16 providers), one payment reference per school and run;
- a recoupment list for other LAs' schools;

each as CSV (UTF-8 with a byte-order mark, the mapping's headers and order, formula-safe
cells) and Parquet (every field of its spec in ``projections/``, pounds as decimal128(12,2)),
and one ``.xlsx`` workbook with a sheet per file and a totals sheet. Every file's total, and
their sum, ties to the run's; a supplementary run's files hold only its differences.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from topup_ledger.domain import events as ev
from topup_ledger.domain.money import pounds
from topup_ledger.domain.payees import budget_line, file_of, payment_reference
from topup_ledger.domain.recoveries import cash
from topup_ledger.io.arrow_files import BOM, SPEC_DIR
from topup_ledger.io.private import private_temp, write_private
from topup_ledger.io.text_safety import neutralised
from topup_ledger.storage.store import EventStore
from topup_ledger.storage.streams import finance_stream

FILES = ("journal", "ap", "recoupment")
TYPES = {"string": pa.string(), "decimal128(12,2)": pa.decimal128(12, 2)}
# A workbook's zip entries and properties carry this time, not the moment it was written:
# its bytes must be the same each time the run's files are built.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@cache
def spec(file: str) -> dict[str, Any]:
    return json.loads((SPEC_DIR / f"finance-{file}.json").read_text(encoding="utf-8"))


def arrow_schema(file: str) -> pa.Schema:
    return pa.schema([pa.field(c["name"], TYPES[c["type"]], nullable=False,
                               metadata={"description": c["description"]})
                      for c in spec(file)["columns"]],
                     metadata={"projection": f"finance-{file}", "title": spec(file)["title"]})


def recorded_finance(store: EventStore, run_id: str) -> ev.RunFinance | None:
    """The finance record of run ``run_id`` (None: the run was made without finance)."""
    for recorded in store.stream(finance_stream(run_id)):
        if isinstance(recorded.fact, ev.RunFinance):
            return recorded.fact
    return None


def stem(prefix: str, run: ev.PaymentRunRecorded) -> str:
    return f"{prefix}-{run.run_id}" + ("" if run.sequence == 1 else "-supplementary")


def nets_of(paid: Iterable[ev.SchoolPaid]) -> Iterator[tuple[str, int]]:
    """Each school's net in a run: the sum of its lines."""
    for payment in paid:
        yield payment.school, sum(line.amount for line in payment.lines)


def rows_by_file(run: ev.PaymentRunRecorded, finance: ev.RunFinance,
                 nets: Iterable[tuple[str, int]]) -> dict[str, list[dict[str, Any]]]:
    """Each finance file's rows (every field of its spec), one per school paid a non-zero
    amount, in school order."""
    mapping = finance.mapping
    shown = mapping.date_format
    payees = {p.school: p for p in finance.payees}
    kind = "" if run.sequence == 1 else " (supplementary: differences only)"
    common = {
        "period": run.period, "period_start": finance.period_start.strftime(shown),
        "period_end": finance.period_end.strftime(shown), "run_id": run.run_id,
        "run_date": finance.run_date.strftime(shown),
    }
    about = (f"SEND top-up {run.period} ({common['period_start']} to {common['period_end']}), "
             f"run {run.run_id}{kind}")
    recoveries = {r.school: r for r in finance.recoveries}
    rows: dict[str, list[dict[str, Any]]] = {file: [] for file in FILES}
    for urn, net in nets:
        recovery = recoveries.get(urn)
        if recovery is not None and recovery.net != net:
            raise ValueError(f"run {run.run_id}: school {urn}'s recovery is for a net of "
                             f"{recovery.net}p, its lines sum to {net}p")
        total = net if recovery is None else cash(recovery)
        if total == 0:
            continue
        payee = payees.get(urn)
        if payee is None:
            raise ValueError(f"run {run.run_id} pays school {urn} but records no payee for it")
        amount = Decimal(pounds(total))
        school = {"school_urn": payee.school, "school_name": payee.name,
                  "laestab": payee.laestab, "budget_line":
                      budget_line(mapping, payee.route, payee.setting),
                  "net": Decimal(pounds(net)),
                  "recovered": Decimal(pounds(recovery.recovered if recovery else 0))}
        file = file_of(payee.route)
        day = finance.pay_on.strftime(shown)
        if file == "journal":
            row = {"date": day, "cost_centre": payee.cost_centre,
                   "subjective": mapping.subjective, "cfr_code": mapping.cfr_code,
                   "amount": amount, "description": f"{about}, URN {payee.school}"}
        elif file == "ap":
            row = {"supplier": payee.supplier,
                   "payee": payee.trust if payee.route == "academy" and payee.trust else payee.name,
                   "reference": payment_reference(run.run_id, payee.school), "amount": amount,
                   "payment_date": day,
                   "remittance": f"{about}: {payee.name} (URN {payee.school})",
                   "subjective": mapping.subjective, "route": payee.route,
                   "trust_ref": payee.trust_ref}
        else:
            row = {"la_code": payee.la_code, "amount": amount, "payment_date": day,
                   "description": f"{about}: recoupment for {payee.name} (URN {payee.school})"}
        rows[file].append({**common, **school, **row})
    return rows


def csv_bytes(columns: tuple[tuple[str, str], ...], rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([neutralised(header) for _, header in columns])
    for row in rows:
        writer.writerow([str(row[field]) if isinstance(row[field], Decimal)
                         else neutralised(row[field]) for field, _ in columns])
    return BOM + text.getvalue().encode("utf-8")


def write_parquet(file: str, rows: list[dict[str, Any]], path: Path) -> None:
    schema = arrow_schema(file)
    table = pa.Table.from_arrays(
        [pa.array([row[f.name] for row in rows], type=f.type) for f in schema], schema=schema)
    with private_temp(path) as temp:
        pq.write_table(table, str(temp), compression="zstd")


def workbook_bytes(run: ev.PaymentRunRecorded, finance: ev.RunFinance,
                   rows: Mapping[str, list[dict[str, Any]]]) -> bytes:
    """One sheet per file (the mapping's headers), the run's recoveries and a totals sheet;
    the same bytes every time for the same run. Written a row at a time (openpyxl's
    write-only book): a national run's sheets hold tens of thousands of schools."""
    from openpyxl import Workbook  # only when a run writes finance files
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.xml.functions import tostring

    book = Workbook(write_only=True)

    def add(sheet: Any, values: Iterable[Any]) -> None:
        cells = []
        for value in values:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # text is text: never run as a formula
            elif isinstance(value, Decimal):
                cell.number_format = "0.00"
            cells.append(cell)
        sheet.append(cells)

    for file in FILES:
        sheet = book.create_sheet(file)
        columns = getattr(finance.mapping, file)
        add(sheet, [header for _, header in columns])
        for row in rows[file]:
            add(sheet, [row[field] for field, _ in columns])
    names = {p.school: (p.name, p.route) for p in finance.payees}
    recovered = book.create_sheet("recoveries")
    add(recovered, ["school_urn", "school_name", "route", "net", "carried_forward", "recovered",
                    "amount"])
    for r in finance.recoveries:
        name, route = names.get(r.school, ("", ""))
        add(recovered, [r.school, name, route, *(Decimal(pounds(p)) for p in (
            r.net, r.carried, r.recovered, cash(r)))])
    totals = book.create_sheet("totals")
    add(totals, ["file", "rows", "total"])
    for file in FILES:
        add(totals, [file, len(rows[file]), sum((r["amount"] for r in rows[file]), Decimal(0))])
    carried = sum(r.carried for r in finance.recoveries)
    taken = sum(r.recovered for r in finance.recoveries)
    add(totals, ["paid in the files", sum(len(r) for r in rows.values()),
                 Decimal(pounds(run.total + carried - taken))])
    # how the cash ties to the run's total (its payment file): net + carried - recovered
    add(totals, [f"run {run.run_id} net", run.schools, Decimal(pounds(run.total))])
    add(totals, ["carried forward (paid nothing)", sum(1 for r in finance.recoveries if r.carried),
                 Decimal(pounds(carried))])
    add(totals, ["recovered from earlier runs", sum(1 for r in finance.recoveries if r.recovered),
                 Decimal(pounds(-taken))])
    add(totals, ["payment date", finance.pay_on.strftime(finance.mapping.date_format)])
    when = datetime(finance.run_date.year, finance.run_date.month, finance.run_date.day)
    book.properties.creator = "topup-ledger"
    book.properties.created = when
    written = io.BytesIO()
    book.save(written)
    book.properties.modified = when  # saving set it to now: the stable one is written below
    core = tostring(book.properties.to_tree())
    stable = io.BytesIO()
    with (zipfile.ZipFile(written) as source,
          zipfile.ZipFile(stable, "w", zipfile.ZIP_DEFLATED) as target):
        for info in source.infolist():
            data = core if info.filename == "docProps/core.xml" else source.read(info)
            entry = zipfile.ZipInfo(info.filename, FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, data)
    return stable.getvalue()


def write_finance_files(store: EventStore, run: ev.PaymentRunRecorded,
                        nets: Iterable[tuple[str, int]], out: Path) -> list[Path]:
    """The run's finance files in ``out`` from each school's net (``nets_of`` its recorded
    payments, in school order); none for a run made without finance."""
    finance = recorded_finance(store, run.run_id)
    if finance is None:
        return []
    rows = rows_by_file(run, finance, nets)
    paid_total = sum(row["amount"] for file in FILES for row in rows[file])
    expected = run.total + sum(r.carried - r.recovered for r in finance.recoveries)
    if paid_total != Decimal(pounds(expected)):
        raise ValueError(f"run {run.run_id}: the finance files total £{paid_total}, the run "
                         f"£{pounds(run.total)} net with its recoveries £{pounds(expected)}")
    written = []
    for file in FILES:
        name = stem(f"finance-{file}", run)
        columns = getattr(finance.mapping, file)
        written.append(write_private(out / f"{name}.csv", csv_bytes(columns, rows[file])))
        write_parquet(file, rows[file], out / f"{name}.parquet")
        written.append(out / f"{name}.parquet")
    written.append(write_private(out / f"{stem('finance', run)}.xlsx",
                                 workbook_bytes(run, finance, rows)))
    return written
