"""Text that cannot be turned against the LA: control characters refused at input, and
spreadsheet formulas neutralised in the CSVs the product writes (issue 21).

Refused in every text field, at import and on the command line: C0 controls (tab, CR and LF
included, except line breaks in the free-text reasons and notes: names, references and codes
are one line), DEL, C1 controls, and the
bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) that make a
name read differently from what it holds.

Neutralised in CSV cells: text starting with ``=``, ``+``, ``-``, ``@``, tab or CR, which a
spreadsheet would run as a formula, gets a leading ``'`` (as spreadsheets themselves do). A
cell that is a number (``-12.50``) is left as it is.
"""

from __future__ import annotations

import re

_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_REFUSED_IN_PROSE = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MULTILINE_FIELDS = frozenset({"reason", "note", "notes"})  # free text: line breaks allowed
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
FORMULA_REGEX = r"^[=+\-@\t\r]"
NUMBER_REGEX = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


def refused_character(text: str, field: str = "") -> str | None:
    """A description of the first refused character in ``text`` (None if there is none);
    ``field`` names it (its reason or note may hold line breaks)."""
    pattern = _REFUSED_IN_PROSE if field.lower() in MULTILINE_FIELDS else _REFUSED
    match = pattern.search(text)
    if match is None:
        return None
    char = match.group()
    code = f"U+{ord(char):04X}"
    kind = ("a bidirectional control" if "\u202a" <= char <= "\u2069" else
            "a line break" if char in "\r\n" else "a tab" if char == "\t" else "a control character")
    return f"contains {kind} ({code}) at character {match.start() + 1}: refused"


def neutralised(cell: str) -> str:
    """``cell`` as a CSV cell a spreadsheet will show, never run."""
    if cell.startswith(_FORMULA_START) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def shown(cell: str) -> str:
    """``cell`` with any refused character written as its code point, for a rejects file."""
    return _REFUSED.sub(lambda m: f"<U+{ord(m.group()):04X}>", cell)
