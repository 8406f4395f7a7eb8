#!/usr/bin/env bash
# Sets up what the benchmarks need (the venv, wrk, py-spy, ripgrep, a private PostgreSQL), then
# runs one benchmark or all of them. Extra arguments go to that benchmark.
#   scripts/bench.sh http|log|replay-first|concurrency|api-session|queue|stream|sandbox|session|replay|mcp|files|threads|egress [args...]
#   scripts/bench.sh profile [DIR]   # py-spy profiles of the hot paths (see bench/README.md)
#   scripts/bench.sh all
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_venv
ensure_host_tools
ensure_bench_tools
export MAS_TEST_POSTGRES_URL="${MAS_TEST_POSTGRES_URL:-$(bash scripts/postgres.sh start)}"
py=.venv/bin/python
what="${1:-all}"
shift || true
case "$what" in
  http) exec $py bench/bench_http.py "$@" ;;
  log) exec $py bench/bench_log.py "$@" ;;
  replay-first) exec $py bench/bench_replay_first.py "$@" ;;
  concurrency) exec $py bench/bench_concurrency.py "$@" ;;
  api-session) exec $py bench/bench_api_session.py "$@" ;;
  queue) exec $py bench/bench_queue.py "$@" ;;
  stream) exec $py bench/bench_stream.py "$@" ;;
  sandbox) exec $py bench/bench_sandbox.py "$@" ;;
  session) exec $py bench/bench_session.py "$@" ;;
  replay) exec $py bench/bench_replay.py "$@" ;;
  mcp) exec $py bench/bench_mcp.py "$@" ;;
  files) exec $py bench/bench_files.py "$@" ;;
  observability) exec $py bench/bench_observability.py "$@" ;;
  threads) exec $py bench/bench_threads.py "$@" ;;
  egress) exec $py bench/bench_egress.py "$@" ;;
  profile)
    dir="${1:-.build/profiles}"
    mkdir -p "$dir"
    $py bench/bench_http.py --databases sqlite,postgres --repeats 1 --duration 3 --profile "$dir"
    exec $py bench/bench_log.py --sizes 1000,10000 --repeats 3 --profile "$dir"
    ;;
  all)
    for b in http log concurrency queue stream sandbox session replay mcp files threads observability egress; do
      echo "== bench_$b"
      $py "bench/bench_$b.py"
    done
    ;;
  *) echo "usage: $0 http|log|replay-first|concurrency|api-session|queue|stream|sandbox|session|replay|mcp|files|threads|observability|profile|all [args]" >&2; exit 2 ;;
esac
