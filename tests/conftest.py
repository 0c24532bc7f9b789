"""Shared fixtures: a ledger on each backend, a deterministic clock, the CLI in-process.

Every test that takes ``location`` (or ``ledger`` / ``cli``) runs once on SQLite and once on
PostgreSQL. PostgreSQL needs ``TOPUP_TEST_POSTGRES_URL`` (``.ci/run`` starts a server and
sets it); without it those cases skip, unless ``TOPUP_REQUIRE_POSTGRES`` is set, as in CI,
where a missing server is a failure rather than a silent skip.

Hypothesis keeps its example database under the system's temporary directory, not in the
repository (``TOPUP_HYPOTHESIS_DB`` names another folder). ``HYPOTHESIS_PROFILE=mutants``
(``scripts/mutants.py``) runs every property on fixed examples with no database and no
shrinking, so that a mutant is killed or not the same way each time, and soon.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from reliability_support import write_la
from topup_ledger.cli import main
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.store import EventStore

BACKENDS = ["sqlite", "postgres"]

HYPOTHESIS_DB = os.environ.get("TOPUP_HYPOTHESIS_DB") or os.path.join(
    tempfile.gettempdir(), "topup-ledger-hypothesis")
settings.register_profile("topup", database=DirectoryBasedExampleDatabase(HYPOTHESIS_DB))
# Fixed examples, no database, and no shrinking: a mutant is killed by the first failing
# example, and shrinking it (minutes, for a ledger history) would only tell a person why.
settings.register_profile("mutants", database=None, derandomize=True,
                          phases=(Phase.explicit, Phase.reuse, Phase.generate))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "topup"))

# Ledger keys made by `topup init` (and the fixtures' ledgers) go to a folder of the test
# session's own, never to the real ~/.config; subprocesses inherit it. A key given in the
# environment by the caller would key every test ledger alike: tests choose their own.
KEY_DIR = tempfile.mkdtemp(prefix="topup-test-keys-")
os.environ["TOPUP_KEY_DIR"] = KEY_DIR
for _name in ("TOPUP_LEDGER_KEY", "TOPUP_LEDGER_KEY_FILE", "TOPUP_WITNESS"):
    os.environ.pop(_name, None)


class FakeClock:
    """The ledger's clock for tests: starts at a fixed moment, one second per reading."""

    def __init__(self, start: datetime = datetime(2025, 9, 1, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def postgres_url() -> str | None:
    url = os.environ.get("TOPUP_TEST_POSTGRES_URL")
    if not url and os.environ.get("TOPUP_REQUIRE_POSTGRES"):
        pytest.fail("TOPUP_REQUIRE_POSTGRES is set but TOPUP_TEST_POSTGRES_URL is not")
    return url


def new_location(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return str(tmp_path / f"ledger-{uuid.uuid4().hex[:8]}.sqlite")
    url = postgres_url()
    if not url:
        pytest.skip("no PostgreSQL server (set TOPUP_TEST_POSTGRES_URL)")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}schema=t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def location(backend: str, tmp_path: Path) -> str:
    """A fresh, empty ledger location on the backend under test (created, tables ready)."""
    loc = new_location(backend, tmp_path)
    EventStore(loc, create=True).close()
    return loc


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(location: str, clock: FakeClock) -> Iterator[Ledger]:
    store = EventStore(location)
    yield Ledger(store, clock=clock)
    check_stored_events_against_schemas(store)
    store.close()


def check_stored_events_against_schemas(store: EventStore) -> None:
    """Every event a test stored must match its versioned JSON Schema in schemas/."""
    from schema_check import validate_stored

    validate_stored(store)


Invoke = Callable[..., Result]


@pytest.fixture
def cli(location: str, clock: FakeClock) -> Iterator[Invoke]:
    """Run ``topup`` in-process against the test ledger with the test clock."""
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(main, list(args), obj={"location": location, "clock": clock},
                               catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(f"topup {' '.join(args)} failed ({result.exit_code}):\n"
                                 f"{result.output}")
        return result

    yield invoke
    store = EventStore(location)
    check_stored_events_against_schemas(store)
    store.close()


@pytest.fixture(scope="module")
def la(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated LA's import files (each test module writes its own copy)."""
    return write_la(tmp_path_factory.mktemp("la"))
