"""A plan's life as a timeline of states, folded from its facts (docs/rules.md §4, §12).

Facts apply in effective-date order (recorded order breaks ties), after corrections have
been applied to the facts they name. The timeline says, for any day, which school the plan
funds, on which basis (hours or band), with which protection, or that it is not funded.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError

MAX_HOURS_PER_WEEK = Decimal(40)
ONE_DAY = timedelta(days=1)  # a school week; full-time one-to-one is about 32.5


@dataclass(frozen=True)
class RecordedFact:
    """A fact as the ledger holds it: its id (``stream/version``) and recorded order."""

    id: str
    fact: ev.Fact
    position: int = 0


@dataclass(frozen=True)
class PlanState:
    """What is true of a plan on a stretch of days."""

    pupil: str
    school: str
    kind: str
    basis: ev.Basis
    hours: Decimal | None
    band: str | None
    prior_annual: int | None = None  # the hours-based amount recorded at transfer
    # Protection (docs/rules.md §10): the hours a week the plan had before its transfer,
    # priced as the prior on each protected day, up to and including ``protect_until``.
    prior_hours: Decimal | None = None
    protect_until: date | None = None
    because: str = ""  # the id of the fact that started this state
    # The day whose terms price a frozen prior (the LA's protection policy, §10): the day
    # before the transfer, or the transfer's own day for a plan issued that day.
    prior_on: date | None = None
    # The plan's first day, for ``prior_on``: the same in all its states, so not compared.
    issued_on: date | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def band_or_hours(self) -> str:
        return self.band if self.basis == "band" else f"{self.hours}h"

    def protected_on(self, day: date) -> bool:
        return self.protect_until is not None and day <= self.protect_until


@dataclass(frozen=True)
class Segment:
    start: date
    end_exclusive: date | None  # None: open-ended
    state: PlanState


def check_hours(hours: Decimal, field: str = "hours") -> Decimal:
    if hours < 0:
        raise RuleError(field, f"{hours} is negative")
    if hours == 0:
        raise RuleError(field, "must be more than 0 (cease the plan instead)")
    if hours > MAX_HOURS_PER_WEEK:
        raise RuleError(field, f"{hours} hours a week is implausible (at most {MAX_HOURS_PER_WEEK})")
    if hours != hours.quantize(Decimal("0.01")):
        raise RuleError(field, f"{hours} has more than two decimal places")
    return hours


_CORRECTABLE = {
    ev.PlanIssued: ("band", "hours", "effective", "school"),
    ev.HoursChanged: ("hours", "effective"),
    ev.TransferredToBand: ("band", "effective"),
    ev.BandChanged: ("band", "effective"),
    ev.PlacementMoved: ("school", "effective"),
    ev.PlanCeased: ("effective",),
}


def apply_correction(target: ev.Fact, correction: ev.Corrected) -> ev.Fact:
    """The fact as it should have been recorded; only the fields the correction gives."""
    allowed = _CORRECTABLE.get(type(target), ())
    changes = {}
    for name in ("band", "hours", "effective", "school"):
        value = getattr(correction, name)
        if value is None:
            continue
        if name not in allowed:
            raise RuleError(
                name, f"a {target.TYPE} event has no {name} to correct "
                f"(it can correct: {', '.join(allowed) or 'nothing'})"
            )
        changes[name] = value
    if not changes:
        raise RuleError("correction", "give the corrected --band, --hours, --from or --school")
    if "band" in changes and "hours" in changes:
        raise RuleError("correction", "give either the corrected --band or --hours, not both")
    if isinstance(target, ev.PlanIssued) and ("band" in changes or "hours" in changes):
        # The plan was issued on the other basis: the correction replaces the basis too.
        changes.setdefault("band", None)
        changes.setdefault("hours", None)
    return dataclasses.replace(target, **changes)


class Plan:
    """Everything the ledger knows about one plan, and its timeline."""

    def __init__(self, facts: Iterable[RecordedFact]) -> None:
        self.facts: list[RecordedFact] = list(facts)
        if not self.facts or not isinstance(self.facts[0].fact, ev.PlanIssued):
            raise RuleError("plan", "a plan's first event must be its issue")
        self.ref = self.facts[0].fact.plan
        self.corrected: dict[str, ev.Fact] = self._apply_corrections()
        self.segments: list[Segment] = list(self._fold())

    def _apply_corrections(self) -> dict[str, ev.Fact]:
        current = {r.id: r.fact for r in self.facts if not isinstance(r.fact, ev.Corrected)}
        self.corrections: dict[str, list[str]] = {}
        for r in self.facts:
            if isinstance(r.fact, ev.Corrected):
                self.corrections.setdefault(r.fact.corrects, []).append(r.id)
                if r.fact.corrects not in current:
                    raise RuleError("event", f"{r.fact.corrects} is not an event of plan {self.ref}")
                current[r.fact.corrects] = apply_correction(current[r.fact.corrects], r.fact)
        return current

    @property
    def issued(self) -> ev.PlanIssued:
        fact = self.corrected[self.facts[0].id]
        assert isinstance(fact, ev.PlanIssued)
        return fact

    @property
    def start(self) -> date:
        return self.issued.effective

    @property
    def ceased_from(self) -> date | None:
        for fact in self.corrected.values():
            if isinstance(fact, ev.PlanCeased):
                return fact.effective
        return None

    def in_effect_order(self) -> list[tuple[str, ev.Fact]]:
        order = {r.id: i for i, r in enumerate(self.facts)}
        return sorted(self.corrected.items(),
                      key=lambda item: (item[1].effective, order[item[0]]))

    def _fold(self) -> Iterator[Segment]:
        state: PlanState | None = None
        start: date | None = None
        for event_id, fact in self.in_effect_order():
            new = _next_state(state, fact, event_id)
            effective: date = fact.effective
            if state is not None and start is not None and effective > start:
                yield Segment(start, effective, state)
            state, start = new, effective
            if state is None:
                return
        if state is not None and start is not None:
            yield Segment(start, None, state)

    def with_corrections(self, event_id: str) -> list[str]:
        """The event and the corrections that changed it: together they explain a state."""
        return [event_id, *self.corrections.get(event_id, [])]

    def state_after(self, event_id: str) -> PlanState | None:
        """The plan's state just after the fact ``event_id`` applied (as corrected), even if
        another fact of the same day follows it."""
        state: PlanState | None = None
        for found, fact in self.in_effect_order():
            state = _next_state(state, fact, found)
            if found == event_id:
                return state
        return None

    def state_on(self, day: date) -> PlanState | None:
        for segment in self.segments:
            if segment.start <= day and (segment.end_exclusive is None or day < segment.end_exclusive):
                return segment.state
        return None

    def clipped(self, start: date, end_exclusive: date) -> list[tuple[date, date, PlanState]]:
        """The plan's states on the days [start, end_exclusive), in date order, each with the
        days it holds there: (first day, day after the last, state)."""
        found = []
        for segment in self.segments:  # in date order, each from where the one before ends
            if segment.start >= end_exclusive:
                break
            until = segment.end_exclusive
            if until is not None and until <= start:
                continue
            found.append((segment.start if segment.start > start else start,
                          end_exclusive if until is None or until > end_exclusive else until,
                          segment.state))
        return found

    def schools(self) -> set[str]:
        return {s.state.school for s in self.segments} | {self.issued.school}

    def check_sequence(self, field: str = "from") -> None:
        """Refuse a life in which a fact, taken in effective-date order, cannot follow the
        state before it: a correction can move a band change before the transfer to a band,
        or an hours change after it, and the fold would then drop it without a word."""
        state: PlanState | None = None
        for event_id, fact in self.in_effect_order():
            needs = _NEEDS_BASIS.get(type(fact))
            if state is not None and needs is not None and state.basis != needs:
                on = f"band {state.band}" if state.basis == "band" else f"{state.hours} hours"
                raise RuleError(field, f"{event_id} ({fact.TYPE} from {fact.effective}) would "
                                f"then apply while plan {self.ref} is on {on}, where it cannot")
            state = _next_state(state, fact, event_id)
            if state is None:
                return

    def check_change(self, fact: ev.Fact) -> None:
        """Refuse a new fact that cannot follow what the ledger knows of this plan."""
        if isinstance(fact, ev.PlanIssued):
            raise RuleError("plan", f"plan {self.ref} was already issued (on {self.start})")
        if isinstance(fact, ev.Corrected):
            return
        effective: date = fact.effective
        if effective < self.start:
            raise RuleError("from", f"{effective} is before plan {self.ref} was issued ({self.start})")
        ceased = self.ceased_from
        if ceased is not None and effective >= ceased:
            raise RuleError("from", f"plan {self.ref} ceased from {ceased}; {effective} is after it ceased")
        if isinstance(fact, ev.PlanCeased):
            return
        state = self.state_on(effective)
        assert state is not None
        if isinstance(fact, ev.HoursChanged) and state.basis != "hours":
            raise RuleError("hours", f"plan {self.ref} is on band {state.band} on {effective}, "
                            "not on hours: change its band instead")
        if isinstance(fact, ev.TransferredToBand) and state.basis != "hours":
            raise RuleError("band", f"plan {self.ref} is already on band {state.band} on {effective}")
        if isinstance(fact, ev.BandChanged) and state.basis != "band":
            raise RuleError("band", f"plan {self.ref} is on hours on {effective}: "
                            "transfer it to a band first")
        if isinstance(fact, ev.PlacementMoved) and state.school == fact.school:
            raise RuleError("school", f"plan {self.ref} is already at school {fact.school} on {effective}")
        if isinstance(fact, ev.ProtectionGranted | ev.ProtectionExtended | ev.ProtectionEnded):
            self._check_protection(fact, state)
        if isinstance(fact, ev.TransferredToBand):
            # A backdated transfer must not land before hours changes already recorded.
            after = Plan([*self.facts, RecordedFact(f"{self.ref}/{len(self.facts) + 1}", fact)])
            after.check_sequence("from")

    def extensible_spell(self) -> ProtectionSpell:
        """The spell of protection an extension would extend: the last, if it runs to its
        end date (an extension takes effect from the day after it)."""
        spells = protection_spells(self)
        if not spells:
            raise RuleError("plan", f"plan {self.ref} has never been protected: grant protection instead")
        last = spells[-1]
        if last.ended != "until":
            raise RuleError("plan", f"plan {self.ref}'s protection ended on {last.last} "
                            f"({ENDED_WORDS[last.ended]}): grant protection anew instead")
        return last

    def _check_protection(self, fact: ev.ProtectionGranted | ev.ProtectionExtended
                          | ev.ProtectionEnded, state: PlanState) -> None:
        """Protection is granted to a plan on a band that moved from hours (it has a prior),
        not already protected that day; extended only where it runs to its end date, from
        the day after; ended early only on a day it protects (docs/rules.md §10)."""
        day = fact.effective
        if isinstance(fact, ev.ProtectionGranted | ev.ProtectionExtended) and fact.until < day:
            raise RuleError("until", f"{fact.until} is before {day}")
        if state.basis != "band" or state.prior_hours is None:
            raise RuleError("plan", f"plan {self.ref} is not on a band after a move from hours on "
                            f"{day}: there is no prior hours-based amount to protect")
        if isinstance(fact, ev.ProtectionGranted):
            if state.protected_on(day):
                raise RuleError("from", f"plan {self.ref} is already protected on {day} (until "
                                f"{state.protect_until}): extend that protection instead")
            return
        if isinstance(fact, ev.ProtectionEnded):
            if not state.protected_on(day):
                raise RuleError("from", f"plan {self.ref} is not protected on {day}")
            return
        last = self.extensible_spell()
        if day != last.last + ONE_DAY:
            raise RuleError("from", f"plan {self.ref}'s protection runs to {last.last}: an "
                            f"extension takes effect from {last.last + ONE_DAY}, not {day}")
        if fact.until <= last.last:
            raise RuleError("until", f"{fact.until} is not after {last.last}, the day the "
                            "protection runs to: end it early instead")
        if state.protect_until is None or state.protect_until < last.last:
            raise RuleError("from", f"plan {self.ref}'s protection cannot go on from {day}: "
                            f"{state.because} on that day ends it")


ENDED_WORDS = {"until": "its end date", "band": "a band change", "move": "a move to another school",
               "ended": "ended early", "ceased": "the plan ceased"}


@dataclass(frozen=True)
class ProtectionSpell:
    """Days on which a plan was protected, one after another (docs/rules.md §10): from
    ``start`` to ``last`` (inclusive), started by ``started_by`` (a transfer or a grant),
    extended by ``extended_by``, ended by ``ended`` ("until": its end date; "band": a band
    change; "move": a move; "ended": ended early; "ceased": the plan ceased) through
    ``ended_by`` (the event, "" for its own end date)."""

    start: date
    last: date
    started_by: str
    extended_by: tuple[str, ...] = ()
    ended: str = "until"
    ended_by: str = ""


def protection_spells(plan: Plan) -> list[ProtectionSpell]:
    """When the plan was protected and what started and ended each spell, from its timeline
    as known now: protected days one after another make one spell, unless a new grant
    starts them."""
    spells: list[ProtectionSpell] = []
    segments = plan.segments
    for n, segment in enumerate(segments):
        state = segment.state
        if state.prior_hours is None or not state.protected_on(segment.start):
            continue
        assert state.protect_until is not None
        starts = plan.corrected.get(state.because)
        previous = spells[-1] if spells and spells[-1].ended == "going on" else None
        if previous is not None and not isinstance(
                starts, ev.ProtectionGranted | ev.TransferredToBand):
            spell = dataclasses.replace(spells.pop(), extended_by=previous.extended_by + (
                (state.because,) if isinstance(starts, ev.ProtectionExtended) else ()))
        else:
            if previous is not None:  # a new grant from the day after: the last one ran out
                spells[-1] = dataclasses.replace(previous, ended="until", ended_by="")
            spell = ProtectionSpell(segment.start, segment.start, state.because)
        end = segment.end_exclusive
        if end is None or state.protect_until < end - ONE_DAY:
            spells.append(dataclasses.replace(spell, last=state.protect_until, ended="until",
                                              ended_by=""))
            continue
        after = segments[n + 1].state if n + 1 < len(segments) else None
        goes_on = after is not None and after.prior_hours is not None and after.protected_on(end)
        ended_by = after.because if after is not None else next(
            (i for i, f in plan.corrected.items() if isinstance(f, ev.PlanCeased)), "")
        if goes_on:
            ended = "going on"  # worked out with the next segment
        elif state.protect_until == end - ONE_DAY:
            ended, ended_by = "until", ""
        elif after is None:
            ended = "ceased"
        else:
            ended = {ev.BandChanged: "band", ev.PlacementMoved: "move",
                     ev.ProtectionEnded: "ended"}.get(type(plan.corrected.get(ended_by)), "until")
        spells.append(dataclasses.replace(spell, last=end - ONE_DAY, ended=ended,
                                          ended_by=ended_by))
    return spells


# The basis a plan must be on for a fact to apply to it.
_NEEDS_BASIS: dict[type[ev.Fact], ev.Basis] = {
    ev.HoursChanged: "hours", ev.TransferredToBand: "hours", ev.BandChanged: "band",
    ev.ProtectionGranted: "band", ev.ProtectionExtended: "band", ev.ProtectionEnded: "band"}


def _next_state(state: PlanState | None, fact: ev.Fact, event_id: str) -> PlanState | None:
    if isinstance(fact, ev.PlanIssued):
        basis = "band" if fact.band is not None else "hours"
        return PlanState(fact.pupil, fact.school, fact.kind, basis, fact.hours, fact.band,
                         because=event_id, issued_on=fact.effective)
    if state is None:
        return None
    if isinstance(fact, ev.HoursChanged):
        return dataclasses.replace(state, hours=fact.hours, because=event_id)
    if isinstance(fact, ev.TransferredToBand):
        funded_before = state.issued_on is not None and state.issued_on < fact.effective
        return dataclasses.replace(state, basis="band", band=fact.band,
                                   prior_annual=fact.prior_annual, prior_hours=state.hours,
                                   prior_on=fact.effective - ONE_DAY if funded_before
                                   else fact.effective,
                                   protect_until=fact.protect_until, because=event_id)
    # A new assessment sets a new level, and another school another budget: either ends
    # protection (docs/rules.md §10). The prior is kept: protection may be granted anew.
    if isinstance(fact, ev.BandChanged):
        return dataclasses.replace(state, band=fact.band, protect_until=None, because=event_id)
    if isinstance(fact, ev.PlacementMoved):
        return dataclasses.replace(state, school=fact.school, protect_until=None,
                                   because=event_id)
    if isinstance(fact, ev.ProtectionGranted):
        if state.basis != "band" or state.prior_hours is None:
            return state  # refused when recorded; a correction cannot bring it here either
        return dataclasses.replace(state, protect_until=fact.until, because=event_id)
    if isinstance(fact, ev.ProtectionExtended):
        # Only protection running to the day before: one already ended (a review, a move,
        # an early end) stays ended.
        if state.protect_until is None or state.protect_until < fact.effective - ONE_DAY:
            return state
        return dataclasses.replace(state, protect_until=max(state.protect_until, fact.until),
                                   because=event_id)
    if isinstance(fact, ev.ProtectionEnded):
        if state.protect_until is None or state.protect_until < fact.effective:
            return state
        return dataclasses.replace(state, protect_until=None, because=event_id)
    if isinstance(fact, ev.PlanCeased):
        return None
    raise TypeError(f"{fact.TYPE} is not a plan event")


def first_changed_day(before: list[Segment], after: list[Segment]) -> date | None:
    """The first day on which two timelines of a plan may differ (None if they agree on
    every day): every day before it has the same state in both. Used to tell which
    periods a newly recorded fact (a backdated change, a correction) can reach."""
    for a, b in itertools.zip_longest(before, after):
        if a == b:
            continue
        if a is None or b is None:
            return (b or a).start  # type: ignore[union-attr]
        if a.start != b.start or a.state != b.state:
            return min(a.start, b.start)
        # the same state from the same day, ending on different days (or one open-ended)
        return min(d for d in (a.end_exclusive, b.end_exclusive) if d is not None)
    return None


def earliest_issue(facts: list[RecordedFact]) -> date:
    """The earliest day the plan was ever said to start: as first recorded, or as any
    correction of its issue put it, without folding its timeline. A run's calendar starts
    from the earliest of these over all plans, so that what was paid for a period while a
    plan was said to start earlier is still compared with due, and clawed back."""
    issued = facts[0]
    day: date = issued.fact.effective  # type: ignore[attr-defined]
    for r in facts:
        if isinstance(r.fact, ev.Corrected) and r.fact.corrects == issued.id and r.fact.effective:
            day = min(day, r.fact.effective)
    return day
