#!/usr/bin/env python3
"""Mutation testing for the money rules: would the money tests notice a small wrong change?

The repository's src/, tests/, projections/ and schemas/ (and pyproject.toml) are copied to a
temporary directory, once per job; /work/main itself is never touched. One mutation at a time
is applied to the copy of one file of the money rules (``src/topup_ledger/domain/*.py``) or of
the payment run's fast paths (``engine/window.py``, ``engine/run.py``, ``engine/pricing.py``),
and the money tests run against the copy (``PYTHONPATH=<copy>/src``, never the editable
install), stopping at the first failure. A mutant is **killed** when a test fails (or the
mutated package no longer imports), **survives** when every test passes, and **times out**
when the tests run past ``--timeout`` (counted as killed in the score: the mutant changed
what the tests saw). The score is (killed + timed out) / mutants run.

Operators (simple AST ones, each applied where the source has it):

- comparison flips ``<`` ↔ ``<=``, ``>`` ↔ ``>=``, ``==`` ↔ ``!=`` (each operator of a chain);
- ``+`` ↔ ``-`` (binary and augmented);
- integer constants ±1 (not ``True``/``False``);
- ``min`` ↔ ``max``;
- ``and`` ↔ ``or``;
- an ``if`` statement's condition negated.

Not mutated: code inside ``assert`` statements and f-strings, and lines marked
``# pragma: no mutate``. Hypothesis runs with the test suite's ``mutants`` profile (fixed
examples, no database), so a mutant is killed or not the same way every time.

    python3 scripts/mutants.py --list                      # the mutants, not run
    python3 scripts/mutants.py --sample 150 --jobs 2       # a seeded random sample
    python3 scripts/mutants.py --files src/topup_ledger/domain/cushion.py
    python3 scripts/mutants.py --only domain/cushion.py:41:8:1   # re-run named mutants
    python3 scripts/mutants.py --rev HEAD --json out.json  # src as committed, tests as they are
    python3 scripts/mutants.py --tree /tmp/snapshot --label "abc1234 + new tests"
    python3 scripts/mutants.py --sample 220 --results run.jsonl   # resumable: run it again

Exit code: 0 if every mutant run was killed (or timed out), 1 if any survived, 2 on a
problem (the unmutated copy fails its tests, bad arguments).
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import copy
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("src", "tests", "projections", "schemas", "pyproject.toml")
PACKAGE = "src/topup_ledger/"
TARGETS = ("src/topup_ledger/domain/*.py", "src/topup_ledger/engine/window.py",
           "src/topup_ledger/engine/run.py", "src/topup_ledger/engine/pricing.py")
# The money tests (and the boundary tests written to kill survivors), the quick and sharp ones
# first: most mutants die in the first seconds.
MONEY_TESTS = (
    "tests/test_money_worked.py", "tests/test_money.py", "tests/test_rule_boundaries.py",
    "tests/test_protection_policy.py", "tests/test_entitlement.py",
    "tests/test_plan_timeline.py", "tests/test_calendar.py", "tests/test_settlement.py",
    "tests/test_payments.py", "tests/test_calendar_monthly_payments.py",
    "tests/test_entitlement_properties.py", "tests/test_payrun_settled.py",
    "tests/test_payment_properties.py", "tests/test_money_differential.py",
    "tests/test_pricing_shared.py", "tests/test_causes.py", "tests/test_in_year_revisions.py",
    "tests/test_cushion_policy.py", "tests/test_protection_facts.py", "tests/test_school_days.py",
    "tests/test_finance.py", "tests/test_remittance.py", "tests/test_finance_under_controls.py",
    "tests/test_cost_neutrality.py",
)
NO_MUTATE = "pragma: no mutate"

COMPARISONS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
}
SYMBOLS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
           ast.Add: "+", ast.Sub: "-", ast.And: "and", ast.Or: "or"}


@dataclass(frozen=True)
class Mutant:
    path: str  # relative to the repository, e.g. src/topup_ledger/domain/cushion.py
    line: int
    col: int
    end_line: int
    end_col: int
    replacement: str  # the source text put in place of [line:col, end_line:end_col]
    description: str  # e.g. "`<` → `<=`"
    n: int = 0  # tells apart mutants at the same place

    @property
    def id(self) -> str:
        return f"{self.path.removeprefix(PACKAGE)}:{self.line}:{self.col}:{self.n}"

    def apply(self, source: str) -> str:
        lines = source.splitlines(keepends=True)
        start = sum(len(line) for line in lines[:self.line - 1]) + byte_col(lines[self.line - 1], self.col)
        end = sum(len(line) for line in lines[:self.end_line - 1]) + byte_col(lines[self.end_line - 1],
                                                                            self.end_col)
        return source[:start] + self.replacement + source[end:]


def byte_col(line: str, col: int) -> int:
    """ast's col_offset counts UTF-8 bytes; the index into the str."""
    return len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))


