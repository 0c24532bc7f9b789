"""What a remittance advice carries beside the figures: who pays (the LA's name, address,
contact and how to query a figure), who is paid (the school, or the trust for an academy,
its LAESTAB, route and supplier number), each run's payment date and reference.

Each field is shown when the ledger holds it and left out cleanly when it does not: the LA
details come from ``la.details_set``; the payee facts and a run's payment date are read by
name from whatever facts the ledger has recorded, so a ledger without them still renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from topup_ledger.statements.model import Statement


@dataclass
class Remittance:
    la_name: str = ""
    la_address: list[str] = field(default_factory=list)  # one line each
    la_contact: str = ""
    la_query_how: str = ""
    laestab: str = ""
    payee: str = ""  # the trust for an academy; the school otherwise
    route: str = ""  # how the money reaches the payee, in words
    supplier: str = ""  # the payee's supplier number in the LA's finance system
    paid_on: dict[str, date] = field(default_factory=dict)  # run id → payment date


def remittance_of(statement: Statement) -> Remittance:
    found = getattr(statement, "remittance", None)
    return found if isinstance(found, Remittance) else Remittance()
