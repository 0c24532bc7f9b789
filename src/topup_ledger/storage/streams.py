"""The names of the ledger's streams: one per plan, school and reference fact, and the
streams that order payment runs, seals and the digests of written files."""

from __future__ import annotations

PAYMENTS_STREAM = "payments"  # its version orders every run, so two runs at once conflict
SEALS_STREAM = "seals"  # seals recorded by payment runs and on demand alike
KEYS_STREAM = "keys"  # the ledger key's rotations (storage.key_stretches)


def plan_stream(ref: str) -> str:
    return f"plan:{ref}"


def school_stream(urn: str) -> str:
    return f"school:{urn}"


def run_stream(run_id: str) -> str:
    """A run's school payments, one event per school."""
    return f"run:{run_id}"


def files_stream(run_id: str) -> str:
    """The digests of the files written for a run."""
    return f"files:{run_id}"


def payee_stream(urn: str) -> str:
    """Who a school is paid through, fact after fact (``school.payee_set``)."""
    return f"payee:{urn}"


FINANCE_MAPPING_STREAM = "finance-mapping"


def finance_stream(run_id: str) -> str:
    """What a run's finance files need besides its payments (``payment.run_finance``)."""
    return f"finance:{run_id}"
