"""The phased transfer from hours to bands, as a schedule (docs/rules.md §13): the plans
still on hours on a day, by the LA's transfer deadlines.

An existing plan moves to a band at its annual review, and every plan by the LA's final
deadline. Each plan still on hours on the day looked at is placed under the first deadline
on or after its next annual review (the next anniversary of its issue date, on or after
that day); a plan whose next review falls after the final deadline is placed under the final
deadline, to move before its review; one looked at after the final deadline is overdue. A
plan whose transfer is already recorded for a later day, or that ceases on or before its
deadline, needs no more and is listed as such, left out of the deadline's count.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.money import pounds, round_half_up
from topup_ledger.services.listing import every_plan
from topup_ledger.services.recording import Ledger

AT_REVIEW, BEFORE_REVIEW, OVERDUE, CEASES = (
    "at its annual review", "before its annual review", "overdue", "ceases first")
MOVES = "moves to a band from"  # a transfer already recorded for a later day


def anniversary(issued: date, year: int) -> date:
    """The issue date's anniversary in ``year`` (28 February for a plan issued on the 29th)."""
    try:
        return issued.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def next_review(issued: date, on: date) -> date:
    """The first anniversary of the issue date on or after ``on`` (after the issue itself)."""
    review = anniversary(issued, on.year)
    if review < on or review <= issued:
        review = anniversary(issued, max(on.year, issued.year) + 1)
    return review


def schedule(ledger: Ledger, deadlines: list[date], on: date,
             school: str | None = None) -> list[dict[str, Any]]:
    """A row for each plan on hours on ``on`` (in deadline, school and plan order), then one
    total row per deadline (plans to move by it, their annual amount on hours)."""
    if not deadlines:
        raise RuleError("deadline", "give the LA's transfer deadlines (--deadline DATE, one or more)")
    deadlines = sorted(set(deadlines))
    terms = ledger.terms()
    if school is not None and school not in terms.schools:
        raise RuleError("school", f"school {school} is not in the ledger")
    rows = []
    for plan in every_plan(ledger):
        state = plan.state_on(on)
        if state is None or state.basis != "hours" or (school and state.school != school):
            continue
        review = next_review(plan.start, on)
        if on > deadlines[-1]:
            deadline, status = deadlines[-1], OVERDUE
        else:
            deadline = next((d for d in deadlines if d >= review), deadlines[-1])
            status = AT_REVIEW if review <= deadline else BEFORE_REVIEW
        ceased = plan.ceased_from
        moves = next((segment.start for segment in plan.segments
                      if segment.start > on and segment.state.basis == "band"), None)
        if moves is not None:
            status = f"{MOVES} {moves.isoformat()}"
        elif ceased is not None and ceased <= deadline + timedelta(days=1):
            status = CEASES
        try:
            annual: int | None = round_half_up(terms.annual_amount(state, on).base)
        except MissingTerms:
            annual = None
        rows.append({"level": "plan", "deadline": deadline.isoformat(), "status": status,
                     "plan_ref": plan.ref, "pupil_ref": state.pupil, "school_urn": state.school,
                     "setting": terms.setting_of(state.school), "issued_on": plan.start.isoformat(),
                     "hours": str(state.hours), "next_review": review.isoformat(),
                     "ceased_from": ceased.isoformat() if ceased else "", "plans": 1,
                     "annual_pence": annual or 0, "annual_gbp": pounds(annual or 0),
                     "note": "" if annual is not None else "not priced on that day"})
    rows.sort(key=lambda r: (r["deadline"], r["school_urn"], r["plan_ref"]))
    totals = []
    for deadline in deadlines:
        due = [r for r in rows if r["deadline"] == deadline.isoformat() and r["status"] != CEASES
               and not r["status"].startswith(MOVES)]
        pence = sum(r["annual_pence"] for r in due)
        totals.append({"level": "deadline", "deadline": deadline.isoformat(), "status": "",
                       "plan_ref": "", "pupil_ref": "", "school_urn": "", "setting": "",
                       "issued_on": "", "hours": "", "next_review": "", "ceased_from": "",
                       "plans": len(due), "annual_pence": pence, "annual_gbp": pounds(pence),
                       "note": ""})
    return rows + totals
