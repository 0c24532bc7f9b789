"""What schools owe back: the reading lives in projections/recoveries.py (statements and
projections show it too); kept here for the services and commands that import it."""

from topup_ledger.projections.recoveries import Owed, outstanding, owed_by_school, owed_rows, run_finances

__all__ = ["Owed", "outstanding", "owed_by_school", "owed_rows", "run_finances"]
