#!/usr/bin/env python3
"""Verify a topup-ledger event export on its own: the Python standard library and pyarrow only.

    python scripts/verify_export.py events.parquet [--digest HEX@POSITION ...] [--json]

An export (``topup export events``) holds one row per event in ledger order with the link of the
hash chain after it. This script recomputes the chain from the rows alone, following the
specification in ``schemas/chain.md`` (it shares no code with topup-ledger), and checks:

- each row's link is the one recomputed (a row changed after export no longer matches);
- positions increase and each stream's versions run 1, 2, 3, … (rows deleted, moved or inserted);
- the columns agree with the payload they were taken from (schema version, recorded time,
  effective date);
- every seal and payment-run record in the export matches the chain at the position it names;
- every digest given (printed on a payment file or a school statement, or kept by an auditor)
  matches the chain at its position. Only a digest kept outside the ledger shows a ledger (or an
  export) rewritten with every later link and seal recomputed, or cut short.

Exit status: 0 if everything matches, 1 if anything does not, 2 if the file cannot be read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from typing import Any

import pyarrow.parquet as pq

FORMAT = b"topup-chain/1\n"
FORMAT_2 = b"topup-chain/2\n"  # events that name who recorded them (the payload's "by")
GENESIS = bytes(32)
COLUMNS = ["position", "stream", "version", "type", "schema_version", "recorded_at", "effective",
           "recorded_by", "payload", "link"]
DIGEST = re.compile(r"^([0-9a-f]{64})@(0|[1-9][0-9]*)$")
BATCH = 10_000


def field(value: bytes) -> bytes:
    """One field of the canonical encoding: decimal byte length, ':', the bytes, newline."""
    return str(len(value)).encode("ascii") + b":" + value + b"\n"


def names_recorder(payload: str) -> bool:
    """Whether the payload says who recorded the event (then it is chained as topup-chain/2)."""
    try:
        envelope = json.loads(payload)
    except ValueError:
        return False
    return isinstance(envelope, dict) and isinstance(envelope.get("by"), str)


def canonical(row: dict[str, Any]) -> bytes:
    by = row.get("recorded_by") or ""
    middle = [by.encode("utf-8")] if names_recorder(row["payload"]) else []
    return (FORMAT_2 if middle else FORMAT) + b"".join(field(v) for v in (
        str(row["position"]).encode("ascii"), row["stream"].encode("utf-8"),
        str(row["version"]).encode("ascii"), row["type"].encode("utf-8"),
        str(row["schema_version"]).encode("ascii"), row["recorded_at"].encode("utf-8"),
        *middle, row["effective"].encode("utf-8"), row["payload"].encode("utf-8")))


def payload_fields(payload: str) -> tuple[str, str, str, str] | None:
    """(schema version, recorded time, effective date, recorded by) as the payload says, or
    None."""
    try:
        envelope = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(envelope, dict):
        return None
    v, at, data, by = envelope.get("v"), envelope.get("at"), envelope.get("data"), envelope.get("by")
    version = str(v) if isinstance(v, int) and not isinstance(v, bool) else ""
    effective = data.get("effective") if isinstance(data, dict) else None
    return (version, at if isinstance(at, str) else "",
            effective if isinstance(effective, str) else "", by if isinstance(by, str) else "")


def parse_digest(text: str) -> tuple[str, int]:
    match = DIGEST.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a digest like <64 hex digits>@<position>")
    return match.group(1), int(match.group(2))


def rows(parquet: pq.ParquetFile, columns: list[str]) -> Any:
    for batch in parquet.iter_batches(batch_size=BATCH, columns=columns):
        yield from batch.to_pylist()


def event_name(stream: str, version: int) -> str:
    return f"{stream[5:] if stream.startswith('plan:') else stream}/{version}"


def claims(parquet: pq.ParquetFile, problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seals and payment-run records in the export: what they say the chain was."""
    found = []
    for row in rows(parquet, ["position", "stream", "version", "type", "payload"]):
        if row["type"] not in ("ledger.sealed", "payment.run_recorded"):
            continue
        name = event_name(row["stream"], row["version"])
        try:
            data = json.loads(row["payload"])["data"]
            text = (f"{data['head']}@{data['position']}" if row["type"] == "ledger.sealed"
                    else str(data["seal"]))
            head, position = parse_digest(text)
        except (ValueError, KeyError, TypeError):
            problems.append({"position": row["position"], "event": name,
                             "message": f"{row['type']} is damaged: its head and position cannot be read"})
            continue
        found.append({"position": position, "head": head, "source": row["type"],
                      "label": f"{row['type']} {name} (position {row['position']})",
                      "at": row["position"], "event": name})
    return found


