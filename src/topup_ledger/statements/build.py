"""Build a school's statement for a period from a LedgerView, as plain data.

- The payment: the recorded lines of the runs for the period that paid the school, totalled
  by kind; the year to date over the academic year's runs up to this period.
- One row per child: the child's lines summed (pupil and plan references only, never a name).
- What changed since the school's last statement (the previous run that paid it, by ledger
  position): each plan or reference fact recorded since then that bears on the school, in
  plain words, with the lines of this statement that name it (their ``caused_by``).
- A bar per period: what the school was paid in each period's runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import financial_year_of, parse_year
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.money import pounds_for_people, round_half_up
from topup_ledger.domain.plan import Plan, PlanState, RecordedFact
from topup_ledger.domain.rules import Terms
from topup_ledger.statements.model import (
    Bar,
    Change,
    ChildRow,
    LineRow,
    MoneyMoved,
    RunRef,
    Statement,
    Totals,
)
from topup_ledger.statements.remittance import remittance_for
from topup_ledger.statements.source import LedgerView, Run
from topup_ledger.statements.workings import (
    plan_at,
    protection_words,
    spell_ended_words,
    terms_at,
    workings,
)

CHART_PERIODS = 12
REASON_WORDS = {"annual-review": "annual review", "interim-review": "interim review",
                "tribunal": "tribunal decision", "other": "other"}
ONE_DAY = timedelta(days=1)


def day_words(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def basis_words(state: PlanState | None) -> str:
    if state is None:
        return "not funded"
    return f"band {state.band}" if state.basis == "band" else f"{state.hours} hours a week"


def run_ref(run: Run, paid: ev.SchoolPaid | None,
            recovery: ev.RunRecovery | None = None) -> RunRef:
    return RunRef(run.run_id, run.period, run.sequence, run.seal, run.recorded_at, run.position,
                  sum(line.amount for line in paid.lines) if paid else 0,
                  run.prepared_by, run.released_by, run.state,
                  recovery.carried if recovery else 0, recovery.recovered if recovery else 0)


def build_statement(view: LedgerView, urn: str, period_id: str) -> Statement:
    """The statement of school ``urn`` for ``period_id`` as the view knows it. Refuses an
    unknown school or period (RuleError naming it)."""
    school = view.school(urn)
    period = view.period(period_id)
    payments = view.payments_of(urn)
    mine = [(run, paid) for run, paid in payments if run.period == period.id]
    paid_runs = {run.run_id for run, _ in mine}
    period_runs = [run for run in view.runs if run.period == period.id]
    others = [run_ref(run, None) for run in period_runs if run.run_id not in paid_runs]

    totals = Totals()
    lines: list[LineRow] = []
    for run, paid in mine:
        for line in paid.lines:
            totals.add(line)
            lines.append(LineRow(run.run_id, line.plan, line.pupil, line.kind, line.for_period,
                                 line.amount, line.basis, line.band_or_hours, line.days,
                                 line.reason, tuple(line.caused_by), line.component))

    calendar = view.calendar_for(period.id, years_back=1)
    known_periods = {p.id: p for p in calendar.periods}
    fy = financial_year_of(period.start)
    year_to_date, ytd_runs = Totals(), []
    fy_to_date, fy_runs = Totals(), []
    for run, paid in payments:
        p = known_periods.get(run.period)
        if p is None or p.start > period.start:
            continue
        # the academic year's periods, and the periods that start in the financial year
        for wanted, so_far, run_ids in ((p.year == period.year, year_to_date, ytd_runs),
                                        (financial_year_of(p.start) == fy, fy_to_date, fy_runs)):
            if wanted:
                run_ids.append(run.run_id)
                for line in paid.lines:
                    so_far.add(line)

    if mine:
        end, anchor = mine[-1][0].position, mine[0][0].position
    else:
        end = period_runs[-1].position if period_runs else view.position
        anchor = end
    before = [run for run, _ in payments if run.position < anchor]
    since = run_ref(before[-1], view.paid[before[-1].run_id][urn]) if before else None
    changes = find_changes(view, urn, school, period.id, since.position if since else 0, end,
                           lines)
    cushion = sum(line.amount for line in lines if not line.plan)
    rows = children(lines, period.id)
    if mine:
        priced_at = mine[-1][0].position  # what the period's last run that paid it knew
        for row in rows:
            if row.days:
                row.workings = workings(view, urn, period, row, priced_at)
                row.days = sum(w.days for w in row.workings if w.component == "base") or row.days
                plan = plan_at(view, row.plan, priced_at)
                row.protection_note = protection_words(
                    row, spell_ended_words(plan, period.end) if plan else "")
    return Statement(
        school=urn, school_name=school.name, setting=school.setting, period=period.id,
        period_start=period.start, period_end=period.end, academic_year=period.year,
        period_school_days=period.weight_total if period.school_dates is not None else None,
        position=view.position, known_at=view.recorded_at, as_of=None,
        runs=[run_ref(run, paid, view.recoveries.get(run.run_id, {}).get(urn))
              for run, paid in mine], other_runs=others,
        totals=totals, year_to_date=year_to_date, year_to_date_runs=ytd_runs,
        financial_year=fy, financial_year_to_date=fy_to_date, financial_year_to_date_runs=fy_runs,
        children=rows, cushion=cushion, lines=lines,
        changes=changes, changes_since=since,
        remittance=remittance_for(view, urn, [run.run_id for run, _ in mine]),
        chart=chart(payments, [p for p in calendar.periods if p.start <= period.start], period.id),
    )


def children(lines: list[LineRow], period_id: str) -> list[ChildRow]:
    by_plan: dict[str, list[LineRow]] = defaultdict(list)
    for line in lines:
        if line.plan:
            by_plan[line.plan].append(line)
    rows = []
    for plan, found in sorted(by_plan.items()):
        # this period's regular and protection lines (a protected plan on a band worth
        # nothing has only the latter)
        current = [x for x in found if x.for_period == period_id and x.kind in ("regular", "protection")]
        shown = ([x for x in current if x.component == "base"] or current or found)[-1]
        this_period = sum(x.amount for x in found if x.for_period == period_id
                          and x.component != "protection")
        protection = sum(x.amount for x in found if x.for_period == period_id
                         and x.component == "protection")
        earlier = sum(x.amount for x in found if x.for_period != period_id)
        note = "" if current else f"adjustment for {', '.join(dict.fromkeys(x.for_period for x in found))}"
        rows.append(ChildRow(shown.pupil, plan, shown.basis, shown.band_or_hours,
                             shown.days if current else 0, this_period, protection, earlier, note))
    return rows


def chart(payments: list[tuple[Run, ev.SchoolPaid]], periods: list, current: str) -> list[Bar]:
    paid: dict[str, int] = defaultdict(int)
    for run, payment in payments:
        paid[run.period] += sum(line.amount for line in payment.lines)
    shown = periods[-CHART_PERIODS:]
    first = next((i for i, p in enumerate(shown) if p.id in paid), None)
    if first is None:
        return []
    return [Bar(p.id, paid.get(p.id, 0), p.id == current) for p in shown[first:]]


def find_changes(view: LedgerView, urn: str, school: ev.SchoolAdded, period_id: str,
                 start: int, end: int, lines: list[LineRow]) -> list[Change]:
    """Facts recorded after ``start`` up to ``end`` that bear on the school's money."""
    cited: dict[str, list[LineRow]] = defaultdict(list)
    for line in lines:
        for event_id in line.caused_by:
            cited[event_id].append(line)
    terms = terms_at(view, end)
    changes: list[Change] = []
    plans = view.plans_naming.get(urn, set()) | {line.plan for line in lines if line.plan}
    for ref in sorted(plans):
        facts = view.plan_facts.get(ref)
        if not facts:
            continue
        for i, record in enumerate(facts):
            if not start < record.position <= end:
                continue
            fys = line_years(view, cited.get(record.id, []))
            change = plan_change(view, terms, urn, facts[:i], facts[: i + 1], record,
                                 record.id in cited, fys)
            if change is not None:
                change.recorded_by = view.recorded_by_of.get(record.id, "unknown")
                changes.append(change)
    changes.extend(reference_changes(view, urn, school, period_id, start, end, cited, lines))
    changes.sort(key=lambda c: (c.position, c.id))
    count_each_line_once(changes, lines)
    return changes


