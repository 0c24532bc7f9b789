"""Every plan's facts as of a position, read from the plans' own streams a chunk at a time.

A payment run looks at every plan, but at one plan at a time: holding every plan's facts
at once is what made a national run need gigabytes. ``StoredPlans`` reads the plans'
streams in name order, many streams per SELECT, as of the position the run started
from (so a concurrent writer's facts are not seen); ``KnownPlans`` answers the same from
facts already in memory (a replay, or a test's full recomputation).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Protocol

from topup_ledger.domain.plan import RecordedFact, earliest_issue
from topup_ledger.storage.chain import envelope_of, plain_state
from topup_ledger.storage.known import readable, recorded_from
from topup_ledger.storage.pages import StoredPages, StoredRow, for_forked
from topup_ledger.storage.store import EventStore
from topup_ledger.storage.streams import plan_stream

PLAN_PREFIX = plan_stream("")


class Plans(Protocol):
    """What a payment run asks of the plans known at its position."""

    def count(self) -> int:
        """How many plans there are."""

    def first_issued(self) -> date | None:
        """The earliest issue date as first recorded (a correction may move one: the run
        checks the dates as corrected when it reads every plan)."""

    def issued_after(self, position: int) -> set[str]:
        """The plans (streams) issued after ``position``."""

    def written_after(self, position: int) -> set[str]:
        """The plans with a fact recorded after ``position``."""

    def names(self) -> list[str]:
        """Every plan's stream, in name order."""

    def read(self, names: Iterable[str]) -> Iterator[tuple[str, list[RecordedFact]]]:
        """The named plans' facts, in name order."""

    def reopened(self) -> Plans:
        """The same plans read through a connection of their own (for a forked process)."""


class StoredPlans:
    """The plans' streams in the store, up to ``upto``."""

    def __init__(self, store: EventStore, upto: int,
                 issued: dict[str, tuple[int, str]] | None = None) -> None:
        self.store = store
        self.upto = upto
        self.pages = StoredPages(store)
        # Each plan's first fact: which plans there are, when each was issued and where.
        self.issued = issued if issued is not None else {}
        for row in [] if issued is not None else self.pages.first_events(PLAN_PREFIX, upto):
            data = readable(envelope_of(plain_state(store, row.state)), row, store)["data"]
            self.issued[row.originator_id] = (row.id, data.get("effective", ""))

    def close(self) -> None:
        self.pages.close()

    def count(self) -> int:
        return len(self.issued)

    def first_issued(self) -> date | None:
        days = [day for _, day in self.issued.values() if day]
        return date.fromisoformat(min(days)) if days else None

    def issued_after(self, position: int) -> set[str]:
        return {name for name, (first, _) in self.issued.items() if first > position}

    def written_after(self, position: int) -> set[str]:
        return self.pages.streams_written(PLAN_PREFIX, position, self.upto)

    def read(self, names: Iterable[str]) -> Iterator[tuple[str, list[RecordedFact]]]:
        rows = self.pages.each_stream(names, self.upto)  # each stream's rows together
        for name, stream in itertools.groupby(rows, key=lambda row: row.originator_id):
            yield name, [self._fact(row) for row in stream]

    def _fact(self, row: StoredRow) -> RecordedFact:
        envelope = readable(envelope_of(plain_state(self.store, row.state)), row, self.store)
        recorded = recorded_from(row.topic, row.originator_id, row.originator_version, envelope)
        return RecordedFact(recorded.id, recorded.fact, row.id)

    def names(self) -> list[str]:
        return sorted(self.issued)

    def reopened(self) -> StoredPlans:
        return StoredPlans(for_forked(self.store), self.upto, self.issued)


class KnownPlans:
    """Plans whose facts are already in memory (each with its ledger position)."""

    def __init__(self, facts: Mapping[str, list[RecordedFact]]) -> None:
        self.facts = facts

    def count(self) -> int:
        return len(self.facts)

    def first_issued(self) -> date | None:
        return min(map(earliest_issue, self.facts.values()), default=None)

    def issued_after(self, position: int) -> set[str]:
        return {name for name, facts in self.facts.items() if facts[0].position > position}

    def written_after(self, position: int) -> set[str]:
        return {name for name, facts in self.facts.items() if facts[-1].position > position}

    def read(self, names: Iterable[str]) -> Iterator[tuple[str, list[RecordedFact]]]:
        return ((name, self.facts[name]) for name in sorted(names) if name in self.facts)

    def names(self) -> list[str]:
        return sorted(self.facts)

    def reopened(self) -> KnownPlans:
        return self

