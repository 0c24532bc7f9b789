"""The ``sp_`` tables: what the school-periods fold keeps in the projection file."""

from __future__ import annotations

PREFIX = "sp"
SCHEMA = 8  # raised when these tables or what they hold change: the fold starts again from nothing


def table(name: str) -> str:
    """'due' → 'sp_due'."""
    return f"{PREFIX}_{name}"


def tables() -> list[str]:
    """The statements that create the fold's own tables (those of every plan fold aside).

    Folded: paid per plan, period, school and component (``paid``, summed from the payment
    ``line``s), per school and period (``spaid``, school-level lines such as a cushion's
    among them) and the runs (``run``). Worked out per plan: ``due``, what it was at each
    school in each period (``summary``), the events that explain a difference between due
    and paid (``explain``), what cannot be priced (``missing``) and its part of a school's
    cushion (``cushion``). Marks: plan-periods paid since they were explained (``stale``)
    and plans whose rows are to be extended (``extend``). The periods reached (``period``).
    """
    return [
        f"CREATE TABLE {table('paid')} (plan TEXT NOT NULL, period TEXT NOT NULL, school TEXT NOT NULL, "
        "component TEXT NOT NULL, pence INTEGER NOT NULL, last_position INTEGER NOT NULL, "
        "PRIMARY KEY (plan, period, school, component)) WITHOUT ROWID",
        f"CREATE TABLE {table('line')} (plan TEXT NOT NULL, period TEXT NOT NULL, school TEXT NOT NULL, "
        "component TEXT NOT NULL, pence INTEGER NOT NULL, position INTEGER NOT NULL)",
        f"CREATE TABLE {table('spaid')} (school TEXT NOT NULL, period TEXT NOT NULL, "
        "pence INTEGER NOT NULL, last_position INTEGER NOT NULL, last_run TEXT NOT NULL, "
        "PRIMARY KEY (school, period)) WITHOUT ROWID",
        f"CREATE TABLE {table('run')} (run_id TEXT PRIMARY KEY, period TEXT NOT NULL, "
        "sequence INTEGER NOT NULL, known_at INTEGER NOT NULL, total INTEGER NOT NULL)",
        f"CREATE TABLE {table('due')} (plan TEXT NOT NULL, period TEXT NOT NULL, school TEXT NOT NULL, "
        "component TEXT NOT NULL, pence INTEGER NOT NULL, "
        "PRIMARY KEY (plan, period, school, component)) WITHOUT ROWID",
        f"CREATE TABLE {table('summary')} (plan TEXT NOT NULL, period TEXT NOT NULL, "
        "school TEXT NOT NULL, basis TEXT NOT NULL, band TEXT NOT NULL, days INTEGER NOT NULL, "
        "run_rate INTEGER, PRIMARY KEY (plan, period, school)) WITHOUT ROWID",
        f"CREATE TABLE {table('explain')} (plan TEXT NOT NULL, period TEXT NOT NULL, "
        "school TEXT NOT NULL, position INTEGER NOT NULL, id TEXT NOT NULL, "
        "PRIMARY KEY (plan, period, school, id)) WITHOUT ROWID",
        f"CREATE TABLE {table('missing')} (plan TEXT NOT NULL, period TEXT NOT NULL, "
        "school TEXT NOT NULL, message TEXT NOT NULL)",
        f"CREATE INDEX {table('missing_plan')} ON {table('missing')} (plan)",
        f"CREATE TABLE {table('cushion')} (plan TEXT NOT NULL, year TEXT NOT NULL, "
        "school TEXT NOT NULL, part TEXT NOT NULL, PRIMARY KEY (plan, year, school)) WITHOUT ROWID",
        f"CREATE TABLE {table('stale')} (plan TEXT NOT NULL, period TEXT NOT NULL, "
        "PRIMARY KEY (plan, period)) WITHOUT ROWID",
        f"CREATE TABLE {table('extend')} (plan TEXT PRIMARY KEY) WITHOUT ROWID",
        f"CREATE TABLE {table('period')} (id TEXT PRIMARY KEY, start TEXT NOT NULL, "
        "end TEXT NOT NULL) WITHOUT ROWID"]
