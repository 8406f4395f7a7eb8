#!/usr/bin/env bash
# A private PostgreSQL server for the test-suite and benchmarks, from Debian's packages.
#   scripts/postgres.sh start   -> installs the server if missing, starts it, prints its URL
#   scripts/postgres.sh stop
# It listens on 127.0.0.1:${MAS_PG_PORT:-54329} with trust auth; data lives in .build/pg.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$PWD/.build/pg/data"
LOG="$PWD/.build/pg/server.log"
PORT_FILE="$PWD/.build/pg/port"

port_free() {
  # SO_REUSEADDR as PostgreSQL itself uses it: a port left in TIME_WAIT by a stop is free.
  python3 -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1])))" "$1" 2>/dev/null
}

# The port this checkout's server uses: remembered, or the first free one from MAS_PG_PORT/54329
# (another checkout's server may hold the default).
choose_port() {
  if [ -f "$PORT_FILE" ]; then cat "$PORT_FILE"; return; fi
  local port="${MAS_PG_PORT:-54329}"
  while ! port_free "$port"; do port=$((port + 1)); done
  mkdir -p "$(dirname "$PORT_FILE")" && echo "$port" > "$PORT_FILE" && echo "$port"
}
PORT="$(choose_port)"
URL="postgresql+asyncpg://postgres@127.0.0.1:${PORT}/postgres"

find_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_pg() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_server() {
  if [ -z "$(find_bin)" ] || [ ! -x "$(find_bin)/initdb" ]; then
    echo "postgres: installing the server from Debian packages..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
  fi
}

start() {
  install_server
  local bin; bin="$(find_bin)"
  if as_pg "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then echo "$URL"; return; fi
  if ! port_free "$PORT"; then  # the remembered port was taken meanwhile
    rm -f "$PORT_FILE"; PORT="$(choose_port)"; URL="postgresql+asyncpg://postgres@127.0.0.1:${PORT}/postgres"
  fi
  mkdir -p "$(dirname "$DATA")"
  if [ "$(id -u)" = "0" ]; then chown -R postgres "$(dirname "$DATA")"; fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  as_pg "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-p $PORT -k $(dirname "$DATA") -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
  echo "$URL"
}

stop() {
  local bin; bin="$(find_bin)"
  [ -n "$bin" ] && as_pg "$bin/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
