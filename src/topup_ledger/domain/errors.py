"""Errors the rules raise when a fact cannot be accepted."""

from __future__ import annotations


class RuleError(ValueError):
    """A fact breaks a rule of the ledger; nothing is recorded.

    ``field`` names the input that was wrong so that the command line, an import or an API
    can point the user at it.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class MissingTerms(ValueError):
    """Reference data (tariffs, rates, calendars) needed for a calculation is absent.

    Lists every missing item, not just the first, so that an officer can fix them in one go.
    """

    def __init__(self, missing: list[str]) -> None:
        self.missing = sorted(set(missing))
        super().__init__("missing: " + "; ".join(self.missing))
