"""The demo LA's finance side (issue 22): who each school is paid through, imported as the
payee columns of a schools file, and the LA's finance mapping, from a TOML file the demo
writes beside its input; and the split of what its runs sent, by route.

Routes are given by the school's setting and its place in the list, never by the generator's
random draws (which would change every plan after them): about a third of the mainstream and
resourced schools are academies, in six trusts (the trust is the AP supplier); special
schools are maintained, academies, non-maintained special or another LA's; independent and
post-16 providers are paid as suppliers.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from topup_ledger.domain.money import pounds_for_people
from topup_ledger.domain.payees import ROUTES, split_by_route
from topup_ledger.io.finance_files import recorded_finance
from topup_ledger.io.finance_mapping import read_mapping
from topup_ledger.io.import_csv import read_table
from topup_ledger.services.generator import GeneratedLA
from topup_ledger.services.importer import Import
from topup_ledger.services.payees import PAYEE_COLUMNS, set_mapping
from topup_ledger.services.recording import Ledger

TRUSTS = ("Northgate Learning Trust", "Riverside Academies", "St Hild's Catholic Academy Trust",
          "Meadow Multi-Academy Trust", "Castle Schools Partnership", "Valley Learning Alliance")
OTHER_LA = "936"
MAPPING = """\
# The demo LA's finance mapping (`topup finance mapping set`): every key is optional.
subjective = "E1302"            # high-needs top-up
cfr_code = "I03"
date_format = "%d/%m/%Y"

[budget_lines]                  # section 251 lines, over the defaults
"maintained/special" = "1.2.1"

[journal.columns]               # field = header, in the order the ledger system loads them
date = "Journal Date"
cost_centre = "Cost Centre"
subjective = "Subjective"
cfr_code = "CFR"
budget_line = "S251 Line"
amount = "Amount"
description = "Description"
school_urn = "URN"

[ap.columns]
supplier = "Supplier Number"
payee = "Supplier Name"
reference = "Invoice Number"
payment_date = "Invoice Date"
amount = "Invoice Amount"
subjective = "Subjective"
budget_line = "S251 Line"
remittance = "Remittance Advice"
school_urn = "URN"
"""


def payee_row(n: int, school: dict[str, str]) -> dict[str, str]:
    """The payee columns of the ``n``th school of the demo (0-based)."""
    urn, setting, laestab = school["urn"], school["setting"], school.get("la_code") or ""
    row = dict.fromkeys(PAYEE_COLUMNS, "")
    row["laestab"] = laestab
    if setting in ("independent", "post16"):
        route = setting
    elif setting == "special":
        route = ("maintained", "academy", "non-maintained-special", "other-la")[n % 4]
    else:
        route = "academy" if n % 3 == 0 else "maintained"
    row["route"] = route
    if route == "maintained":
        row["cost_centre"] = f"CC{laestab[-4:] or urn}"
    elif route == "academy":
        trust = n % len(TRUSTS)
        row.update(trust=TRUSTS[trust], trust_ref=f"TR{5001 + trust}", supplier=f"S{90001 + trust}")
    elif route == "other-la":
        row.update(recoupment_la=OTHER_LA, laestab=f"{OTHER_LA}{laestab[-4:]}" if laestab else "")
    else:
        row["supplier"] = f"S{urn}"
    return row


def set_up_finance(ledger: Ledger, la: GeneratedLA, folder: Path) -> None:
    """Write ``folder``/finance/schools-payees.csv and finance.toml, import the one and
    record the other: every run from now on writes the finance files."""
    schools = [row for batch in la.batches for row in batch.rows["schools"]]
    out = folder / "finance"
    out.mkdir(parents=True, exist_ok=True)
    payees = out / "schools-payees.csv"
    with payees.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["urn", "name", "setting", "la_code", *PAYEE_COLUMNS])
        for n, school in enumerate(schools):
            row = payee_row(n, school)
            writer.writerow([school["urn"], school["name"], school["setting"],
                             school.get("la_code") or "", *(row[c] for c in PAYEE_COLUMNS)])
    job = Import(ledger)
    result = job.stage_table(read_table(payees), "schools")
    if result.rejected:
        first = result.rejects()[0]
        raise ValueError(f"{payees} line {first.line}, {first.field}: {first.reason}")
    job.commit()
    mapping = out / "finance.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    set_mapping(ledger, read_mapping(mapping), mapping.name, "the demo LA's finance system")
    # the head of every statement, as on a remittance advice (a drama-range phone number)
    ledger.set_la_details("Demoshire County Council", ("County Hall", "Demotown DM1 1AA"),
                          "SEN finance team, 01632 960000",
                          "Email sen.finance@demoshire.example within 30 days of the payment "
                          "date, quoting the payment reference.")


@dataclass
class RouteSplit:
    """What the runs sent through the finance system, by route: payments and pence."""

    by_route: dict[str, list[int]] = field(default_factory=dict)
    carried: int = 0  # recoveries carried forward (schools paid nothing)
    recovered: int = 0

    def add(self, ledger: Ledger, run_id: str, nets: list[tuple[str, int]]) -> None:
        finance = recorded_finance(ledger.store, run_id)
        if finance is None:
            return
        for route, (schools, pence) in split_by_route(finance, nets).items():
            total = self.by_route.setdefault(route, [0, 0])
            total[0] += schools
            total[1] += pence
        self.by_route = {r: self.by_route[r] for r in ROUTES if r in self.by_route}
        self.carried += sum(r.carried for r in finance.recoveries)
        self.recovered += sum(r.recovered for r in finance.recoveries)

    def lines(self) -> list[str]:
        if not self.by_route:
            return []
        sent = sum(pence for _, pence in self.by_route.values())
        return [f"sent through the finance system: {pounds_for_people(sent)} in "
                f"{sum(n for n, _ in self.by_route.values()):,} payments: " + ", ".join(
                    f"{route} {pounds_for_people(pence)} ({n:,})"
                    for route, (n, pence) in self.by_route.items()),
                f"  recoveries: {pounds_for_people(self.carried)} carried forward instead of "
                f"negative payments, {pounds_for_people(self.recovered)} recovered since, "
                f"{pounds_for_people(self.carried - self.recovered)} still owed "
                "(`topup recoveries`)"]
