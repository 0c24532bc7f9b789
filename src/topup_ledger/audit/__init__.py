"""Tamper evidence: the hash chain over the ledger, seals and their verification."""
