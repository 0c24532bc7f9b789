"""topup-ledger: an event-sourced audit ledger for SEND top-up funding."""

__version__ = "0.1.0"
