"""Schools as payees (DESIGN §2 "How a council actually pays"; docs/finance.md).

A school is paid by its funding route: a journal to a maintained school's cost centre, an
accounts-payable payment to a supplier (an academy's trust, an independent or non-maintained
special school, a post-16 provider), or recoupment from the LA whose school it is. Who it is
paid through is a fact with an effective date (``SchoolPayeeSet``); the one in force on a
payment date is the latest effective on or before it (of two alike, the later recorded).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta

from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError

ROUTES = ev.ROUTES
JOURNAL_ROUTES = frozenset({"maintained"})
AP_ROUTES = frozenset({"academy", "independent", "non-maintained-special", "post16"})
RECOUPMENT_ROUTES = frozenset({"other-la"})

_LAESTAB = re.compile(r"\d{7}", re.ASCII)
_LA_CODE = re.compile(r"\d{3}", re.ASCII)
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,39}", re.ASCII)
MAX_NAME = 200


def file_of(route: str) -> str:
    """Which finance file pays a school on ``route``: journal, ap or recoupment."""
    if route in JOURNAL_ROUTES:
        return "journal"
    if route in AP_ROUTES:
        return "ap"
    return "recoupment"


def check_payee(fact: ev.SchoolPayeeSet) -> ev.SchoolPayeeSet:
    """Refuse a payee fact whose fields are not what the finance system can take."""
    if fact.route not in ROUTES:
        raise RuleError("route", f"{fact.route!r} is not one of {', '.join(ROUTES)}")
    if fact.laestab and not _LAESTAB.fullmatch(fact.laestab):
        raise RuleError("laestab", f"{fact.laestab!r} is not a LAESTAB (7 digits: the LA code "
                        "and the establishment number, e.g. 8732041)")
    if fact.la_code and not _LA_CODE.fullmatch(fact.la_code):
        raise RuleError("recoupment-la", f"{fact.la_code!r} is not an LA code (3 digits, e.g. 873)")
    for field, value in (("supplier", fact.supplier), ("cost-centre", fact.cost_centre),
                         ("trust-ref", fact.trust_ref)):
        if value and not _CODE.fullmatch(value):
            raise RuleError(field, f"{value!r} must be 1-40 letters, digits, '-', '_', '.' or '/'")
    if len(fact.trust) > MAX_NAME:
        raise RuleError("trust", f"is longer than {MAX_NAME} characters")
    return fact


def missing_for_route(payee: ev.SchoolPayeeSet | None) -> str | None:
    """What a school lacks to be paid by its route (None: nothing)."""
    if payee is None:
        return "no funding route (`topup school set URN --route ...`)"
    if payee.route in JOURNAL_ROUTES and not payee.cost_centre:
        return "route maintained but no cost centre (--cost-centre)"
    if payee.route in AP_ROUTES and not payee.supplier:
        return f"route {payee.route} but no supplier reference (--supplier)"
    if payee.route in RECOUPMENT_ROUTES and not payee.la_code:
        return "route other-la but no LA code to recoup from (--recoupment-la)"
    return None


def route_reference(payee: ev.SchoolPayeeSet) -> str:
    """The reference the school's route pays it by: cost centre, supplier or LA code."""
    if payee.route in JOURNAL_ROUTES:
        return payee.cost_centre
    if payee.route in AP_ROUTES:
        return payee.supplier
    return payee.la_code


def payee_on(facts: Sequence[ev.SchoolPayeeSet], day: date) -> ev.SchoolPayeeSet | None:
    """The payee in force on ``day`` of the facts given in ledger order: the latest
    effective on or before ``day`` (no effective date: from the start), ties to the later."""
    found: ev.SchoolPayeeSet | None = None
    for fact in facts:
        if fact.effective is not None and fact.effective > day:
            continue
        if found is None or (fact.effective or date.min) >= (found.effective or date.min):
            found = fact
    return found


def payees_by_school(facts: Iterable[ev.SchoolPayeeSet]) -> dict[str, list[ev.SchoolPayeeSet]]:
    by_school: dict[str, list[ev.SchoolPayeeSet]] = {}
    for fact in facts:
        by_school.setdefault(fact.school, []).append(fact)
    return by_school


def run_payee(school: ev.SchoolAdded, payee: ev.SchoolPayeeSet) -> ev.RunPayee:
    return ev.RunPayee(school.urn, school.name, school.setting, payee.route, payee.laestab,
                       payee.trust, payee.trust_ref, payee.supplier, payee.cost_centre,
                       payee.la_code)


def first_working_day(start: date) -> date:
    """The first Monday to Friday on or after ``start`` (bank holidays are not known: give
    ``--pay-on`` where the first is one)."""
    day = start
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def check_pay_on(day: date) -> date:
    if day.weekday() >= 5:
        raise RuleError("pay-on", f"{day} is a {day.strftime('%A')}: payments go on a working "
                        "day, Monday to Friday")
    return day


# The finance mapping: the defaults an LA changes to match its own system (README "Paying
# through the finance system").

