"""``python -m topup_ledger`` runs the same program as ``topup``."""

from topup_ledger.cli import run

if __name__ == "__main__":
    run()
