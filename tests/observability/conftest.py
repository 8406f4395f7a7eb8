"""Fixtures shared by the observability tests."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from app.observability import logs


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the process's JSON handler writes (installed as `logs.configure` installs it)."""
    out = io.StringIO()
    handler = logs.handler("json", out)
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
