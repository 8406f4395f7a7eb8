"""The console's pages load in Chromium: sign-in, agents and their versions, environments, and
sessions with filters. The data is made with the SDK, as a user's own code would."""

from __future__ import annotations

import re
import uuid
from typing import Any

import anthropic
import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import sign_in
from tests.support.clients import API_KEY
from tests.support.server import ServerThread

pytestmark = pytest.mark.browser

TOOLSET: Any = [{"type": "agent_toolset_20260401"}]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_the_page_and_its_assets_are_served_without_a_key(console_server: ServerThread) -> None:
    page = httpx.get(f"{console_server.url}/console")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    # Every module the page loads, and every module those import, is served (no CDN, no build).
    pending, seen = ["main.js"], set()
    while pending:
        name = pending.pop()
        seen.add(name)
        asset = httpx.get(f"{console_server.url}/console/assets/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-type"].startswith("text/javascript")
        assert "http://" not in asset.text and "https://" not in asset.text, f"{name} reaches outside"
        pending += [m for m in re.findall(r'from "\./([\w.]+)"', asset.text) if m not in seen]
    assert {"main.js", "api.js", "ui.js", "views.js", "session.js", "timeline.js"} <= seen
    css = httpx.get(f"{console_server.url}/console/assets/console.css")
    assert css.headers["content-type"].startswith("text/css")


def test_an_unknown_asset_is_a_404_in_the_error_envelope(console_server: ServerThread) -> None:
    for name in ("nope.js", "index.html", "..%2Fendpoints.py"):
        response = httpx.get(f"{console_server.url}/console/assets/{name}")
        assert response.status_code == 404, name
        assert response.json()["error"]["type"] == "not_found_error"
    assert httpx.get(f"{console_server.url}/console/").headers.get("location") == "/console"


def test_a_wrong_key_is_refused_and_the_right_one_is_kept_out_of_urls(
    page: Page, console_server: ServerThread
) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{console_server.url}/console")
    page.fill("#api-key", "sk-wrong")
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#sign-in [role=alert]")).to_contain_text("not accepted")
    page.fill("#api-key", API_KEY)
    page.click("#sign-in button[type=submit]")
    expect(page.locator("nav.side")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('mas.console.apiKey')") == API_KEY
    assert page.evaluate("localStorage.length") == 0  # nothing outlives the tab
    assert requests and not [url for url in requests if API_KEY in url]
    # Signed in across reloads of the tab; signed out for good by the button.
    page.reload()
    expect(page.locator("nav.side")).to_be_visible()
    page.click("#sign-out")
    expect(page.locator("#sign-in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('mas.console.apiKey')") is None


def test_agents_and_their_versions(
    page: Page, console_server: ServerThread, sdk: anthropic.Anthropic
) -> None:
    name = unique("reviewer")
    agent = sdk.beta.agents.create(name=name, model="claude-sonnet-4-6", system="Review code.", tools=TOOLSET)
    sdk.beta.agents.update(agent.id, version=agent.version, system="Review code, kindly.")
    sign_in(page, console_server.url, route="#/agents")
    row = page.locator(f"#agents tr[data-id='{agent.id}']")
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("v2")
    expect(row).to_contain_text("claude-sonnet-4-6")
    row.click()
    expect(page.locator("h1")).to_have_text(name)
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    expect(page.locator("#version-detail")).to_contain_text("Review code, kindly.")
    page.click("#versions tr[data-id='1']")
    expect(page.locator("#version-detail h2").first).to_have_text("Version 1")
    expect(page.locator("#version-detail dl.facts")).to_contain_text(agent.id)
    expect(page.locator("#version-detail")).to_contain_text("Review code.")
    expect(page.locator("#version-detail")).not_to_contain_text("kindly")


def test_environments(page: Page, console_server: ServerThread, sdk: anthropic.Anthropic) -> None:
    name = unique("data-env")
    env = sdk.beta.environments.create(
        name=name,
        config={"type": "cloud", "networking": {"type": "unrestricted"}, "packages": {"pip": ["pandas"]}},
    )
    sign_in(page, console_server.url, route="#/environments")
    row = page.locator(f"#environments tr[data-id='{env.id}']")
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("pip: pandas")
    row.click()
    expect(page.locator("h1")).to_have_text(name)
    expect(page.locator("pre.json")).to_contain_text('"networking"')


def test_sessions_with_filters(page: Page, console_server: ServerThread, sdk: anthropic.Anthropic) -> None:
    env = sdk.beta.environments.create(name=unique("env"))
    first = sdk.beta.agents.create(name=unique("first"), model="claude-sonnet-4-6")
    second = sdk.beta.agents.create(name=unique("second"), model="claude-sonnet-4-6")
    mine = sdk.beta.sessions.create(agent=first.id, environment_id=env.id, title="filtered in")
    other = sdk.beta.sessions.create(agent=second.id, environment_id=env.id, title="filtered out")
    archived = sdk.beta.sessions.create(agent=first.id, environment_id=env.id, title="archived one")
    sdk.beta.sessions.archive(archived.id)

    sign_in(page, console_server.url)  # the sessions list is the home page
    expect(page.locator(f"#session-list tr[data-id='{mine.id}']")).to_contain_text("filtered in")
    expect(page.locator(f"#session-list tr[data-id='{other.id}']")).to_be_visible()
    expect(page.locator(f"#session-list tr[data-id='{archived.id}']")).to_have_count(0)

    page.select_option("#session-filters select[name=agent]", first.id)
    expect(page.locator(f"#session-list tr[data-id='{other.id}']")).to_have_count(0)
    expect(page.locator(f"#session-list tr[data-id='{mine.id}']")).to_be_visible()
    page.check("#session-filters input[name=archived]")
    expect(page.locator(f"#session-list tr[data-id='{archived.id}']")).to_contain_text("archived")
    # The filters live in the route, so a reload (or a shared link) shows the same list.
    assert f"agent={first.id}" in page.url and "archived=1" in page.url
    page.reload()
    expect(page.locator(f"#session-list tr[data-id='{archived.id}']")).to_be_visible()
    expect(page.locator("#session-filters select[name=agent]")).to_have_value(first.id)

    page.select_option("#session-filters select[name=status]", "running")
    expect(page.locator("#session-list")).to_contain_text("No sessions match")
    page.select_option("#session-filters select[name=status]", "idle")
    expect(page.locator(f"#session-list tr[data-id='{mine.id}']")).to_be_visible()
    page.locator(f"#session-list tr[data-id='{mine.id}']").click()
    expect(page.locator("h1")).to_have_text("filtered in")
