#!/usr/bin/env bash
# Install the system packages the tests need when they are missing: python3-venv for the
# virtual environment, Pango and fonts for WeasyPrint's PDFs, and Debian's chromium for the
# headless-browser test. PostgreSQL is installed by scripts/pg_server.sh. Needs root (CI
# runs as root); otherwise it only reports.
set -euo pipefail

missing=()
# venv with pip: scripts/test.sh and the README install into .venv (Debian ships it apart)
"${PYTHON:-python3}" -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || missing+=(chromium)
for lib in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core; do
    dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$lib")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "system_deps: missing ${missing[*]}; install them with apt-get as root" >&2
    exit 0
fi
echo "system_deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
