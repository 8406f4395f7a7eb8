#!/usr/bin/env bash
# Sets up and runs mas: embedded SQLite (./data), the offline model unless ANTHROPIC_API_KEY is
# set, tools in per-session Docker containers (the base image is built locally on first run).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_venv
if [ "${MAS_SANDBOX_BACKEND:-docker}" = "docker" ]; then
  if ! docker_ready; then
    echo "error: the Docker engine is not reachable; start it, or run tools unisolated on this host" >&2
    echo "       with MAS_SANDBOX_BACKEND=local (development only)." >&2
    exit 1
  fi
  bash sandbox/build-base.sh
fi
if [ -z "${MAS_API_KEYS:-}" ] && ! grep -qs '^MAS_API_KEYS=' .env; then
  export MAS_API_KEYS=sk-mas-local
  echo "API key for this server: sk-mas-local (set MAS_API_KEYS, or use \`mas keys create\`)"
fi
exec .venv/bin/mas serve "$@"