def count_each_line_once(changes: list[Change], lines: list[LineRow]) -> None:
    """Each change lists the lines that name it; a line naming several listed changes counts
    its money under the latest of them only, and the others say where it is counted."""
    by_id = {c.id: c for c in changes}
    for change in changes:
        change.lines = []
    for line in lines:
        named = [by_id[e] for e in dict.fromkeys(line.caused_by) if e in by_id]
        if not named:
            continue
        owner = max(named, key=lambda c: (c.position, c.id))
        for change in named:
            change.lines.append(MoneyMoved(
                line.run_id, line.plan, line.kind, line.for_period, line.amount,
                len(line.caused_by) > 1,
                "" if change is owner else f"“{owner.title}” ({owner.id})", line.component))


def line_years(view: LedgerView, lines: Iterable[LineRow]) -> list[str]:
    """The financial years of the periods the lines pay for, in order."""
    years = []
    for period_id in dict.fromkeys(line.for_period for line in lines):
        try:
            years.append(financial_year_of(view.period(period_id).start))
        except RuleError:
            continue
    return sorted(set(years))


def _plan(facts: list[RecordedFact]) -> Plan | None:
    try:
        return Plan(facts) if facts else None
    except RuleError:
        return None


def _at(plan: Plan | None, days: Iterable[date], urn: str) -> bool:
    if plan is None:
        return False
    for day in days:
        state = plan.state_on(day)
        if state is not None and state.school == urn:
            return True
    return False


