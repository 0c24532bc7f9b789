"""What a remittance advice carries beside the figures: who pays (the LA's name, address,
contact and how to query a figure), who is paid (the school, or the trust for an academy,
its LAESTAB, route and supplier number), each run's payment date and reference.

Each field is shown when the ledger holds it and left out cleanly when it does not: the LA
details come from ``la.details_set``, the payee from ``school.payee_set`` and a run's
payment date from its ``payment.run_finance`` (issue 22).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from topup_ledger.domain import events as ev
from topup_ledger.statements.model import Statement
from topup_ledger.statements.source import LedgerView


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


ROUTE_WORDS = {"academy": "paid to the academy trust",
               "maintained": "paid to the school's budget (maintained school)",
               "independent": "paid to the independent school's proprietor",
               "non-maintained-special": "paid to the non-maintained special school",
               "post16": "paid to the post-16 provider",
               "other-la": "recouped from the school's own local authority"}


def remittance_for(view: LedgerView, urn: str, run_ids: list[str]) -> Remittance:
    """The remittance details as the view knows them; each field empty when not recorded."""
    found = Remittance(paid_on={r: view.paid_on[r] for r in run_ids if r in view.paid_on})
    la = view.la_details
    if isinstance(la, ev.LADetailsSet):
        found.la_name, found.la_address = la.name, list(la.address)
        found.la_contact, found.la_query_how = la.contact, la.query_how
    payee = view.payees.get(urn)
    if payee is not None:
        found.laestab, found.payee, found.supplier = payee.laestab, payee.trust, payee.supplier
        found.route = ROUTE_WORDS.get(payee.route, payee.route)
    return found


def remittance_of(statement: Statement) -> Remittance:
    found = getattr(statement, "remittance", None)
    return found if isinstance(found, Remittance) else Remittance()
