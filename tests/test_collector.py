"""Bulk work pauses the cyclic collector and leaves it as it found it, even when it fails."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from topup_ledger.engine import collector
from topup_ledger.io.import_csv import parse_table
from topup_ledger.services.importer import import_table
from topup_ledger.services.recording import Ledger


@pytest.fixture
def collecting() -> Iterator[None]:
    was_on = gc.isenabled()
    gc.enable()
    yield
    if not was_on:
        gc.disable()


def test_paused_inside_and_on_again_after(collecting: None) -> None:
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_on_again_after_a_failure_inside(collecting: None) -> None:
    with pytest.raises(ValueError, match="bad row"), collector.paused():
        raise ValueError("bad row")
    assert gc.isenabled()


def test_off_stays_off(collecting: None) -> None:
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()


def test_an_import_leaves_the_collector_on(collecting: None, ledger: Ledger) -> None:
    table = parse_table(b"urn,name,setting\n100001,Oak Primary,mainstream\n100002,Ash,special\n")
    result = import_table(ledger, table)
    assert (result.recorded, result.rejected) == (2, 0)
    assert gc.isenabled()