def plan_change(view: LedgerView, terms: Terms, urn: str, before_facts: list[RecordedFact],
                after_facts: list[RecordedFact], record: RecordedFact, cited: bool,
                fys: list[str]) -> Change | None:
    fact = record.fact
    before, after = _plan(before_facts), _plan(after_facts)
    if after is None:
        return None
    if isinstance(fact, ev.Corrected):
        old = before.corrected.get(fact.corrects) if before else None
        new = after.corrected.get(fact.corrects)
        dates = {getattr(f, "effective", None) for f in (old, new)} - {None}
        effective = getattr(new, "effective", None)
    else:
        effective = fact.effective  # type: ignore[attr-defined]
        dates = {effective}
    days = {d for x in dates for d in (x, x - ONE_DAY)}
    if not (cited or _at(before, days, urn) or _at(after, days, urn)):
        return None
    pupil = after.issued.pupil
    state_before = before.state_on(effective) if before and effective else None
    state_after = after.state_on(effective) if effective else None
    common = dict(id=record.id, reason="", effective=day_words(effective) if effective else "",
                  effective_date=effective, recorded_at=view.recorded_at_of.get(record.id),
                  position=record.position, plan=after.ref, pupil=pupil)
    name = lambda u: f"{view.schools[u].name} (URN {u})" if u in view.schools else f"school {u}"  # noqa: E731
    change = _protection_change(terms, record, state_before, state_after, fys, common)
    if change is not None:
        return change
    # protection ends only if it protected the day before (a plan ceased from its first
    # day never had a protected day to end)
    ends = ended_protection_words(
        fact, state_before if before and effective and _protected(
            before.state_on(effective - ONE_DAY), effective - ONE_DAY) else None,
        state_after, effective)
    if isinstance(fact, ev.PlanIssued):
        kind_words = "EHCP" if fact.kind == "ehcp" else "non-statutory top-up"
        at = state_after.school if state_after else fact.school
        where = "" if at == urn else f" at {name(at)}"
        return Change(kind="new-plan", title="New plan",
                      what=f"New {kind_words} plan for pupil {pupil} on {basis_words(state_after)}{where}",
                      **common)
    if isinstance(fact, ev.PlacementMoved):
        old = state_before.school if state_before else ""
        if fact.school == urn:
            return Change(kind="moved-in", title="Moved in",
                          what=f"Pupil {pupil} moved to this school from {name(old)}{ends}",
                          **common)
        if old == urn:
            return Change(kind="moved-out", title="Moved out",
                          what=f"Pupil {pupil} moved from this school to {name(fact.school)}"
                               f"{ends}", **common)
        return Change(kind="move", title="Move",
                      what=f"Pupil {pupil} moved from {name(old)} to {name(fact.school)}{ends}",
                      **common)
    if isinstance(fact, ev.BandChanged):
        common["reason"] = REASON_WORDS.get(fact.reason, fact.reason)
        return Change(kind="band-change", title="Band change",
                      what=f"Band changed from {basis_words(state_before)} to band {fact.band}"
                           f"{ends}",
                      before=annual_words(terms, state_before, effective, fys),
                      after=annual_words(terms, state_after, effective, fys), **common)
    if isinstance(fact, ev.HoursChanged):
        common["reason"] = fact.reason
        return Change(kind="hours-change", title="Hours change",
                      what=f"Hours changed from {basis_words(state_before)} to {fact.hours} hours a week",
                      before=annual_words(terms, state_before, effective, fys),
                      after=annual_words(terms, state_after, effective, fys), **common)
    if isinstance(fact, ev.TransferredToBand):
        common["reason"] = "move to banded funding"
        protect = (f"; protected until {day_words(fact.protect_until)}: the school is paid the "
                   "larger of the two until then") if fact.protect_until else ""
        return Change(kind="transfer", title="Transfer from hours to a band",
                      what=f"Moved from {basis_words(state_before)} to band {fact.band}{protect}",
                      before=f"{pounds_for_people(fact.prior_annual)} a year on "
                             f"{basis_words(state_before)} (the prior hours-based amount)",
                      after=annual_words(terms, state_after, effective, fys, protection=False),
                      **common)
    if isinstance(fact, ev.PlanCeased):
        common["reason"] = fact.reason
        return Change(kind="ceased", title="Plan ceased",
                      what=f"Plan ceases from {day_words(fact.effective)}: funded up to "
                           f"{day_words(fact.effective - ONE_DAY)}{ends}", **common)
    if isinstance(fact, ev.Corrected):
        common["reason"] = fact.note
        target = next((r for r in after_facts if r.id == fact.corrects), None)
        target_words = _fact_words(target.fact) if target else fact.corrects
        recorded = view.recorded_at_of.get(fact.corrects)
        when = f", recorded {day_words(recorded.date())}" if recorded else ""
        return Change(kind="correction", title="Correction of an earlier record",
                      what=f"The {target_words} ({fact.corrects}{when}) was wrong: "
                           + _differences(old, new),
                      **common)
    return None


