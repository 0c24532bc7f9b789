"""Protection as facts of its own (docs/rules.md §10): granted after a transfer, extended,
ended early, each with a reason; and the LA's protection policy for the prior.

Protection granted with the transfer is the transfer's own ``protect_until``
(``Ledger.transfer``). What may follow what is the domain's rule (``Plan.check_change``);
this only works out the extension's first day and records.
"""

from __future__ import annotations

from datetime import date, timedelta

from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.plan import protection_spells
from topup_ledger.services.recording import Ledger, check_reason

POLICY_STREAM = "protection-policy"


def grant(ledger: Ledger, ref: str, effective: date, until: date, reason: str) -> str:
    """Protect plan ``ref`` from ``effective`` up to and including ``until``."""
    return ledger._change(ref, ev.ProtectionGranted(ref, effective, until, check_reason(reason)))


def extend(ledger: Ledger, ref: str, until: date, reason: str) -> str:
    """Extend the plan's protection, running to its end date, to ``until``: the extension
    takes effect from the day after that end date."""
    effective = ledger.plan(ref).extensible_spell().last + timedelta(days=1)
    return ledger._change(ref, ev.ProtectionExtended(ref, effective, until, check_reason(reason)))


def end(ledger: Ledger, ref: str, effective: date, reason: str) -> str:
    """End the plan's protection early: ``effective`` is the first day no longer protected."""
    return ledger._change(ref, ev.ProtectionEnded(ref, effective, check_reason(reason)))


def set_policy(ledger: Ledger, prior: str, reason: str = "") -> str:
    """Record the LA's protection policy: the prior ``recomputed`` at each protected day's
    rate, or ``frozen`` at the terms of the day before the transfer."""
    if prior not in ev.PROTECTION_PRIORS:
        raise RuleError("prior", f"{prior!r} is not one of {', '.join(ev.PROTECTION_PRIORS)}")
    if len(reason) > 500:
        raise RuleError("reason", "is longer than 500 characters")
    return ledger._record_once(POLICY_STREAM, ev.ProtectionPolicySet(prior, reason.strip()))


def policy(ledger: Ledger) -> tuple[str, str | None]:
    """The policy in force and the event that set it (None: the default, recomputed)."""
    terms = ledger.terms()
    return terms.protection_prior, terms.protection_policy[-1][1] if terms.protection_policy else None


def spells_in_words(ledger: Ledger, ref: str) -> list[str]:
    """When and why the plan's protection started and ended, a sentence a spell, for its
    history (docs/rules.md §10)."""
    plan = ledger.plan(ref)
    words = []
    for spell in protection_spells(plan):
        started = plan.corrected.get(spell.started_by)
        if isinstance(started, ev.TransferredToBand):
            why = f"granted with the transfer to band {started.band} ({spell.started_by})"
        else:
            why = f"granted by {spell.started_by} ({getattr(started, 'reason', '')})"
        for event_id in spell.extended_by:
            extended = plan.corrected.get(event_id)
            why += f"; extended by {event_id} ({getattr(extended, 'reason', '')})"
        ended = plan.corrected.get(spell.ended_by)
        if spell.ended == "until":
            end = "ran to its end date"
        elif spell.ended == "band":
            end = (f"ended by the band change {spell.ended_by} to band "
                   f"{getattr(ended, 'band', '')} ({getattr(ended, 'reason', '')}): a new "
                   "assessment sets a new level")
        elif spell.ended == "move":
            end = (f"ended by the move {spell.ended_by} to school {getattr(ended, 'school', '')}: "
                   "another school, another budget")
        elif spell.ended == "ended":
            end = f"ended early by {spell.ended_by} ({getattr(ended, 'reason', '')})"
        else:
            end = f"ended as the plan ceased ({spell.ended_by})"
        words.append(f"protected from {spell.start} to {spell.last}: {why}; {end}")
    return words
