"""Schools as payees and the LA's finance mapping: recording them, and what a payment run
records of them (``payment.run_finance``) so its finance files come from the run alone.

Finance is on in a ledger once any school's payee or a finance mapping is recorded: from
then on a run refuses to pay a school without a route and the reference its route needs,
and writes the finance files. A ledger that records neither pays as it always did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import parse_year
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.payees import (
    DEFAULT_MAPPING,
    check_mapping,
    check_pay_on,
    check_payee,
    first_working_day,
    missing_for_route,
    payee_on,
    payees_by_school,
    route_reference,
    run_payee,
)
from topup_ledger.domain.recoveries import run_recoveries
from topup_ledger.domain.reference import Reference
from topup_ledger.services.recording import Ledger, check_text, check_urn
from topup_ledger.services.recoveries import owed_by_school
from topup_ledger.storage.store import FactStore, Recorded
from topup_ledger.storage.streams import FINANCE_MAPPING_STREAM, finance_stream, payee_stream

# The optional columns of schools.csv that say who a school is paid through (the options of
# `topup school set`; `recoupment_la` is --la-code, `payee_from` is --from).
PAYEE_COLUMNS = ("route", "laestab", "trust", "trust_ref", "supplier", "cost_centre",
                 "recoupment_la", "payee_from")


def set_payee(ledger: Ledger, urn: str, *, route: str | None = None, laestab: str | None = None,
              trust: str | None = None, trust_ref: str | None = None,
              supplier: str | None = None, cost_centre: str | None = None,
              la_code: str | None = None, effective: date | None = None,
              reason: str = "") -> str:
    """Record who school ``urn`` is paid through from ``effective`` (None: from the start).
    Fields not given keep the value in force on that date; the fact records them all."""
    ledger.terms().setting_of(check_urn(urn, "urn"))
    stream = payee_stream(urn)
    history = ledger.store.stream(stream)
    facts = [r.fact for r in history if isinstance(r.fact, ev.SchoolPayeeSet)]
    base = payee_on(facts, effective or date.min)
    if route is None and base is None:
        raise RuleError("route", f"school {urn} has no funding route yet: give --route "
                        f"({', '.join(ev.ROUTES)})")

    def given(value: str | None, before: str) -> str:
        return before if value is None else value.strip()

    fact = check_payee(ev.SchoolPayeeSet(
        urn, given(route, base.route if base else ""), effective,
        given(laestab, base.laestab if base else ""), given(trust, base.trust if base else ""),
        given(trust_ref, base.trust_ref if base else ""),
        given(supplier, base.supplier if base else ""),
        given(cost_centre, base.cost_centre if base else ""),
        given(la_code, base.la_code if base else ""), reason.strip()))
    check_text(fact)
    for earlier in history:  # the same command again: nothing new
        if earlier.fact == fact:
            ledger.repeated = True
            return earlier.id
    now = ledger.clock()
    batch = [Recorded(stream, len(history) + 1, now, fact)]
    ledger.store.append(batch)
    return batch[0].id


def set_mapping(ledger: Ledger, mapping: ev.FinanceMapping, source: str = "",
                reason: str = "") -> str:
    """Record the LA's finance mapping, from now on (the runs made before keep theirs)."""
    fact = ev.FinanceMappingSet(check_mapping(mapping, source or "mapping"), source, reason)
    check_text(fact)
    history = ledger.store.stream(FINANCE_MAPPING_STREAM)
    if history and isinstance(history[-1].fact, ev.FinanceMappingSet) \
            and history[-1].fact.mapping == mapping:
        ledger.repeated = True
        return history[-1].id
    batch = [Recorded(FINANCE_MAPPING_STREAM, len(history) + 1, ledger.clock(), fact)]
    ledger.store.append(batch)
    return batch[0].id


def payee_facts(store: FactStore, upto: int | None = None) -> list[ev.SchoolPayeeSet]:
    return [r.fact for _, r in store.recorded(upto=upto, types=(ev.SchoolPayeeSet.TYPE,))
            if isinstance(r.fact, ev.SchoolPayeeSet)]


def mapping_facts(store: FactStore, upto: int | None = None) -> list[ev.FinanceMappingSet]:
    return [r.fact for _, r in store.recorded(upto=upto, types=(ev.FinanceMappingSet.TYPE,))
            if isinstance(r.fact, ev.FinanceMappingSet)]


def mapping_in_force(store: FactStore, upto: int | None = None) -> ev.FinanceMapping:
    found = mapping_facts(store, upto)
    return found[-1].mapping if found else DEFAULT_MAPPING


def payees_on(store: FactStore, day: date, upto: int | None = None
              ) -> dict[str, ev.SchoolPayeeSet]:
    """Every school's payee in force on ``day``, as known at ``upto``."""
    found = {}
    for urn, facts in payees_by_school(payee_facts(store, upto)).items():
        payee = payee_on(facts, day)
        if payee is not None:
            found[urn] = payee
    return found


