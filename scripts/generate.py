"""Write a synthetic LA as import files, batch by batch, with the script that replays it.

    python scripts/generate.py --plans 8000 --schools 450 --years 3 --seed 1 --out DIR

DIR gets one folder per payment run, ``batch-NN-before-<period>/``, holding the CSV files
(schools.csv, rates.csv, tariffs.csv, plans.csv, changes.csv; only those with rows) of what
the LA learns after the previous run and before that one; ``schedule.csv`` lists every step
in order (import a file, or pay a period) and ``run.sh`` runs them with ``topup``. The same
arguments always write the same files, streamed as they are generated, so memory stays
bounded at national scale (``--plans 640000 --schools 22000``). See
src/topup_ledger/generator.py for what the LA looks like and schemas/imports.md for the
file formats.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from topup_ledger.services.generator import write_generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic LA as topup import files.")
    parser.add_argument("--plans", type=int, default=8000, help="plans issued over the span")
    parser.add_argument("--schools", type=int, default=450)
    parser.add_argument("--years", type=int, default=3, help="academic years from 2025-26")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"generate.py: {args.out} is not empty; choose a new folder", file=sys.stderr)
        return 2
    try:
        la, written = write_generated(args.out, plans=args.plans, schools=args.schools,
                                      years=args.years, seed=args.seed)
    except ValueError as error:
        print(f"generate.py: {error}", file=sys.stderr)
        return 2
    print(la.describe())
    print(f"wrote {len(written)} files to {args.out}; replay with: bash {args.out / 'run.sh'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
