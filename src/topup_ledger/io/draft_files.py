"""A prepared run's files (two-person release, issue 23): the run's payment files, each
named ``DRAFT-``, and a note that they are not for payment. Their digests are not recorded:
the files for finance are those written when another officer releases the run."""

from __future__ import annotations

from pathlib import Path

from topup_ledger.io.payment_files import write_files_for_run
from topup_ledger.storage.store import EventStore

DRAFT_PREFIX = "DRAFT-"
DRAFT_NOTE = "DRAFT-NOT-FOR-PAYMENT-{run}.txt"


def write_drafts(store: EventStore, run_id: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for path in write_files_for_run(store, run_id, out):
        marked = path.with_name(DRAFT_PREFIX + path.name)
        path.replace(marked)
        files.append(marked)
    note = out / DRAFT_NOTE.format(run=run_id)
    note.write_text(f"DRAFT - NOT FOR PAYMENT\n\nPayment run {run_id} is prepared but not "
                    "released. These files are drafts for review only. Under two-person "
                    f"release, someone other than its preparer runs `topup release {run_id}`, "
                    "which writes the files for finance.\n", encoding="utf-8")
    return [*files, note]