def _fact_words(fact: ev.Fact) -> str:
    return {ev.PlanIssued: "plan's issue", ev.HoursChanged: "hours change",
            ev.TransferredToBand: "transfer to a band", ev.BandChanged: "band change",
            ev.PlacementMoved: "move", ev.PlanCeased: "cessation",
            ev.ProtectionGranted: "grant of protection",
            ev.ProtectionExtended: "extension of protection",
            ev.ProtectionEnded: "early end of protection"}.get(type(fact), fact.TYPE)


# Why a change that is not about protection ends it (docs/rules.md §10), as history says.
ENDS_PROTECTION = {ev.BandChanged: "a new assessment sets a new level",
                   ev.PlacementMoved: "another school, another budget",
                   ev.PlanCeased: "the plan ceased"}


def ended_protection_words(fact: ev.Fact, before: PlanState | None, after: PlanState | None,
                           effective: date | None) -> str:
    """". This ends the protection ..." where a band change, a move or ceasing ends the
    plan's protection on its own (no protection fact of its own says so), else ""."""
    why = ENDS_PROTECTION.get(type(fact))
    if why is None or effective is None or before is None or before.prior_hours is None:
        return ""
    if not before.protected_on(effective):
        return ""
    if after is not None and after.prior_hours is not None and after.protected_on(effective):
        return ""
    assert before.protect_until is not None
    return (f". This ends the plan's protection (granted to {day_words(before.protect_until)}): "
            f"its last protected day is {day_words(effective - ONE_DAY)}, as {why}")


def _protected(state: PlanState | None, day: date) -> bool:
    return state is not None and state.prior_hours is not None and state.protected_on(day)


def _protection_change(terms: Terms, record: RecordedFact, before: PlanState | None,
                       after: PlanState | None, fys: list[str], common: dict) -> Change | None:
    """A grant, extension or early end of protection as a change card (issue 24)."""
    fact = record.fact
    if not isinstance(fact, ev.ProtectionGranted | ev.ProtectionExtended | ev.ProtectionEnded):
        return None
    day = fact.effective
    common = {**common, "reason": fact.reason}
    compare = dict(before=annual_words(terms, before, day, fys),
                   after=annual_words(terms, after, day, fys))
    if isinstance(fact, ev.ProtectionGranted):
        return Change(kind="protection-granted", title="Protection granted",
                      what=f"Protection from {day_words(day)} to {day_words(fact.until)}: the "
                           "school is paid the larger of the prior hours-based amount and the "
                           "band amount until then", **compare, **common)
    if isinstance(fact, ev.ProtectionExtended):
        return Change(kind="protection-extended", title="Protection extended",
                      what=f"Protection that ran to {day_words(day - ONE_DAY)} goes on to "
                           f"{day_words(fact.until)}", **compare, **common)
    was = f" (granted to {day_words(before.protect_until)})" if before and before.protect_until else ""
    return Change(kind="protection-ended", title="Protection ended early",
                  what=f"Protection{was} ends early: its last protected day is "
                       f"{day_words(day - ONE_DAY)}; from {day_words(day)} the band amount alone "
                       "is paid", **compare, **common)


