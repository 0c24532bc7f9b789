"""Who prepared, released or withdrew each payment run (issue 23), read from the runs'
records and their control streams (``control:<run_id>``).

A run recorded without a control stream (by the service directly, or before run controls
existed) was released as it was recorded, by whoever recorded it. Who did each step is the
event's own authenticated actor (``by``), never a field a user could type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from topup_ledger.domain import events as ev
from topup_ledger.storage.store import EventStore

RELEASE_POLICY_STREAM = "policy:release"
PREPARED, RELEASED, WITHDRAWN = "prepared", "released", "withdrawn"


def control_stream(run_id: str) -> str:
    """A run's controls: how it is released (version 1, recorded with the run), then its
    release or its withdrawal (version 2: the stream's version lets only one of them in)."""
    return f"control:{run_id}"


@dataclass
class RunStatus:
    run_id: str
    period: str
    total: int
    prepared_by: str
    prepared_at: datetime
    release: str = "one-person"
    state: str = RELEASED
    released_by: str | None = None
    released_at: datetime | None = None
    withdrawn_by: str | None = None
    withdrawn_at: datetime | None = None
    withdrawn_because: str = ""
    caught_up: tuple[str, ...] = ()
    default_terms: tuple[str, ...] = ()
    controls: int = 0  # the version of its control stream
    schools: int = 0

    @property
    def held(self) -> bool:
        """Prepared under two-person release and neither released nor withdrawn."""
        return self.state == PREPARED

    def as_json(self) -> dict[str, object]:
        return {"run_id": self.run_id, "period": self.period, "total_pence": self.total,
                "release": self.release, "state": self.state,
                "prepared_by": self.prepared_by, "prepared_at": self.prepared_at.isoformat(),
                "released_by": self.released_by,
                "released_at": self.released_at.isoformat() if self.released_at else None,
                "withdrawn_by": self.withdrawn_by,
                "withdrawn_at": self.withdrawn_at.isoformat() if self.withdrawn_at else None,
                "withdrawn_because": self.withdrawn_because or None,
                "caught_up": list(self.caught_up), "default_terms": list(self.default_terms)}

    def text(self) -> str:
        """In words, e.g. 'prepared by ann, released by bob (two-person)'."""
        said = f"prepared by {self.prepared_by}"
        if self.state == RELEASED:
            by = self.released_by or self.prepared_by
            said += f", released by {by} ({self.release})"
        elif self.state == WITHDRAWN:
            said += f", withdrawn by {self.withdrawn_by}: {self.withdrawn_because}"
        else:
            said += ", held: not yet released (two-person)"
        if self.caught_up:
            said += "; caught up " + ", ".join(self.caught_up)
        if self.default_terms:
            said += "; default terms for " + ", ".join(self.default_terms)
        return said


CONTROL_TYPES = (ev.RunPrepared.TYPE, ev.RunReleased.TYPE, ev.RunWithdrawn.TYPE)


def run_statuses(store: EventStore, upto: int | None = None) -> list[RunStatus]:
    """Every run recorded (up to ``upto``), in ledger order, with who prepared and released
    or withdrew it."""
    found: dict[str, RunStatus] = {}
    for _, recorded in store.recorded(upto=upto, types=(ev.PaymentRunRecorded.TYPE, *CONTROL_TYPES)):
        fact = recorded.fact
        if isinstance(fact, ev.PaymentRunRecorded):
            found[fact.run_id] = RunStatus(fact.run_id, fact.period, fact.total,
                                           recorded.recorded_by, recorded.recorded_at,
                                           released_at=recorded.recorded_at,
                                           schools=fact.schools)
            continue
        status = found.get(fact.run_id)  # type: ignore[attr-defined]
        if status is None or recorded.originator_id != control_stream(status.run_id):
            continue
        status.controls = recorded.originator_version
        if isinstance(fact, ev.RunPrepared):
            status.release, status.caught_up = fact.release, fact.caught_up
            status.default_terms = fact.default_terms
            if fact.release == "two-person":
                status.state, status.released_at = PREPARED, None
        elif isinstance(fact, ev.RunReleased):
            status.state, status.released_by = RELEASED, recorded.recorded_by
            status.released_at = recorded.recorded_at
        elif isinstance(fact, ev.RunWithdrawn):
            status.state, status.withdrawn_by = WITHDRAWN, recorded.recorded_by
            status.withdrawn_at, status.withdrawn_because = recorded.recorded_at, fact.reason
    for status in found.values():
        if status.state == RELEASED and status.released_by is None:
            status.released_by = status.prepared_by  # one-person: released as recorded
    return list(found.values())


def run_status(store: EventStore, run_id: str) -> RunStatus | None:
    return next((s for s in run_statuses(store) if s.run_id == run_id), None)


def held(store: EventStore, run_id: str) -> bool:
    """Whether the run is prepared under two-person release and not yet released."""
    status = run_status(store, run_id)
    return status is not None and status.held


def prepared_under_policy(store: EventStore, run_id: str) -> list[tuple[str, ev.Fact]]:
    """What a run recorded without ``topup pay``'s controls records with it: under
    two-person release, that it is prepared (held), so no path releases it alone."""
    policy = release_policy(store)
    if policy == "one-person":
        return []
    return [(control_stream(run_id), ev.RunPrepared(run_id, policy))]


def release_policy(store: EventStore) -> str:
    """The ledger's release policy now: the latest set, or one-person."""
    latest = "one-person"
    for recorded in store.stream_recorded(RELEASE_POLICY_STREAM):
        if isinstance(recorded.fact, ev.ReleasePolicySet):
            latest = recorded.fact.release
    return latest
