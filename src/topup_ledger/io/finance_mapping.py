"""The LA's finance mapping, read from the small TOML file it edits (README "Paying through
the finance system"): codes, budget-return lines, and each finance file's columns.

    subjective = "E1301"            # the subjective (nominal) code for high-needs top-up
    cfr_code = "I03"
    date_format = "%d/%m/%Y"        # strftime codes

    [budget_lines]                  # merged over the defaults; "route/setting" is narrower
    academy = "1.2.2"
    "academy/special" = "1.2.2"

    [journal.columns]               # field = header, in the finance system's order
    date = "Posting Date"
    cost_centre = "Cost Centre"
    amount = "Value"

A key left out keeps its default; a file's columns, once given, are exactly those given.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError
from topup_ledger.domain.payees import DEFAULT_MAPPING, check_mapping

TOP_KEYS = ("subjective", "cfr_code", "date_format", "budget_lines", "journal", "ap",
            "recoupment")
FILES = ("journal", "ap", "recoupment")


def read_mapping(path: Path) -> ev.FinanceMapping:
    """The mapping in ``path`` over the defaults; a RuleError naming the file and the key."""
    where = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as error:
        raise RuleError(where, f"is not TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise RuleError(where, f"is not UTF-8 text: {error}") from None
    return mapping_from(data, where)


def mapping_from(data: dict[str, Any], where: str = "mapping") -> ev.FinanceMapping:
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise RuleError(f"{where}: {unknown[0]}", "is not a key of the finance mapping (its "
                        f"keys: {', '.join(TOP_KEYS)})")
    default = DEFAULT_MAPPING

    def text(key: str, value: str) -> str:
        got = data.get(key, value)
        if not isinstance(got, str):
            raise RuleError(f"{where}: {key}", f"{got!r} must be text in quotes")
        return got.strip() if key != "date_format" else got

    lines = dict(default.budget_lines)
    given_lines = data.get("budget_lines", {})
    if not isinstance(given_lines, dict):
        raise RuleError(f"{where}: budget_lines", "must be a table: [budget_lines]")
    for key, line in given_lines.items():
        if not isinstance(line, str):
            raise RuleError(f"{where}: budget_lines", f"{key!r} = {line!r} must be text in quotes")
        lines[key] = line.strip()
    columns = {}
    for file in FILES:
        section = data.get(file, {})
        if not isinstance(section, dict) or set(section) - {"columns"}:
            raise RuleError(f"{where}: {file}", f"takes only [{file}.columns]")
        given = section.get("columns")
        if given is None:
            columns[file] = getattr(default, file)
            continue
        if not isinstance(given, dict):
            raise RuleError(f"{where}: [{file}.columns]", "must be a table of field = \"header\"")
        for field, header in given.items():
            if not isinstance(header, str):
                raise RuleError(f"{where}: [{file}.columns]",
                                f"{field!r} = {header!r} must be text in quotes")
        columns[file] = tuple((field, header.strip()) for field, header in given.items())
    mapping = ev.FinanceMapping(
        text("subjective", default.subjective), text("cfr_code", default.cfr_code),
        text("date_format", default.date_format), tuple(sorted(lines.items())),
        columns["journal"], columns["ap"], columns["recoupment"])
    return check_mapping(mapping, where)


def mapping_toml(mapping: ev.FinanceMapping) -> str:
    """The mapping as the TOML file that would set it (`topup finance mapping show`)."""
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = [f"subjective = {quoted(mapping.subjective)}", f"cfr_code = {quoted(mapping.cfr_code)}",
           f"date_format = {quoted(mapping.date_format)}", "", "[budget_lines]"]
    out += [f"{quoted(key)} = {quoted(line)}" for key, line in mapping.budget_lines]
    for file in FILES:
        out += ["", f"[{file}.columns]"]
        out += [f"{field} = {quoted(header)}" for field, header in getattr(mapping, file)]
    return "\n".join(out) + "\n"
