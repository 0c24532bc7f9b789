"""What was paid: payment events folded into running totals, and what each plan was paid."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field

from topup_ledger.domain import events as ev
from topup_ledger.domain.payments import PaidSoFar
from topup_ledger.projections.base import Decoder
from topup_ledger.projections.school_periods.schema import table
from topup_ledger.storage.pages import StoredRow

Line = tuple[str, str, str, str, int, int]  # plan, period, school, component, pence, position
Run = tuple[str, str, int, int, int]  # run id, period, sequence, known at, total


@dataclass
class SchoolTotal:
    """Paid to a school for a period, and the latest payment's position and run."""

    pence: int = 0
    last_position: int = 0
    last_run: str = ""


@dataclass
class Payments:
    """The payment events of one page, gathered to be written in one go."""

    lines: list[Line] = field(default_factory=list)
    by_school: dict[tuple[str, str], SchoolTotal] = field(default_factory=dict)  # (school, period)
    runs: list[Run] = field(default_factory=list)
    cushion_paid: bool = False  # a school-level line (a cushion's) among the lines
    withdrawn: list[str] = field(default_factory=list)  # runs withdrawn: they settle nothing

    def gather(self, n: StoredRow, decoder: Decoder) -> None:
        if n.topic == ev.SchoolPaid.TYPE:
            data = decoder.data(n.topic, n.state)
            school, run_id, position = data["school"], data["run_id"], n.id
            append = self.lines.append
            by_period: dict[str, int] = {}
            for line in data["lines"]:
                plan, amount, period = line["plan"], line["amount"], line["for_period"]
                # School-level lines (a cushion) are kept under the plan ''.
                if not plan:
                    self.cushion_paid = True
                append((plan, period, school, line.get("component", "base"), amount, position))
                by_period[period] = by_period.get(period, 0) + amount
            for period, amount in by_period.items():
                total = self.by_school.setdefault((school, period), SchoolTotal())
                total.pence += amount
                total.last_position, total.last_run = position, run_id
        elif n.topic == ev.PaymentRunRecorded.TYPE:
            data = decoder.data(n.topic, n.state)
            # Settled counts from what the run knew (its seal's position), not from where its
            # record landed: a concurrent writer's fact can land in between, unpaid.
            known_at = ev.sealed_position(data["seal"])
            self.runs.append((data["run_id"], data["period"], data["sequence"], known_at, data["total"]))
        elif n.topic == ev.RunWithdrawn.TYPE:
            # its payments are reversed in its own stream: what is settled counts from the
            # run before it, as the payment run's window does
            self.withdrawn.append(decoder.data(n.topic, n.state)["run_id"])

    def write(self, conn: sqlite3.Connection, mark_stale: bool) -> None:
        """Write what was gathered; ``mark_stale``: mark the plan-periods paid for ``recheck``."""
        if self.lines:
            # Appended as they come and summed in key order before the next refresh
            # (``sum_lines``): adding each line into its plan's row would write all over the table.
            conn.executemany(f"INSERT INTO {table('line')} VALUES (?, ?, ?, ?, ?, ?)", self.lines)
            if mark_stale:
                # A payment changes what is paid, not what is due: only the explanation of
                # the plan's differences in the periods it paid needs working out again.
                conn.executemany(f"INSERT OR IGNORE INTO {table('stale')} VALUES (?, ?)",
                                 {line[:2] for line in self.lines if line[0]})
        if self.by_school:
            conn.executemany(
                f"INSERT INTO {table('spaid')} VALUES (?, ?, ?, ?, ?) ON CONFLICT (school, period) "
                "DO UPDATE SET pence = pence + excluded.pence, "
                "last_position = excluded.last_position, last_run = excluded.last_run",
                ((school, period, t.pence, t.last_position, t.last_run)
                 for (school, period), t in self.by_school.items()))
        if self.runs:
            conn.executemany(f"INSERT INTO {table('run')} VALUES (?, ?, ?, ?, ?)", self.runs)
        if self.withdrawn:
            conn.executemany(f"DELETE FROM {table('run')} WHERE run_id = ?",
                             ((run,) for run in self.withdrawn))


def sum_lines(conn: sqlite3.Connection) -> None:
    """Sum the payment lines folded since the last refresh into paid per plan, period,
    school and component (``last_position``: the latest line's)."""
    # 'WHERE true': SQLite's documented way to keep ON CONFLICT from reading as a join.
    conn.execute(
        f"INSERT INTO {table('paid')} SELECT plan, period, school, component, SUM(pence), "
        f"MAX(position) FROM {table('line')} WHERE true GROUP BY plan, period, school, component "
        "ORDER BY plan, period, school, component "
        "ON CONFLICT (plan, period, school, component) DO UPDATE SET "
        "pence = pence + excluded.pence, last_position = excluded.last_position")
    conn.execute(f"DELETE FROM {table('line')}")


def paid_so_far(conn: sqlite3.Connection, plans: list[str],
                periods: list[str] | None = None) -> defaultdict[str, PaidSoFar]:
    """What each plan was paid, per period, school and component (only for ``periods``
    if given), with the position of each period's latest payment."""
    paid: defaultdict[str, PaidSoFar] = defaultdict(PaidSoFar)
    marks = ",".join("?" * len(plans))
    within = "" if periods is None else f" AND period IN ({','.join('?' * len(periods))})"
    so_far = PaidSoFar()
    current = None
    # In key order, so each plan's rows come together and the latest payment per period
    # is kept with a comparison instead of a lookup per row.
    for plan, period, school, component, pence, last in conn.execute(
            f"SELECT plan, period, school, component, pence, last_position FROM {table('paid')} "
            f"WHERE plan IN ({marks}){within} ORDER BY plan, period, school, component",
            [*plans, *(periods or ())]):
        if plan != current:
            current, so_far = plan, paid[plan]
            amounts, last_paid_at = so_far.amounts, so_far.last_paid_at
        amounts[(period, school, component)] = pence
        if last > last_paid_at.get(period, 0):
            last_paid_at[period] = last
    return paid
