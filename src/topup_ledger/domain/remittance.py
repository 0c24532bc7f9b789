"""Paid against remitted (issue 23): what the ledger released to a payee in a run, against
what the bank or AP system reports it paid, and the state of each pair."""

from __future__ import annotations

from collections.abc import Sequence

MATCHED, SHORT, OVER, MISSING, UNEXPECTED, DUPLICATE = (
    "matched", "short", "over", "missing", "unexpected", "duplicate")


def remitted_state(released: int | None, remitted: Sequence[int]) -> str:
    """The state of one payee in one run. ``released`` is None when the run released nothing
    to the payee (or there is no such released run); ``remitted`` are the amounts the
    remittance reports against them.

    - unexpected: paid, but the ledger released nothing to the payee in that run;
    - missing: released, but no payment reported;
    - duplicate: the released amount paid more than once;
    - matched / short / over: what was paid in all is equal to, less or more than released.
    """
    if released is None:
        return UNEXPECTED if remitted else MATCHED
    if not remitted:
        return MATCHED if released == 0 else MISSING
    paid = sum(remitted)
    if len(remitted) > 1 and paid > released and remitted.count(released) > 1:
        return DUPLICATE
    if paid == released:
        return MATCHED
    return SHORT if paid < released else OVER
