"""Render a statement: HTML (self-contained: CSS and the chart inline, nothing fetched), PDF
from that same HTML (WeasyPrint, print media), and CSV (the statement's payment lines, in
the columns of the payment line file)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fractions import Fraction
from functools import cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from topup_ledger.domain.money import pounds, pounds_for_people, round_half_up
from topup_ledger.io.private import write_private
from topup_ledger.io.text_safety import neutralised
from topup_ledger.statements.chart import bar_chart
from topup_ledger.statements.model import LineRow, MoneyMoved, RunRef, Statement
from topup_ledger.statements.remittance import remittance_of
from topup_ledger.statements.workings import exact_pounds, share_words

SETTING_WORDS = {"mainstream": "mainstream school", "resourced": "resourced provision / specialist unit",
                 "special": "special school", "independent": "independent school",
                 "post16": "post-16 setting"}
CSV_COLUMNS = ["run_id", "run_kind", "period", "school_urn", "plan_ref", "pupil_ref", "line_kind",
               "for_period", "amount_pence", "amount_gbp", "basis", "band_or_hours", "days",
               "reason", "caused_by", "seal"]


def _day(value: date | datetime) -> str:
    return f"{value.day} {value:%B %Y}"


def _moment(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value.day} {value:%B %Y %H:%M:%S} UTC"


def _signed(pence: int) -> str:
    return ("+" if pence > 0 else "") + pounds_for_people(pence)


def _band_or_hours(text: str) -> str:
    return text.replace("→", " → ")


def _anchor(event_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", event_id)


def _rounded(pence: Fraction) -> str:
    return pounds_for_people(round_half_up(pence))


LINE_WORDS = {"regular": "regular", "arrears": "arrears", "clawback": "claw-back",
              "protection": "protection", "cushion": "cushion"}


_BARE_POUNDS = re.compile(r"£(-?)(\d{4,})\.(\d\d)\b")


def money_for_people(text: str) -> str:
    """A recorded line's reason with its amounts in the statement's one money format
    (£1005.58 → £1,005.58): the payment files keep the text as recorded."""
    return _BARE_POUNDS.sub(lambda m: pounds_for_people(
        (-1 if m.group(1) else 1) * (int(m.group(2)) * 100 + int(m.group(3)))), text)


def moves_between_components(lines: list[MoneyMoved]) -> bool:
    """Arrears and claw-back of one plan and period that cancel out across base and
    protection: the same money, now paid as protection (or as base), nothing more."""
    by: dict[tuple[str, str], int] = {}
    components: dict[tuple[str, str], set[str]] = {}
    for m in lines:
        if m.kind in ("arrears", "clawback"):
            key = (m.plan, m.for_period)
            by[key] = by.get(key, 0) + m.amount
            components.setdefault(key, set()).add(m.component)
    return any(total == 0 and len(components[key]) > 1 for key, total in by.items())


def line_words(line: LineRow | MoneyMoved) -> str:
    """A line's kind in words, naming protection when an arrears or claw-back line is for it."""
    words = LINE_WORDS.get(line.kind, line.kind)
    if line.component == "protection" and line.kind in ("arrears", "clawback"):
        return f"{words} of protection"
    return words


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("topup_ledger.statements", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(money=pounds_for_people, signed=_signed, day=_day, moment=_moment,
                       bh=_band_or_hours, anchor=_anchor, exact=exact_pounds, share=share_words,
                       rounded=_rounded)
    env.filters.update(people=money_for_people)
    env.globals.update(line_words=line_words, moves_between_components=moves_between_components)
    return env


def render_html(statement: Statement) -> str:
    s = statement
    return environment().get_template("statement.html.j2").render(
        s=s, setting_words=SETTING_WORDS.get(s.setting, s.setting),
        ytd={kind: amount for kind, _, amount in s.year_to_date.rows()},
        fytd={kind: amount for kind, _, amount in s.financial_year_to_date.rows()},
        remittance=remittance_of(s),
        chart=Markup(bar_chart(s.chart, f"Top-up paid to {s.school_name} by period")),
        listed={c.id for c in s.changes},
        shared_note=any(m.shared for c in s.changes for m in c.lines))


def render_pdf(statement: Statement, html: str | None = None) -> bytes:
    """The same HTML, laid out for print by WeasyPrint (A4, the stylesheet's print rules)."""
    try:
        import weasyprint
    except (ImportError, OSError) as error:  # OSError: Pango missing from the system
        raise RuntimeError(f"PDF statements need WeasyPrint and Pango: {error}") from None
    # PDF/UA-1: a tagged PDF (headings, tables with their headers, reading order) that screen
    # readers can follow; WeasyPrint 62 and later write the structure tree from the HTML.
    return weasyprint.HTML(string=html or render_html(statement)).write_pdf(
        pdf_variant="pdf/ua-1", pdf_tags=True)


def render_csv(statement: Statement) -> str:
    s = statement
    kinds = {r.run_id: "main" if r.sequence == 1 else "supplementary" for r in s.runs}
    seals = {r.run_id: r.seal for r in s.runs}
    out = io.StringIO()
    out.write("\ufeff")  # a byte-order mark: Excel then reads the file as UTF-8 (£, →)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in s.lines:
        row = [line.run_id, kinds[line.run_id], s.period, s.school, line.plan, line.pupil,
               line.kind, line.for_period, line.amount, pounds(line.amount), line.basis,
               line.band_or_hours, line.days, line.reason, " ".join(line.caused_by),
               seals[line.run_id]]
        # text a spreadsheet would run as a formula is neutralised; numbers stay numbers
        writer.writerow([neutralised(v) if isinstance(v, str) else v for v in row])
    return out.getvalue()


FORMATS = ("html", "pdf", "csv")


def file_name(statement: Statement, fmt: str) -> str:
    stem = f"statement-{statement.school}-{statement.period.replace('/', '-')}"
    if statement.as_of is not None:
        stem += f"-as-of-{statement.as_of.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return f"{stem}.{fmt}"


def write_statement(statement: Statement, out: Path, formats: Sequence[str] = ("html",)) -> list[Path]:
    written = []
    html = render_html(statement) if {"html", "pdf"} & set(formats) else ""
    for fmt in formats:
        path = out / file_name(statement, fmt)
        if fmt == "html":
            write_private(path, html)
        elif fmt == "pdf":
            write_private(path, render_pdf(statement, html))
        elif fmt == "csv":
            write_private(path, render_csv(statement))
        else:
            raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
        written.append(path)
    return written


@dataclass(frozen=True)
class IndexFile:
    name: str
    label: str


@dataclass(frozen=True)
class IndexRow:
    urn: str
    name: str
    children: int
    changes: int
    total: int
    files: tuple[IndexFile, ...]


def render_index(period: str, rows: list[IndexRow], runs: list[RunRef], position: int,
                 as_of: datetime | None) -> str:
    return environment().get_template("index.html.j2").render(
        period=period, rows=rows, runs=runs, position=position, as_of=as_of,
        total=sum(r.total for r in rows))
