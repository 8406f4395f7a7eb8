"""The mcp SDK takes seconds to import: mas loads it only once a session uses MCP, so `mas serve`
and `mas worker` start as fast as before."""

from __future__ import annotations

import subprocess
import sys

from tests.support.server import ROOT


def test_starting_mas_does_not_import_the_mcp_sdk() -> None:
    probe = (
        "import sys, app.main, app.worker.runtime; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mcp'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
