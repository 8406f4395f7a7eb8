# Shared by scripts/run.sh and scripts/test.sh: a virtual environment that tracks pyproject.toml.
PYTHON_BIN="${PYTHON_BIN:-$(command -v python3.11 || command -v python3)}"

ensure_venv() {
  local stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $PYTHON_BIN" >&2
    "$PYTHON_BIN" -m venv .venv
  fi
  if [ ! -f "$stamp" ]; then
    echo "setup: installing mas and its dependencies" >&2
    .venv/bin/pip install -q --upgrade pip >&2
    .venv/bin/pip install -q -e '.[dev]' >&2
    rm -f .venv/.installed-* && touch "$stamp"
  fi
}

ensure_host_tools() {
  # The local sandbox backend runs the tool server on this host; its grep and glob use ripgrep.
  if ! command -v rg >/dev/null 2>&1; then
    echo "setup: installing ripgrep from Debian packages" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ripgrep >&2
  fi
}

ensure_browser() {
  # The web console's tests drive a real headless Chromium: Debian's package, never a browser
  # build downloaded by Playwright (nothing but the package registries is reachable).
  if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium from Debian packages" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
  fi
}

docker_ready() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

ensure_bench_tools() {
  # bench_http drives the servers with wrk (C, light on the shared CPU); --profile attaches py-spy.
  if ! command -v wrk >/dev/null 2>&1; then
    echo "setup: installing wrk from Debian packages" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
  fi
  if [ ! -x .venv/bin/py-spy ]; then
    echo "setup: installing py-spy into .venv" >&2
    .venv/bin/pip install -q 'py-spy>=0.4,<1' >&2
  fi
}