def _differences(old: ev.Fact | None, new: ev.Fact | None) -> str:
    parts = []
    for name, words in (("band", "band"), ("hours", "hours a week"), ("effective", "from"),
                        ("school", "school")):
        was, now = getattr(old, name, None), getattr(new, name, None)
        if was != now:
            show = (lambda v: day_words(v) if isinstance(v, date) else str(v))  # noqa: E731
            if name == "hours":
                parts.append(f"it said {show(was)} hours a week; it should have said {show(now)}")
            elif name == "effective":
                parts.append(f"it said from {show(was)}; it should have said from {show(now)}")
            else:
                parts.append(f"it said {words} {show(was)}; it should have said {words} {show(now)}")
    return "; ".join(parts) or "no change to what it said"


def annual_words(terms: Terms, state: PlanState | None, day: date | None, fys: list[str],
                 protection: bool = True) -> str:
    """The state's annual amount from ``day`` in words, at the rates and tariffs that priced
    the lines the change moved (as the statement's last run knew them): the financial year
    of ``day``, and each later year its lines pay for, each named."""
    if state is None or day is None:
        return ""
    found = []
    for year in sorted({financial_year_of(day), *fys}):
        first = max(day, date(parse_year(year), 4, 1))
        if year < financial_year_of(day):
            continue
        try:
            annual = terms.annual_amount(state, first)
        except (MissingTerms, RuleError):  # not priced yet: say what it is, without an amount
            continue
        amount = annual.base + (annual.protection if protection else 0)
        what = "tariff" if state.basis == "band" else "hourly rate"
        found.append(f"{pounds_for_people(round_half_up(amount))} a year"
                     + (f" on {basis_words(state)}" if not found else "") + f" ({year} {what})")
    return "; ".join(found) or basis_words(state)


