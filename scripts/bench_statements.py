"""Benchmark: every school's statement for a period of a county-sized LA.

    python scripts/bench_statements.py [--plans 8000] [--pdf-sample 20] [--ledger PATH]

Builds the generated county LA (three years of termly runs, as ``topup demo`` does) unless
``--ledger`` names one already built, then times, for the last period paid: the one-pass
read of the ledger, building and writing every school's HTML (and CSV) statement with the
index, one school's statement on its own (its own pass), and PDF for a sample of schools
(WeasyPrint lays out each page; the figure per school says what all of them would take).
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from topup_ledger.domain import events as ev
from topup_ledger.services.demo import build_demo
from topup_ledger.statements import statement_for, write_period
from topup_ledger.statements.build import build_statement
from topup_ledger.statements.render import render_html, render_pdf
from topup_ledger.statements.source import read_view
from topup_ledger.storage.store import EventStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pdf-sample", type=int, default=20)
    parser.add_argument("--ledger", type=Path, help="an existing ledger (skip building one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.ledger:
            location = args.ledger
        else:
            start = time.perf_counter()
            build_demo(folder / "la", plans=args.plans, seed=args.seed)
            location = folder / "la" / "ledger.sqlite"
            print(f"built the county LA ({args.plans} plans) in {time.perf_counter() - start:.1f}s")
        store = EventStore(str(location))
        runs = [r.fact for _, r in store.recorded(types=(ev.PaymentRunRecorded.TYPE,))]
        period = runs[-1].period
        print(f"ledger: {store.max_position()} events, {len(runs)} runs; statements for {period}")

        start = time.perf_counter()
        view = read_view(store)
        read = time.perf_counter() - start
        print(f"one-pass read of the ledger:           {read:7.2f}s")

        for formats in (("html",), ("html", "csv")):
            start = time.perf_counter()
            result = write_period(store, period, folder / "out" / "-".join(formats), formats)
            took = time.perf_counter() - start
            lines = sum(len(s.lines) for s in result.statements)
            print(f"all {len(result.statements)} statements ({'+'.join(formats)}, {lines} lines, "
                  f"with index): {took:7.2f}s")

        schools = [s.school for s in result.statements]
        start = time.perf_counter()
        one = statement_for(store, schools[len(schools) // 2], period)
        print(f"one school's statement on its own:     {time.perf_counter() - start:7.2f}s "
              f"({len(one.children)} children, {len(one.changes)} changes)")

        sample = schools[: args.pdf_sample]
        warm = time.perf_counter()
        render_pdf(one)  # the first PDF of a process loads fonts: timed on its own
        print(f"PDF: first of the process (fonts):     {time.perf_counter() - warm:7.2f}s")
        start = time.perf_counter()
        for urn in sample:
            statement = build_statement(view, urn, period)
            render_pdf(statement, render_html(statement))
        each = (time.perf_counter() - start) / max(1, len(sample))
        print(f"PDF: {each:.2f}s a school over {len(sample)}; all {len(schools)} would take "
              f"about {each * len(schools):.0f}s")
        store.close()


if __name__ == "__main__":
    main()
