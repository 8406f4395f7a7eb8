#!/usr/bin/env bash
# Sets up everything the test-suite needs on a fresh machine, then runs the checks and the tests:
# the virtual environment, a private PostgreSQL from Debian's packages, the sandbox base images.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/events -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_venv
ensure_host_tools
ensure_browser
export MAS_TEST_POSTGRES_URL="${MAS_TEST_POSTGRES_URL:-$(bash scripts/postgres.sh start)}"
if docker_ready; then
  bash sandbox/build-base.sh
elif [ "${CI:-}" = "true" ]; then
  echo "error: CI=true but the Docker engine is not reachable" >&2
  exit 1
fi
echo "== ruff"; .venv/bin/ruff check app tests bench
echo "== mypy"; .venv/bin/mypy app && .venv/bin/mypy bench && .venv/bin/mypy --strict tests sandbox/toolserver
echo "== alembic check"
tmp=$(mktemp -d)
MAS_DATABASE_URL="sqlite+aiosqlite:///$tmp/check.db" .venv/bin/python -m app migrate >/dev/null
MAS_DATABASE_URL="sqlite+aiosqlite:///$tmp/check.db" .venv/bin/alembic -c migrations/alembic.ini check
rm -rf "$tmp"
echo "== pytest"
# The whole suite (no arguments: CI and the README's command) runs in several processes, a test file
# per process at a time: most of its time is spent waiting on sandboxes, workers and streams. With
# arguments (a directory, -x, -k) one process, unless MAS_TEST_PROCESSES says otherwise.
if [ $# -eq 0 ]; then processes="${MAS_TEST_PROCESSES:-4}"; else processes="${MAS_TEST_PROCESSES:-1}"; fi
if [ "$processes" -gt 1 ]; then set -- -n "$processes" --dist loadfile "$@"; fi
exec .venv/bin/pytest "$@"