# Finding mutants.


class Finder(ast.NodeVisitor):
    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.lines = source.splitlines()
        self.found: list[Mutant] = []

    def add(self, node: ast.AST, replacement: str, description: str) -> None:
        line = node.lineno  # type: ignore[attr-defined]
        if NO_MUTATE in self.lines[line - 1]:
            return
        self.found.append(Mutant(self.path, line, node.col_offset, node.end_lineno,  # type: ignore
                                 node.end_col_offset, replacement, description))  # type: ignore

    def expression(self, node: ast.expr, mutated: ast.expr, description: str) -> None:
        self.add(node, f"({ast.unparse(mutated)})", description)

    # Not mutated: invariants and messages.
    def visit_Assert(self, node: ast.Assert) -> None:
        return

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return

    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            flipped = COMPARISONS.get(type(op))
            if flipped is not None:
                mutated = copy.deepcopy(node)
                mutated.ops[i] = flipped()
                self.expression(node, mutated, f"`{SYMBOLS[type(op)]}` → `{SYMBOLS[flipped]}`")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = {ast.Add: ast.Sub, ast.Sub: ast.Add}.get(type(node.op))
        if swap is not None:
            mutated = copy.deepcopy(node)
            mutated.op = swap()
            self.expression(node, mutated, f"`{SYMBOLS[type(node.op)]}` → `{SYMBOLS[swap]}`")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        swap = {ast.Add: ast.Sub, ast.Sub: ast.Add}.get(type(node.op))
        if swap is not None:
            mutated = copy.deepcopy(node)
            mutated.op = swap()
            self.add(node, ast.unparse(mutated),
                     f"`{SYMBOLS[type(node.op)]}=` → `{SYMBOLS[swap]}=`")
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        swap = ast.Or if isinstance(node.op, ast.And) else ast.And
        mutated = copy.deepcopy(node)
        mutated.op = swap()
        self.expression(node, mutated, f"`{SYMBOLS[type(node.op)]}` → `{SYMBOLS[swap]}`")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool):
            for delta in (1, -1):
                self.add(node, f"({value + delta})", f"`{value}` → `{value + delta}`")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("min", "max"):
            other = "max" if func.id == "min" else "min"
            self.add(func, other, f"`{func.id}` → `{other}`")
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        self.add(node.test, f"not ({ast.unparse(node.test)})", "`if` condition negated")
        self.generic_visit(node)


def mutants_of(root: Path, relative: str) -> list[Mutant]:
    source = (root / relative).read_text(encoding="utf-8")
    finder = Finder(relative, source)
    finder.visit(ast.parse(source))
    found: list[Mutant] = []
    seen: dict[tuple[int, int], int] = {}
    texts = set()
    for mutant in finder.found:
        text = mutant.apply(source)
        if text == source or text in texts:
            continue
        try:
            compile(text, relative, "exec")
        except SyntaxError:
            continue
        texts.add(text)
        n = seen.get((mutant.line, mutant.col), 0) + 1
        seen[mutant.line, mutant.col] = n
        found.append(Mutant(**{**asdict(mutant), "n": n}))
    return found