def reference_changes(view: LedgerView, urn: str, school: ev.SchoolAdded, period_id: str,
                      start: int, end: int, cited: dict[str, list[LineRow]],
                      lines: list[LineRow]) -> list[Change]:
    hours_here = any("hours" in line.basis for line in lines)
    years = {line.for_period: line_years(view, [line]) for line in lines}
    end_terms = terms_at(view, end)
    tariffs: dict[tuple[str, str | None], dict[str, int]] = {}
    rates: dict[str, ev.HourlyRateSet] = {}
    found = []
    for env in view.money_facts:
        if env.position > end:
            break
        fact = env.fact
        in_window = start < env.position
        change = None
        common = dict(id=env.id, recorded_at=env.recorded_at, position=env.position,
                      recorded_by=env.recorded_by)
        if isinstance(fact, ev.TariffSet):
            key = (fact.year, fact.setting)
            earlier = tariffs.get(key)
            applies = fact.setting in (None, school.setting)
            if in_window and (applies or env.id in cited):
                fy = parse_year(fact.year)
                whom = f" for {fact.setting} settings" if fact.setting else ""
                if earlier:
                    moved = [f"band {b} {pounds_for_people(earlier[b])} → {pounds_for_people(v)}"
                             if b in earlier else f"band {b} {pounds_for_people(v)} (new)"
                             for b, v in fact.bands if earlier.get(b) != v]
                    change = Change(kind="tariff-revision", title="Tariff revision",
                                    what=f"Band values for {fact.year}{whom} revised: "
                                         + ("; ".join(moved) or "no band value changed"),
                                    reason=fact.reason, effective=f"financial year {fact.year} "
                                    f"(from {day_words(date(fy, 4, 1))})",
                                    effective_date=date(fy, 4, 1), **common)
                else:
                    change = Change(kind="tariff", title="Tariff published",
                                    what=f"Band values for {fact.year}{whom}: " + "; ".join(
                                        f"band {b} {pounds_for_people(v)}" for b, v in fact.bands),
                                    reason=fact.reason, effective=f"financial year {fact.year} "
                                    f"(from {day_words(date(fy, 4, 1))})",
                                    effective_date=date(fy, 4, 1), **common)
            tariffs.setdefault(key, {}).update(dict(fact.bands))
        elif isinstance(fact, ev.HourlyRateSet):
            earlier_rate = rates.get(fact.year)
            if in_window and (hours_here or env.id in cited):
                fy = parse_year(fact.year)
                words = (f"{pounds_for_people(fact.hourly_rate)} an hour × {fact.weeks:g} weeks, "
                         f"less {pounds_for_people(fact.threshold)} met by mainstream schools")
                change = Change(kind="rate-revision" if earlier_rate else "rate",
                                title="Hourly rate revised" if earlier_rate else "Hourly rate set",
                                what=f"Hours-based terms for {fact.year}: {words}",
                                reason=fact.reason, effective=f"financial year {fact.year} "
                                f"(from {day_words(date(fy, 4, 1))})",
                                effective_date=date(fy, 4, 1), **common)
            rates[fact.year] = fact
        elif isinstance(fact, ev.CushionSet):
            if in_window and fact.school == urn:
                change = Change(kind="cushion", title="Transitional cushion",
                                what=f"{fact.share_percent}% of the school's net reduction from the "
                                     f"move to bands is paid as its own line, "
                                     f"{day_words(fact.effective)} to {day_words(fact.until)}",
                                reason=fact.reason, effective=day_words(fact.effective),
                                effective_date=fact.effective, **common)
        elif isinstance(fact, ev.ProtectionPolicySet) and in_window and any(
                line.component == "protection" for line in lines):
            words = {"frozen": "frozen: priced at the terms of the day before each plan's "
                               "transfer, whatever later years' hourly rates are",
                     "recomputed": "recomputed: priced at each protected day's financial-year "
                                   "hourly rate"}.get(fact.prior, fact.prior)
            change = Change(kind="protection-policy", title="Protection policy",
                            what=f"The LA's protection policy: the prior hours-based amount a "
                                 f"protected plan is paid is {words}; it applies to every "
                                 "protected day, earlier ones included",
                            reason=fact.reason, effective="every protected day",
                            effective_date=None, **common)
        elif isinstance(fact, ev.CalendarSet) and in_window and (
                fact.year == period_id.split("/", 1)[0] or env.id in cited):
            change = Change(kind="calendar", title="Payment calendar",
                            what=f"Payment periods for {fact.year}: "
                                 + ", ".join(p.id.split("/", 1)[1] for p in fact.periods),
                            reason=fact.reason,
                            effective=day_words(fact.periods[0].start) if fact.periods else "",
                            effective_date=fact.periods[0].start if fact.periods else None,
                            **common)
        if change is not None:
            if isinstance(fact, ev.TariffSet | ev.HourlyRateSet):
                change.priced = priced_words(fact, school, lines, years, end_terms)
            found.append(change)
    return found


def priced_words(fact: ev.TariffSet | ev.HourlyRateSet, school: ev.SchoolAdded,
                 lines: list[LineRow], years: dict[str, list[str]], terms: Terms) -> str:
    """The lines of this statement whose amounts come from the tariff's band values (band
    lines it names, for days in its year) or the hourly rate (lines on hours, and protection,
    whose prior is priced on hours): a tariff prices lines whether or not it caused them."""
    def prices(line: LineRow) -> bool:
        if fact.year not in years.get(line.for_period, ()):
            return False
        if isinstance(fact, ev.HourlyRateSet):
            rates = terms.rate_facts.get(fact.year, [])
            return bool(rates) and rates[-1][1] is fact and (
                line.basis == "hours" or line.component == "protection")
        named = {b for b in dict(fact.bands) if latest.get(b) is fact}
        return (line.basis == "band" and line.component == "base"
                and fact.setting in (None, school.setting)
                and any(b in named for b in line.band_or_hours.split("→")))
    # a band's value comes from the school's setting's tariff if it has one, else the tariff
    # for every setting, and from the latest of those recorded that names the band
    latest: dict[str, ev.TariffSet] = {}
    if isinstance(fact, ev.TariffSet):
        for key in ((fact.year, None), (fact.year, school.setting)):
            for _, tariff in terms.tariff_facts.get(key, ()):
                for band, _ in tariff.bands:
                    latest[band] = tariff
    found = [line for line in lines if prices(line)]
    if not found:
        return ""
    what = "band values" if isinstance(fact, ev.TariffSet) else "hourly rate"
    return (f"{len(found)} line{'s' if len(found) != 1 else ''} of this statement "
            f"({pounds_for_people(sum(x.amount for x in found))}) {'are' if len(found) != 1 else 'is'} "
            f"priced from these {what}")