def period_dates(reference: Reference, period_id: str) -> tuple[date, date]:
    start = parse_year(period_id.split("/", 1)[0], "period")
    around = date(start, 9, 1)
    calendar = reference.calendar(around, date(start + 1, 8, 31))
    period = calendar.period(period_id)
    return period.start, period.end


def run_finance(store: FactStore, reference: Reference, upto: int, run_id: str,
                period_id: str, schools: Sequence[tuple[str, int]], run_date: date,
                pay_on: date | None = None) -> ev.RunFinance | None:
    """What the run records for its finance files, or None where finance is not in use.

    Refuses (``MissingTerms``, the whole list) a run that would pay a school with no route,
    or without the reference its route needs, on the payment date."""
    payee_list = payee_facts(store, upto)
    mappings = mapping_facts(store, upto)
    if not payee_list and not mappings:
        if pay_on is not None:
            raise RuleError("pay-on", "no school has a funding route or payee yet, so the run "
                            "writes no finance files to date: `topup school set URN --route ...` "
                            "first")
        return None
    start, end = period_dates(reference, period_id)
    # by default the period's first working day, or the run's own day if that has passed
    # (a supplementary run, or a run made late): never a day already gone
    day = check_pay_on(pay_on) if pay_on is not None else first_working_day(max(start, run_date))
    by_school = payees_by_school(payee_list)
    schools_known = reference.terms.schools
    missing, payees = [], []
    for urn, pence in schools:
        payee = payee_on(by_school.get(urn, []), day)
        lacking = missing_for_route(payee)
        school = schools_known[urn]
        if lacking is not None:
            if pence:
                missing.append(f"school {urn} ({school.name}): {lacking}")
            continue
        assert payee is not None
        payees.append(run_payee(school, payee))
    if missing:
        raise MissingTerms(missing)
    mapping = mappings[-1].mapping if mappings else DEFAULT_MAPPING
    # never a negative payment: a negative net is carried forward, and netted later
    recoveries = run_recoveries(schools, owed_by_school(store, upto))
    return ev.RunFinance(run_id, day, start, end, run_date, mapping, tuple(payees), recoveries)


def finance_records(store: FactStore, reference: Reference, upto: int, run_id: str,
                    period_id: str, schools: Sequence[tuple[str, int]], now: datetime,
                    pay_on: date | None = None) -> list[Recorded]:
    """The run's ``payment.run_finance``, to append with the run (none where finance is not
    in use); refuses as ``run_finance`` does."""
    finance = run_finance(store, reference, upto, run_id, period_id, schools, now.date(), pay_on)
    return [] if finance is None else [Recorded(finance_stream(run_id), 1, now, finance)]


def recorded_finance(store: FactStore, run_id: str) -> ev.RunFinance | None:
    """The finance record of run ``run_id`` (None: the run was made without finance)."""
    for recorded in store.stream(finance_stream(run_id)):
        if isinstance(recorded.fact, ev.RunFinance):
            return recorded.fact
    return None


def check_payee_row(ledger: Ledger, urn: str, cells: Mapping[str, str | None]) -> None:
    """Refuse a row's payee columns before anything of the row is staged: the school and its
    payee are recorded together or not at all."""
    given = {k: v for k, v in cells.items() if v and k != "payee_from"}
    if not given:
        return
    route = (given.get("route") or "").lower()
    if not route and not ledger.store.stream(payee_stream(urn)):
        raise RuleError("route", f"school {urn} has no funding route yet: give one "
                        f"({', '.join(ev.ROUTES)})")
    fact = ev.SchoolPayeeSet(urn, route or ev.ROUTES[0], None, given.get("laestab", ""),
                             given.get("trust", ""), given.get("trust_ref", ""),
                             given.get("supplier", ""), given.get("cost_centre", ""),
                             given.get("recoupment_la", ""))
    check_text(fact)
    check_payee(fact)


def payee_from_row(ledger: Ledger, urn: str, cells: Mapping[str, str | None],
                   effective: date | None) -> list[str]:
    """A schools.csv row's payee columns recorded as `topup school set` would (blank cells:
    unchanged); the new fact's id, or none if the row gives none or it is known already."""
    given = {k: v for k, v in cells.items() if v and k != "payee_from"}
    if not given:
        return []
    route = given.get("route")
    ledger.repeated = False  # adding the school again (the row's first part) said so
    event = set_payee(ledger, urn, route=route.lower() if route else None,
                      laestab=given.get("laestab"), trust=given.get("trust"),
                      trust_ref=given.get("trust_ref"), supplier=given.get("supplier"),
                      cost_centre=given.get("cost_centre"), la_code=given.get("recoupment_la"),
                      effective=effective)
    if ledger.repeated:
        ledger.repeated = False
        return []
    return [event]


def payee_columns(payee: ev.SchoolPayeeSet | None) -> dict[str, str]:
    """A school's payee as the listings show it (empty: none recorded)."""
    return {"route": payee.route if payee else "",
            "laestab": payee.laestab if payee else "",
            "paid_by": route_reference(payee) if payee else "",
            "trust": payee.trust if payee else ""}