# Every field each finance file can carry, in the default order, with its default header.
JOURNAL_FIELDS: tuple[tuple[str, str], ...] = (
    ("date", "date"), ("cost_centre", "cost_centre"), ("subjective", "subjective"),
    ("cfr_code", "cfr_code"), ("budget_line", "budget_line"), ("amount", "amount"),
    ("description", "description"), ("school_urn", "school_urn"),
    ("school_name", "school_name"), ("laestab", "laestab"), ("period", "period"),
    ("period_start", "period_start"), ("period_end", "period_end"), ("run_id", "run_id"),
    ("run_date", "run_date"),
    ("net", "net"), ("recovered", "recovered"),
)
AP_FIELDS: tuple[tuple[str, str], ...] = (
    ("supplier", "supplier_ref"), ("payee", "payee"), ("reference", "payment_reference"),
    ("amount", "amount"), ("payment_date", "payment_date"), ("remittance", "remittance"),
    ("subjective", "subjective"), ("budget_line", "budget_line"), ("route", "route"),
    ("school_urn", "school_urn"), ("school_name", "school_name"), ("laestab", "laestab"),
    ("trust_ref", "trust_ref"), ("period", "period"), ("period_start", "period_start"),
    ("period_end", "period_end"), ("run_id", "run_id"), ("run_date", "run_date"),
    ("net", "net"), ("recovered", "recovered"),
)
RECOUPMENT_FIELDS: tuple[tuple[str, str], ...] = (
    ("la_code", "la_code"), ("school_urn", "school_urn"), ("school_name", "school_name"),
    ("laestab", "laestab"), ("amount", "amount"), ("payment_date", "payment_date"),
    ("budget_line", "budget_line"), ("description", "description"), ("period", "period"),
    ("period_start", "period_start"), ("period_end", "period_end"), ("run_id", "run_id"),
    ("run_date", "run_date"),
    ("net", "net"), ("recovered", "recovered"),
)
FILE_FIELDS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "journal": JOURNAL_FIELDS, "ap": AP_FIELDS, "recoupment": RECOUPMENT_FIELDS}

# The section 251 budget return's high-needs top-up lines (check against the year's own).
DEFAULT_BUDGET_LINES: tuple[tuple[str, str], ...] = (
    ("maintained", "1.2.1"), ("academy", "1.2.2"), ("post16", "1.2.2"),
    ("independent", "1.2.3"), ("non-maintained-special", "1.2.3"), ("other-la", "1.2.1"),
)

DEFAULT_MAPPING = ev.FinanceMapping(
    subjective="TOPUP", cfr_code="I03", date_format="%d/%m/%Y",
    budget_lines=DEFAULT_BUDGET_LINES, journal=JOURNAL_FIELDS, ap=AP_FIELDS,
    recoupment=RECOUPMENT_FIELDS)


def budget_line(mapping: ev.FinanceMapping, route: str, setting: str) -> str:
    """The budget-return line of a route and setting: "route/setting" if the mapping names
    it, else the route's, else empty."""
    lines = dict(mapping.budget_lines)
    return lines.get(f"{route}/{setting}", lines.get(route, ""))


def check_mapping(mapping: ev.FinanceMapping, where: str = "mapping") -> ev.FinanceMapping:
    """Refuse a mapping the files cannot be written by, naming what is wrong."""
    for name, value in (("subjective", mapping.subjective), ("cfr_code", mapping.cfr_code)):
        if not _CODE.fullmatch(value):
            raise RuleError(f"{where}: {name}", f"{value!r} must be 1-40 letters, digits, "
                            "'-', '_', '.' or '/'")
    try:
        shown = date(2025, 9, 1).strftime(mapping.date_format)
    except ValueError as error:
        raise RuleError(f"{where}: date_format", f"{mapping.date_format!r}: {error}") from None
    if "1" not in shown or "%" in shown.replace("%%", ""):
        raise RuleError(f"{where}: date_format", f"{mapping.date_format!r} does not show the "
                        "day (use strftime codes such as %d/%m/%Y or %Y-%m-%d)")
    for key, line in mapping.budget_lines:
        route = key.split("/", 1)[0]
        if route not in ROUTES:
            raise RuleError(f"{where}: budget_lines", f"{key!r}: {route!r} is not one of "
                            + ", ".join(ROUTES))
        if "/" in key and key.split("/", 1)[1] not in ev.SETTINGS:
            raise RuleError(f"{where}: budget_lines", f"{key!r}: not a setting of "
                            + ", ".join(ev.SETTINGS))
        if not line.strip():
            raise RuleError(f"{where}: budget_lines", f"{key!r} has no line")
    for file, columns in (("journal", mapping.journal), ("ap", mapping.ap),
                          ("recoupment", mapping.recoupment)):
        fields = dict(FILE_FIELDS[file])
        if not columns:
            raise RuleError(f"{where}: [{file}.columns]", "names no column")
        if "amount" not in {f for f, _ in columns}:
            raise RuleError(f"{where}: [{file}.columns]", "must include amount")
        headers = [h for _, h in columns]
        for field, header in columns:
            if field not in fields:
                raise RuleError(f"{where}: [{file}.columns]", f"{field!r} is not a field of the "
                                f"{file} file (its fields: {', '.join(fields)})")
            if not header.strip():
                raise RuleError(f"{where}: [{file}.columns]", f"{field!r} has an empty header")
            if headers.count(header) > 1:
                raise RuleError(f"{where}: [{file}.columns]", f"header {header!r} is used twice")
    return mapping


def split_by_route(finance: ev.RunFinance, nets: Iterable[tuple[str, int]]
                   ) -> dict[str, tuple[int, int]]:
    """What a run sends by route: schools paid and pence, the recoveries applied (cash)."""
    from topup_ledger.domain.recoveries import cash

    routes = {p.school: p.route for p in finance.payees}
    recoveries = {r.school: r for r in finance.recoveries}
    split: dict[str, tuple[int, int]] = {}
    for school, net in nets:
        recovery = recoveries.get(school)
        pence = net if recovery is None else cash(recovery)
        if pence:
            schools, total = split.get(routes[school], (0, 0))
            split[routes[school]] = (schools + 1, total + pence)
    return {route: split[route] for route in ROUTES if route in split}


def payment_reference(run_id: str, urn: str) -> str:
    """The AP payment reference of a school's payment in a run, unique per school and run:
    the remittance quotes it back."""
    return f"TOPUP-{run_id}-{urn}"