def verify(path: str, digests: list[str]) -> dict[str, Any]:
    parquet = pq.ParquetFile(path)
    present = parquet.schema_arrow.names  # exports made before recorded_by have no such column
    missing = [c for c in COLUMNS if c not in present and c != "recorded_by"]
    if missing:
        raise ValueError(f"{path} is not an event export: no column(s) {', '.join(missing)}")
    problems: list[dict[str, Any]] = []
    checkpoints = claims(parquet, problems)
    for text in digests:
        head, position = parse_digest(text)
        checkpoints.append({"position": position, "head": head, "source": "digest",
                            "label": f"digest {text.strip()}", "at": None, "event": None})
    needed = {c["position"] for c in checkpoints}
    links: dict[int, str] = {0: GENESIS.hex()}
    previous, head, position, count = GENESIS, GENESIS, 0, 0
    stored = GENESIS  # the link the row before says it has
    versions: dict[str, int] = {}
    for row in rows(parquet, [c for c in COLUMNS if c in present]):
        p, name = row["position"], event_name(row["stream"], row["version"])
        encoded = canonical(row)
        link = hashlib.sha256(previous + encoded).digest()  # the chain, recomputed from the rows
        if hashlib.sha256(stored + encoded).hexdigest() != row["link"]:
            problems.append({"position": p, "event": name, "message": (
                "this row does not match its link: the row was changed after export "
                "(or its link, or the link of the row before it)")})
        try:
            stored = bytes.fromhex(row["link"])
        except ValueError:
            stored = b""
        if p <= position and count:
            problems.append({"position": p, "event": name,
                             "message": f"position {p} comes after position {position}: rows out of order"})
        expected = versions.get(row["stream"], 0) + 1
        if row["version"] != expected:
            problems.append({"position": p, "event": name, "message": (
                f"{row['stream']} goes from version {expected - 1} to {row['version']}: "
                "an event is missing, moved or inserted")})
        versions[row["stream"]] = max(row["version"], versions.get(row["stream"], 0))
        said = payload_fields(row["payload"])
        columns = (str(row["schema_version"]), row["recorded_at"], row["effective"],
                   row.get("recorded_by") or "")
        if said is None:
            problems.append({"position": p, "event": name, "message": "the payload is not a JSON object"})
        elif said != columns:
            problems.append({"position": p, "event": name, "message": (
                f"the columns (schema_version, recorded_at, effective, recorded_by) = {columns} do "
                "not agree "
                f"with the payload's {said}")})
        if p in needed:
            links[p] = link.hex()
        previous, head, position, count = link, link, p, count + 1
    for cp in checkpoints:
        actual = links.get(cp["position"])
        if actual is None:
            cp["status"] = "missing"
            problems.append({"position": cp["at"], "event": cp["event"], "message": (
                f"{cp['label']} names position {cp['position']}, which is not in the export "
                f"(it ends at position {position}): events were removed, or it is of a later ledger")})
        elif actual != cp["head"]:
            cp["status"] = "mismatch"
            problems.append({"position": cp["at"], "event": cp["event"], "message": (
                f"{cp['label']} does not match: the chain at position {cp['position']} is "
                f"{actual[:16]}…, it says {cp['head'][:16]}…")})
        else:
            cp["status"] = "ok"
    problems.sort(key=lambda x: (x["position"] is None, x["position"] or 0))
    good = [cp["position"] for cp in checkpoints if cp["status"] == "ok"]
    bad = [cp["position"] for cp in checkpoints if cp["status"] != "ok"]
    confirmed = max((q for q in good if not bad or q < min(bad)), default=0)
    return {"ok": not problems, "file": path, "events": count, "head": f"{head.hex()}@{position}",
            "confirmed_upto": confirmed, "checkpoints": checkpoints, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="the Parquet file written by `topup export events`")
    parser.add_argument("--digest", action="append", default=[], metavar="HEX@POSITION",
                        help="a digest kept outside the ledger; repeat for several")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        for text in args.digest:
            parse_digest(text)
    except ValueError as error:
        parser.error(str(error))
    try:
        report = verify(args.file, args.digest)
    except (OSError, ValueError) as error:  # pyarrow's errors are OSError or ValueError
        print(f"error: cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['file']}: {report['events']} events, chain head {report['head']}")
        for cp in report["checkpoints"]:
            print(f"  {cp['status']:<8} {cp['label']} (position {cp['position']})")
        if report["ok"]:
            print("OK: every row matches the chain; every seal and digest matches")
        else:
            print(f"FAILED: {len(report['problems'])} problem(s)")
            for problem in report["problems"]:
                where = f"position {problem['position']}" if problem["position"] is not None else ""
                if problem["event"]:
                    where += f" ({problem['event']})"
                print(f"  {where}: {problem['message']}" if where else f"  {problem['message']}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
