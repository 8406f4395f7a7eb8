"""The console in a real headless Chromium: Debian's `chromium` package (scripts/lib.sh installs
it) driven by Playwright, against a real mas server with the embedded worker and the offline
model. Each test leaves a full-page screenshot in `test-artifacts/console/` (CI keeps it)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.conftest import IN_CI, make_settings
from tests.support import databases
from tests.support.clients import API_KEY, strict_client
from tests.support.server import ServerThread

ROOT = Path(__file__).resolve().parents[2]
# A shared, loaded machine: waits are generous, and no test asserts how long anything took.
WAIT_MS = 60_000
expect.set_options(timeout=WAIT_MS)
ARTIFACTS = Path(os.environ.get("MAS_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A server of its own (SQLite; the console talks HTTP, the backend is tested elsewhere)."""
    url = databases.create_sqlite_database(tmp_path_factory.mktemp("console-db"))
    server = ServerThread(make_settings(url)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sdk(console_server: ServerThread) -> Iterator[anthropic.Anthropic]:
    with strict_client(console_server.url, API_KEY) as client:
        yield client


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        if IN_CI:
            pytest.fail("CI=true but Debian's chromium is not installed (scripts/test.sh installs it)")
        pytest.skip("chromium is not installed (bash scripts/test.sh installs it)")
    # Root in a container: Chromium's own sandbox needs user namespaces it cannot have here.
    launched = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 960})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
        tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        context.close()
    assert errors == [], f"script errors in the page: {errors}"


def sign_in(page: Page, base_url: str, key: str = API_KEY, route: str = "") -> None:
    page.goto(f"{base_url}/console{route}")
    page.fill("#api-key", key)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("nav.side")