def target_files(root: Path, patterns: list[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            relative = path.relative_to(root).as_posix()
            if path.suffix == ".py" and relative not in files:
                files.append(relative)
    return files


# Running them.


@dataclass
class Outcome:
    id: str
    path: str
    line: int
    description: str
    status: str  # killed | survived | timeout
    seconds: float
    code: str  # the mutated line (its first line)
    detail: str = ""  # the first failing test, if it says


def copy_tree(target: Path, rev: str | None, tree: Path = ROOT) -> None:
    """The parts of the repository the tests need, from the working tree (or ``tree``) or,
    for src, projections and schemas, from commit ``rev``."""
    target.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
    for name in COPIED:
        source = tree / name
        if rev is not None and name in ("src", "projections", "schemas"):
            continue
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, target / name)
    if rev is not None:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src", "projections", "schemas"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)


def pytest_command(tests: list[str], keyword: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header",
            "-o", "addopts=", *tests, "-k", keyword]


def test_env(copy_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TOPUP_TEST_POSTGRES_URL", "TOPUP_REQUIRE_POSTGRES", "PYTHONPATH")}
    env.update(PYTHONPATH=str(copy_root / "src"), PYTHONDONTWRITEBYTECODE="1",
               HYPOTHESIS_PROFILE="mutants", PYTHONHASHSEED="0")
    return env


def run_tests(copy_root: Path, tests: list[str], keyword: str, timeout: float
              ) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, the first FAILED/ERROR line if any)."""
    started = time.monotonic()
    process = subprocess.Popen(pytest_command(tests, keyword), cwd=copy_root, env=test_env(copy_root),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the tests' forked children too
        process.communicate()
        return "timeout", time.monotonic() - started, ""
    seconds = time.monotonic() - started
    first = next((line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))), "")
    if process.returncode == 0:
        return "passed", seconds, ""
    if process.returncode == 5:
        raise SystemExit(f"mutants.py: pytest collected no tests in {copy_root}:\n{output[-2000:]}")
    return "failed", seconds, first or output.strip().splitlines()[-1] if output.strip() else ""


def run_mutants(mutants: list[Mutant], copies: list[Path], tests: list[str], keyword: str,
                timeout: float, progress: bool, results: Path | None = None) -> list[Outcome]:
    """Each mutant's outcome; with ``results``, those already in that file (JSON lines, one
    outcome each) are taken from it and each new one is appended as it is known, so that an
    interrupted run can go on where it stopped."""
    free = list(copies)
    lock = threading.Lock()
    done = {o.id: o for o in read_results(results)} if results else {}
    outcomes: list[Outcome] = [done[m.id] for m in mutants if m.id in done]
    mutants_left = [m for m in mutants if m.id not in done]

    def one(mutant: Mutant) -> Outcome:
        with lock:
            root = free.pop()
        target = root / mutant.path
        original = target.read_text(encoding="utf-8")
        mutated = mutant.apply(original)
        try:
            target.write_text(mutated, encoding="utf-8")
            result, seconds, detail = run_tests(root, tests, keyword, timeout)
        finally:
            target.write_text(original, encoding="utf-8")
            with lock:
                free.append(root)
        status = {"passed": "survived", "failed": "killed", "timeout": "timeout"}[result]
        code = mutated.splitlines()[mutant.line - 1].strip()
        outcome = Outcome(mutant.id, mutant.path, mutant.line, mutant.description, status, seconds,
                          code, detail)
        if progress:
            with lock:
                count = len(outcomes) + 1
                print(f"[{count}/{len(mutants)}] {status:8} {seconds:6.1f}s {mutant.id} "
                      f"{mutant.description}", flush=True)
        with lock:
            outcomes.append(outcome)
            if results is not None:
                with results.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(asdict(outcome)) + "\n")
        return outcome

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(copies)) as pool:
        list(pool.map(one, mutants_left))
    order = {m.id: i for i, m in enumerate(mutants)}
    return sorted(outcomes, key=lambda o: order[o.id])


def read_results(path: Path | None) -> list[Outcome]:
    if path is None or not path.exists():
        return []
    return [Outcome(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def select(mutants: list[Mutant], args: argparse.Namespace) -> list[Mutant]:
    if args.only:
        wanted = set(args.only)
        chosen = [m for m in mutants if m.id in wanted]
        missing = wanted - {m.id for m in chosen}
        if missing:
            raise SystemExit(f"mutants.py: no such mutant: {', '.join(sorted(missing))}")
        return chosen
    if args.sample is not None and args.sample < len(mutants):
        rng = random.Random(args.seed)
        picked = set(rng.sample(range(len(mutants)), args.sample))
        mutants = [m for i, m in enumerate(mutants) if i in picked]
    if args.limit is not None:
        mutants = mutants[:args.limit]
    return mutants


def report(outcomes: list[Outcome], total: int, baseline: float, rev: str) -> dict[str, object]:
    counts = {status: sum(o.status == status for o in outcomes)
              for status in ("killed", "survived", "timeout")}
    run = len(outcomes)
    score = (counts["killed"] + counts["timeout"]) / run if run else 0.0
    print()
    print(f"source: {rev}; mutants found: {total}; run: {run}; baseline {baseline:.1f}s")
    print(f"killed {counts['killed']}, timed out {counts['timeout']}, survived {counts['survived']}: "
          f"score {score:.1%}")
    survivors = [o for o in outcomes if o.status == "survived"]
    if survivors:
        print("\nsurvivors:")
        for o in survivors:
            print(f"  {o.path}:{o.line}  {o.description}  [{o.id}]\n      {o.code}")
    return {"source": rev, "found": total, "run": run, **counts, "score": score,
            "baseline_seconds": baseline, "outcomes": [asdict(o) for o in outcomes]}


def revision(rev: str | None) -> str:
    """What was measured: the commit (and whether the working tree differs from it)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    if rev is not None:
        return f"{git('rev-parse', '--short', rev)} (src as committed; tests from the working tree)"
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src", "tests")
    return f"{head}{' + uncommitted changes' if dirty else ''} (working tree)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", nargs="+", metavar="GLOB", help="files to mutate, relative to "
                        f"the repository (default: {' '.join(TARGETS)})")
    parser.add_argument("--tests", nargs="+", metavar="FILE", help="test files to run (default: "
                        "the money tests)")
    parser.add_argument("-k", dest="keyword", default="not postgres", help="pytest -k expression "
                        "(default: 'not postgres')")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument("--limit", type=int, help="run only the first N mutants (after --sample)")
    parser.add_argument("--sample", type=int, help="run a random sample of N mutants")
    parser.add_argument("--seed", type=int, default=27, help="the sample's seed (default 27)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants (ids as listed)")
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: 3 x the "
                        "unmutated run, at least 60)")
    parser.add_argument("--rev", help="take src/ (and projections/, schemas/) from this commit")
    parser.add_argument("--tree", type=Path, default=ROOT, help="copy from this directory instead "
                        "of the repository (it must hold src/, tests/, projections/, schemas/)")
    parser.add_argument("--label", help="what the report says was measured (default: the commit "
                        "and whether the working tree differs)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--json", type=Path, help="write every outcome to this JSON file")
    parser.add_argument("--results", type=Path, help="append each outcome to this file as it is "
                        "known, and skip the mutants it already holds (to resume a run)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    parser.add_argument("--quiet", action="store_true", help="no line per mutant")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="topup-mutants-"))
    try:
        first = work / "copy-1"
        copy_tree(first, args.rev, args.tree.resolve())
        files = target_files(first, args.files or list(TARGETS))
        if not files:
            parser.error("no file to mutate")
        everything = [m for path in files for m in mutants_of(first, path)]
        if args.list:
            for m in everything:
                print(f"{m.id:45} {m.description:24} {m.path}:{m.line}")
            print(f"{len(everything)} mutants in {len(files)} files")
            return 0
        chosen = select(everything, args)
        tests = [t for t in (args.tests or MONEY_TESTS) if (first / t).exists()]
        if not tests:
            parser.error("no test file to run")
        rev = args.label or revision(args.rev)
        print(f"mutating {len(files)} files ({len(everything)} mutants, running {len(chosen)}) "
              f"of {rev}; tests: {' '.join(tests)}", flush=True)
        status, baseline, detail = run_tests(first, tests, args.keyword, timeout=3600)
        if status != "passed":
            print(f"mutants.py: the unmutated copy does not pass its tests ({status}): {detail}",
                  file=sys.stderr)
            return 2
        timeout = args.timeout or max(60.0, 3 * baseline)
        print(f"unmutated: tests pass in {baseline:.1f}s; timeout per mutant {timeout:.0f}s", flush=True)
        copies = [first]
        for n in range(2, args.jobs + 1):
            other = work / f"copy-{n}"
            shutil.copytree(first, other)
            copies.append(other)
        started = time.monotonic()
        outcomes = run_mutants(chosen, copies, tests, args.keyword, timeout, not args.quiet, args.results)
        summary = report(outcomes, len(everything), baseline, rev)
        print(f"\n{len(chosen)} mutants in {time.monotonic() - started:.0f}s with {args.jobs} jobs")
        if args.json:
            args.json.write_text(json.dumps({**summary, "files": files, "tests": tests,
                                             "sample": args.sample, "seed": args.seed}, indent=1))
        return 1 if summary["survived"] else 0
    finally:
        if args.keep:
            print(f"copies kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
