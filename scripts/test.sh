#!/usr/bin/env bash
# Install the package with its test extras into .venv, lint, and run every test on SQLite and
# on a throwaway PostgreSQL server (started here, always stopped on exit). Arguments go to
# pytest.
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -k due -x       # a selection
#
# PGPORT_TEST picks the server's port; unset, the first free port from 25433 up is used, so
# that runs side by side do not share (or stop) each other's server. The ports sit below the
# kernel's ephemeral range (32768-60999), where an outgoing connection's local port could
# already hold the port we want.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/system_deps.sh
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# Always a virtual environment (TOPUP_VENV, else .venv, the README's): a stock Debian or
# Ubuntu Python refuses `pip install` outside one ("externally-managed-environment"). A new
# one sees the system's packages, so what the machine has already is not fetched again.
VENV="${TOPUP_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv --system-site-packages "$VENV"
fi
PYTHON="$VENV/bin/python"
"$PYTHON" -m pip install -q -e '.[test]'

# This run's own server: its own state file, stopped however the script ends.
export TOPUP_PG_STATE="${TMPDIR:-/tmp}/topup-pg-test.$$.state"
trap 'bash scripts/pg_server.sh stop >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

url=""
if [ -n "${PGPORT_TEST:-}" ]; then
    url="$(bash scripts/pg_server.sh start)"
else
    for port in $(seq 25433 25462); do
        rc=0
        url="$(PGPORT_TEST="$port" bash scripts/pg_server.sh start)" || rc=$?
        [ "$rc" -eq 3 ] || break # 3: port taken, try the next one
    done
    [ "$rc" -eq 0 ] || { echo "test.sh: could not start a PostgreSQL test server" >&2; exit 1; }
fi
export TOPUP_TEST_POSTGRES_URL="$url" TOPUP_REQUIRE_POSTGRES=1
echo "test.sh: PostgreSQL tests use $TOPUP_TEST_POSTGRES_URL" >&2

lint=0
"$PYTHON" -m ruff check src tests scripts || lint=$?

tests=0
"$PYTHON" -m pytest -q "$@" || tests=$?

if [ "$tests" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; that is a failure" >&2
    exit 1
fi
if [ "$tests" -ne 0 ]; then
    exit "$tests"
fi
if [ "$lint" -ne 0 ]; then
    echo "test.sh: tests passed but ruff found problems (above)" >&2
    exit 1
fi
