"""The `topup` command line: one module per command group, each parse → call a service →
print. No rules live here."""

from topup_ledger.cli.main import main, run

__all__ = ["main", "run"]
