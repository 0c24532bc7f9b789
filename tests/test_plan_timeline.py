"""A plan's life folded into a timeline of states (DESIGN §3; domain/plan.py).

Domain only: no store, no CLI.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.plan import Plan, PlanState, RecordedFact, Segment, check_hours

OAK, ELM = "100001", "100002"


def plan_of(*facts: ev.Fact) -> Plan:
    """A plan from its facts in recorded order; ids P1/1, P1/2, ... as the ledger gives."""
    return Plan([RecordedFact(f"P1/{n}", fact, n) for n, fact in enumerate(facts, start=1)])


def issued(band: str | None = "B", hours: Decimal | None = None, effective: date = date(2025, 9, 1),
           school: str = OAK) -> ev.PlanIssued:
    return ev.PlanIssued("P1", "pupil-1", school, effective, hours=hours, band=band)


def band_state(band: str, school: str = OAK, because: str = "P1/1") -> PlanState:
    return PlanState("pupil-1", school, "ehcp", "band", None, band, because=because)


def summary(plan: Plan) -> list[tuple[date, date | None, str, str | None, str]]:
    return [(s.start, s.end_exclusive, s.state.school, s.state.band_or_hours, s.state.because)
            for s in plan.segments]


def test_issue_band_change_move_cease_gives_the_segments() -> None:
    plan = plan_of(
        issued("B"),  # P1/1: band B at Oak from 1 Sep 2025
        ev.BandChanged("P1", date(2025, 11, 1), "C", "annual-review"),  # P1/2
        ev.PlacementMoved("P1", date(2026, 1, 1), ELM),  # P1/3
        ev.PlanCeased("P1", date(2026, 3, 1), "moved out of the LA"),  # P1/4
    )
    assert plan.segments == [
        Segment(date(2025, 9, 1), date(2025, 11, 1), band_state("B")),
        Segment(date(2025, 11, 1), date(2026, 1, 1), band_state("C", because="P1/2")),
        Segment(date(2026, 1, 1), date(2026, 3, 1), band_state("C", ELM, because="P1/3")),
    ]
    assert plan.start == date(2025, 9, 1)
    assert plan.ceased_from == date(2026, 3, 1)
    assert plan.schools() == {OAK, ELM}
    # Day by day at each boundary.
    assert plan.state_on(date(2025, 8, 31)) is None  # before issue
    assert plan.state_on(date(2025, 9, 1)) == band_state("B")
    assert plan.state_on(date(2025, 10, 31)) == band_state("B")
    assert plan.state_on(date(2025, 11, 1)) == band_state("C", because="P1/2")
    assert plan.state_on(date(2025, 12, 31)) == band_state("C", because="P1/2")
    assert plan.state_on(date(2026, 1, 1)) == band_state("C", ELM, because="P1/3")
    # Ceases with effect from 1 March: funded to 28 Feb, nothing from 1 March.
    assert plan.state_on(date(2026, 2, 28)) == band_state("C", ELM, because="P1/3")
    assert plan.state_on(date(2026, 3, 1)) is None
    assert plan.state_on(date(2027, 1, 1)) is None


def test_cease_from_1_march_in_a_leap_year_funds_to_29_february() -> None:
    plan = plan_of(issued("B", effective=date(2027, 9, 1)),
                   ev.PlanCeased("P1", date(2028, 3, 1), "plan ceased at review"))
    assert plan.segments[-1].end_exclusive == date(2028, 3, 1)
    assert plan.state_on(date(2028, 2, 29)) is not None
    assert plan.state_on(date(2028, 3, 1)) is None


def test_an_open_plan_runs_on_without_end() -> None:
    plan = plan_of(issued("B"))
    assert summary(plan) == [(date(2025, 9, 1), None, OAK, "B", "P1/1")]
    assert plan.ceased_from is None
    assert plan.state_on(date(2099, 12, 31)) == band_state("B")


def test_a_plan_ceased_on_the_day_it_starts_is_never_funded() -> None:
    plan = plan_of(issued("B"), ev.PlanCeased("P1", date(2025, 9, 1), "issued in error"))
    assert plan.segments == []
    assert plan.state_on(date(2025, 9, 1)) is None


def test_backdated_facts_apply_in_effective_date_order() -> None:
    # The move (1 Jan) was recorded before the band change (1 Nov) that the review backdated.
    plan = plan_of(
        issued("B"),
        ev.PlacementMoved("P1", date(2026, 1, 1), ELM),  # P1/2
        ev.BandChanged("P1", date(2025, 11, 1), "D", "annual-review"),  # P1/3
    )
    assert summary(plan) == [
        (date(2025, 9, 1), date(2025, 11, 1), OAK, "B", "P1/1"),
        (date(2025, 11, 1), date(2026, 1, 1), OAK, "D", "P1/3"),
        (date(2026, 1, 1), None, ELM, "D", "P1/2"),  # the move keeps the band it follows
    ]


def test_facts_on_the_same_day_apply_in_recorded_order() -> None:
    plan = plan_of(
        issued("B"),
        ev.BandChanged("P1", date(2025, 11, 1), "C", "annual-review"),  # P1/2
        ev.BandChanged("P1", date(2025, 11, 1), "D", "tribunal"),  # P1/3: the later word
    )
    assert summary(plan) == [
        (date(2025, 9, 1), date(2025, 11, 1), OAK, "B", "P1/1"),
        (date(2025, 11, 1), None, OAK, "D", "P1/3"),
    ]


def test_hours_then_transfer_to_band_keeps_prior_hours_until_a_review_ends_protection() -> None:
    plan = plan_of(
        issued(None, hours=Decimal("20")),
        ev.HoursChanged("P1", date(2025, 10, 1), Decimal("25"), "interim review"),  # P1/2
        ev.TransferredToBand("P1", date(2026, 1, 1), "C", 522_450, date(2026, 8, 31)),  # P1/3
        ev.BandChanged("P1", date(2026, 4, 1), "D", "annual-review"),  # P1/4
    )
    assert summary(plan) == [
        (date(2025, 9, 1), date(2025, 10, 1), OAK, "20h", "P1/1"),
        (date(2025, 10, 1), date(2026, 1, 1), OAK, "25h", "P1/2"),
        (date(2026, 1, 1), date(2026, 4, 1), OAK, "C", "P1/3"),
        (date(2026, 4, 1), None, OAK, "D", "P1/4"),
    ]
    on_band = plan.state_on(date(2026, 3, 31))
    assert on_band is not None
    assert (on_band.basis, on_band.prior_annual, on_band.prior_hours) == ("band", 522_450, Decimal(25))
    assert on_band.protect_until == date(2026, 8, 31)
    assert on_band.protected_on(date(2026, 3, 31))
    reviewed = plan.state_on(date(2026, 4, 1))  # a new assessment ends protection
    assert reviewed is not None
    # the prior hours stay known, for protection granted anew (docs/rules.md §10)
    assert (reviewed.prior_hours, reviewed.protect_until) == (Decimal(25), None)
    assert not reviewed.protected_on(date(2026, 4, 1))
    unreviewed = plan_of(*[r.fact for r in plan.facts[:3]]).state_on(date(2026, 4, 1))
    assert unreviewed is not None
    assert unreviewed.protected_on(date(2026, 8, 31))  # protection runs to its last day inclusive
    assert not unreviewed.protected_on(date(2026, 9, 1))
    assert plan.state_on(date(2025, 12, 31)).basis == "hours"  # type: ignore[union-attr]


# Corrections.


def test_a_band_correction_applies_to_the_corrected_event_only() -> None:
    plan = plan_of(
        issued("B"),
        ev.BandChanged("P1", date(2025, 11, 1), "C", "annual-review"),  # P1/2
        ev.BandChanged("P1", date(2026, 2, 1), "E", "interim-review"),  # P1/3
        ev.Corrected("P1", "P1/2", "the review said D, not C", band="D"),  # P1/4
    )
    assert summary(plan) == [
        (date(2025, 9, 1), date(2025, 11, 1), OAK, "B", "P1/1"),  # the issue is untouched
        (date(2025, 11, 1), date(2026, 2, 1), OAK, "D", "P1/2"),  # corrected from C
        (date(2026, 2, 1), None, OAK, "E", "P1/3"),  # the later change is untouched
    ]
    # The corrected event is replaced in the fold; the recorded one is not altered.
    assert plan.facts[1].fact == ev.BandChanged("P1", date(2025, 11, 1), "C", "annual-review")
    assert plan.corrected["P1/2"] == ev.BandChanged("P1", date(2025, 11, 1), "D", "annual-review")
    assert "P1/4" not in plan.corrected


def test_correcting_the_issue_band_from_the_start() -> None:
    plan = plan_of(
        issued("B"),
        ev.BandChanged("P1", date(2025, 11, 1), "D", "annual-review"),
        ev.Corrected("P1", "P1/1", "it was C, not B, from the start", band="C"),
    )
    assert summary(plan) == [
        (date(2025, 9, 1), date(2025, 11, 1), OAK, "C", "P1/1"),
        (date(2025, 11, 1), None, OAK, "D", "P1/2"),
    ]


def test_correcting_the_issue_from_hours_to_a_band_replaces_the_basis() -> None:
    plan = plan_of(issued(None, hours=Decimal("20")),
                   ev.Corrected("P1", "P1/1", "it was issued on band C", band="C"))
    assert plan.issued.band == "C" and plan.issued.hours is None
    assert plan.state_on(date(2025, 9, 1)) == band_state("C")


def test_correcting_an_effective_date_reorders_the_timeline() -> None:
    plan = plan_of(
        issued("B"),
        ev.BandChanged("P1", date(2025, 11, 1), "C", "annual-review"),  # P1/2
        ev.PlacementMoved("P1", date(2026, 1, 1), ELM),  # P1/3
        ev.Corrected("P1", "P1/2", "the review was on 1 Feb", effective=date(2026, 2, 1)),
    )
    # Now the move comes first, and the band change (still P1/2) follows it.
    assert summary(plan) == [
        (date(2025, 9, 1), date(2026, 1, 1), OAK, "B", "P1/1"),
        (date(2026, 1, 1), date(2026, 2, 1), ELM, "B", "P1/3"),
        (date(2026, 2, 1), None, ELM, "C", "P1/2"),
    ]
    assert [event_id for event_id, _ in plan.in_effect_order()] == ["P1/1", "P1/3", "P1/2"]


def test_correcting_the_cease_date_moves_the_end() -> None:
    plan = plan_of(
        issued("B"),
        ev.PlanCeased("P1", date(2026, 3, 1), "left"),  # P1/2
        ev.Corrected("P1", "P1/2", "left at Easter", effective=date(2026, 4, 13)),
    )
    assert plan.ceased_from == date(2026, 4, 13)
    assert plan.state_on(date(2026, 4, 12)) == band_state("B")
    assert plan.state_on(date(2026, 4, 13)) is None


def test_a_later_correction_of_the_same_event_wins() -> None:
    plan = plan_of(
        issued("B"),
        ev.BandChanged("P1", date(2025, 11, 1), "C", "annual-review"),
        ev.Corrected("P1", "P1/2", "typed C for D", band="D"),
        ev.Corrected("P1", "P1/2", "it was E after all", band="E"),
    )
    assert plan.state_on(date(2025, 11, 1)) == band_state("E", because="P1/2")


def test_check_sequence_refuses_a_fact_that_no_longer_applies_after_a_correction() -> None:
    facts = (
        issued(None, hours=Decimal(20)),
        ev.TransferredToBand("P1", date(2026, 1, 1), "C", 297_560),  # P1/2
        ev.BandChanged("P1", date(2026, 3, 1), "D", "annual-review"),  # P1/3
    )
    plan_of(*facts).check_sequence()  # as recorded, every fact applies
    # Moving the band change to 1 Dec puts it on a day the plan is on hours: the fold would
    # set a band on an hours plan and pay hours, dropping the change without a word.
    moved = plan_of(*facts, ev.Corrected("P1", "P1/3", "review in December", effective=date(2025, 12, 1)))
    assert moved.state_on(date(2025, 12, 1)).basis == "hours"  # type: ignore[union-attr]
    with pytest.raises(RuleError, match=r"P1/3 \(plan.band_changed from 2025-12-01\) would then apply "
                       "while plan P1 is on 20 hours") as refused:
        moved.check_sequence()
    assert refused.value.field == "from"
    # Correcting the issue to a band leaves the transfer with no hours to transfer from.
    rebased = plan_of(*facts, ev.Corrected("P1", "P1/1", "issued on band B", band="B"))
    with pytest.raises(RuleError, match=r"P1/2 .* while plan P1 is on band B") as refused:
        rebased.check_sequence("band")
    assert refused.value.field == "band"


def test_check_change_refuses_a_transfer_backdated_before_a_recorded_hours_change() -> None:
    plan = plan_of(issued(None, hours=Decimal(20)),
                   ev.HoursChanged("P1", date(2026, 2, 1), Decimal(30)))  # P1/2
    _refuses(plan, ev.TransferredToBand("P1", date(2026, 1, 1), "C", 297_560), "from",
             r"P1/2 \(plan.hours_changed from 2026-02-01\) would then apply while plan P1 is on band C")
    plan.check_change(ev.TransferredToBand("P1", date(2026, 2, 1), "C", 297_560))  # on the day: fine
    plan.check_change(ev.TransferredToBand("P1", date(2026, 3, 1), "C", 297_560))


def test_corrections_that_cannot_apply_are_refused() -> None:
    with pytest.raises(RuleError, match="has no school to correct") as refused:
        plan_of(issued("B"), ev.BandChanged("P1", date(2025, 11, 1), "C", "annual-review"),
                ev.Corrected("P1", "P1/2", "wrong school", school=ELM))
    assert refused.value.field == "school"
    with pytest.raises(RuleError, match="give the corrected") as refused:
        plan_of(issued("B"), ev.Corrected("P1", "P1/1", "nothing given"))
    assert refused.value.field == "correction"
    with pytest.raises(RuleError, match="not an event of plan P1") as refused:
        plan_of(issued("B"), ev.Corrected("P1", "P1/9", "no such event", band="C"))
    assert refused.value.field == "event"


def test_a_plan_must_start_with_its_issue() -> None:
    with pytest.raises(RuleError, match="first event must be its issue"):
        plan_of(ev.BandChanged("P1", date(2025, 11, 1), "C", "annual-review"))
    with pytest.raises(RuleError):
        Plan([])


# What can follow what the ledger knows (Plan.check_change).


def _refuses(plan: Plan, fact: ev.Fact, field: str, words: str) -> None:
    with pytest.raises(RuleError, match=words) as refused:
        plan.check_change(fact)
    assert refused.value.field == field


def test_check_change_refuses_what_cannot_follow() -> None:
    banded = plan_of(issued("B"), ev.PlanCeased("P1", date(2026, 3, 1), "left"))
    _refuses(banded, issued("C"), "plan", "already issued")
    _refuses(banded, ev.BandChanged("P1", date(2025, 8, 31), "C", "other"), "from",
             "before plan P1 was issued")
    _refuses(banded, ev.BandChanged("P1", date(2026, 3, 1), "C", "other"), "from", "ceased")
    _refuses(banded, ev.PlacementMoved("P1", date(2026, 6, 1), ELM), "from", "ceased")
    _refuses(banded, ev.HoursChanged("P1", date(2025, 10, 1), Decimal(10)), "hours", "not on hours")
    _refuses(banded, ev.TransferredToBand("P1", date(2025, 10, 1), "C", 0), "band", "already on band")
    _refuses(banded, ev.PlacementMoved("P1", date(2025, 10, 1), OAK), "school", "already at school")
    on_hours = plan_of(issued(None, hours=Decimal(20)))
    _refuses(on_hours, ev.BandChanged("P1", date(2025, 10, 1), "C", "other"), "band",
             "transfer it to a band first")
    # And what can follow is accepted: the last funded day, a cease on the first day.
    banded.check_change(ev.BandChanged("P1", date(2026, 2, 28), "C", "other"))
    banded.check_change(ev.Corrected("P1", "P1/2", "later", effective=date(2026, 4, 1)))
    on_hours.check_change(ev.PlanCeased("P1", date(2025, 9, 1), "issued in error"))
    on_hours.check_change(ev.TransferredToBand("P1", date(2025, 9, 1), "C", 0))


@pytest.mark.parametrize(
    ("hours", "words"),
    [
        (Decimal("-5"), "is negative"),
        (Decimal("0"), "more than 0"),
        (Decimal("40.01"), "implausible"),
        (Decimal("1000000"), "implausible"),
        (Decimal("12.345"), "two decimal places"),
    ],
)
def test_check_hours_refuses(hours: Decimal, words: str) -> None:
    with pytest.raises(RuleError, match=words) as refused:
        check_hours(hours)
    assert refused.value.field == "hours"


def test_check_hours_accepts_a_school_week() -> None:
    for text in ("0.5", "20", "32.5", "40", "12.25"):
        assert check_hours(Decimal(text)) == Decimal(text)
