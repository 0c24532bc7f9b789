"""End to end: a generated statement opened in a real headless browser (Debian's chromium).

The browser loads the file with the network closed off (no background networking, no
component updates): the page must render whole from itself. We read back what it rendered
three ways: the DOM after layout (--dump-dom), a screenshot (a PNG that must show a page,
not a blank), and the browser's own print to PDF, whose text must carry the key figures —
so the figures are laid out and painted, not only present in the source.

Without chromium this skips on a developer's machine; in CI (CI set) it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdf
import pytest
from PIL import Image

from test_statements import build_history, html_text, money
from topup_ledger.services.recording import Ledger
from topup_ledger.statements import Statement, statement_for, write_statement
from topup_ledger.storage.store import EventStore

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
         "--force-device-scale-factor=1"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (apt-get install chromium): the browser test "
                    "must run in CI")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def run_browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="topup-chromium-")  # a fresh profile every time
    try:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=180, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 9, 1, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=7)
        return self.now


@pytest.fixture(scope="module")
def statement_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Statement, Path]]:
    folder = tmp_path_factory.mktemp("browser")
    store = EventStore(str(folder / "ledger.sqlite"), create=True)
    try:
        build_history(Ledger(store, clock=Clock()))
        statement = statement_for(store, "100002", "2025-26/summer")
        page = write_statement(statement, folder / "out", ["html"])[0]
    finally:
        store.close()
    yield statement, page


def test_the_browser_renders_the_key_figures(statement_page: tuple[Statement, Path],
                                              tmp_path: Path) -> None:
    statement, page = statement_page
    url = page.resolve().as_uri()
    dom = run_browser(tmp_path, "--dump-dom", url).stdout
    text = html_text(dom)
    assert f"Total paid for 2025-26/summer {money(statement.totals.total)}" in text
    assert "Riverside Academy" in text and statement.seal in text
    for child in statement.children:
        assert child.pupil in text and money(child.total) in text
    totals = re.search(r'<table id="totals">.*?</table>', dom, re.S)
    assert totals is not None
    for amount in (statement.totals.regular, statement.totals.arrears, statement.totals.clawback,
                   statement.totals.total, statement.year_to_date.total):
        assert money(amount) in html_text(totals.group(0))

    # What the browser prints is what it laid out and painted: the figures must be there.
    printed = tmp_path / "printed.pdf"
    run_browser(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={printed}", url)
    words = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in pypdf.PdfReader(printed).pages))
    assert money(statement.totals.total) in words
    assert money(statement.year_to_date.total) in words
    for child in statement.children:
        assert child.pupil in words


def test_the_screenshot_shows_a_page(statement_page: tuple[Statement, Path], tmp_path: Path) -> None:
    _, page = statement_page
    shot = tmp_path / "statement.png"
    run_browser(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", page.resolve().as_uri())
    assert shot.stat().st_size > 30_000
    with Image.open(shot) as image:
        assert image.size == (1200, 2000)
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 16) or []
    assert len(colours) > 50  # text, rules, the chart: not a blank or one-colour page
    ink = sum(n for n, (r, g, b) in colours if r + g + b < 200)
    blue = sum(n for n, (r, g, b) in colours if (r, g, b) == (29, 112, 184))
    assert ink > 10_000  # dark text
    assert blue > 20_000  # the total box and this period's bar, in the statement's blue
