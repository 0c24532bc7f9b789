"""Recoveries instead of negative payments (DESIGN §2; docs/finance.md "Recoveries").

A school is never sent a negative payment. Where a run's net for a school (the sum of its
lines: regular, arrears, claw-back, protection, cushion) is negative, the school is paid
nothing and the excess is carried forward as a recovery; what a school owes is netted
against its next positive nets, oldest first, until cleared. The lines themselves, and so
what is due and paid per plan, are untouched: a recovery moves when cash changes hands,
never what a school is entitled to.

Worked example: owed nothing, a run nets −£133.33 → cash £0.00, carried £133.33, owed
£133.33; the next run nets £666.67 → recovered £133.33, cash £533.34, owed £0.00.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from topup_ledger.domain.events import RunRecovery


def settle(school: str, net: int, owed: int) -> RunRecovery:
    """A school's recovery in a run with ``net`` when it owes ``owed`` (pence, ≥ 0)."""
    if owed < 0:
        raise ValueError(f"school {school} cannot owe {owed}p")
    if net < 0:
        return RunRecovery(school, net, carried=-net)
    return RunRecovery(school, net, recovered=min(net, owed))


def cash(recovery: RunRecovery) -> int:
    return recovery.net + recovery.carried - recovery.recovered


def run_recoveries(nets: Iterable[tuple[str, int]], owed: Mapping[str, int]
                   ) -> tuple[RunRecovery, ...]:
    """The recoveries of a run: only the schools whose cash differs from their net."""
    found = []
    for school, net in nets:
        recovery = settle(school, net, owed.get(school, 0))
        if recovery.carried or recovery.recovered:
            found.append(recovery)
    return tuple(found)


def owed_after(owed: Mapping[str, int], recoveries: Iterable[RunRecovery]) -> dict[str, int]:
    """What each school owes after a run's recoveries."""
    after = dict(owed)
    for recovery in recoveries:
        after[recovery.school] = after.get(recovery.school, 0) + recovery.carried - recovery.recovered
        if not after[recovery.school]:
            del after[recovery.school]
    return after
