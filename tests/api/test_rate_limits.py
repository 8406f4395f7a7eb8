"""Per-API-key rate limits: creates and other requests each have a per-minute budget."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest

from app.api.ratelimit import request_kind
from tests.conftest import make_settings
from tests.support.clients import API_KEY, strict_client
from tests.support.server import ServerThread

OTHER_KEY = "sk-mas-test-other"


@pytest.fixture(scope="module")
def limited(database_url: str) -> Iterator[ServerThread]:
    settings = make_settings(
        database_url,
        api_keys=[API_KEY, OTHER_KEY],
        rate_limits="on",
        rate_limit_creates_per_minute=3,
        rate_limit_reads_per_minute=5,
    )
    server = ServerThread(settings).start()
    try:
        yield server
    finally:
        server.stop()


def test_creates_over_budget_get_429_with_retry_after(limited: ServerThread) -> None:
    with strict_client(limited.url) as sdk:
        for n in range(3):
            sdk.beta.environments.create(name=f"rate-{n}")
        with pytest.raises(anthropic.RateLimitError) as exc:
            sdk.beta.environments.create(name="rate-over")

    response = exc.value.response
    assert response.status_code == 429
    assert exc.value.body == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Rate limit exceeded: 3 create requests per minute for this API key",
        },
        "request_id": response.headers["request-id"],
    }
    # One create comes back every 20 s (60 / 3); the header rounds up to whole seconds.
    assert 1 <= int(response.headers["retry-after"]) <= 20


def test_budgets_are_per_key_and_per_kind(limited: ServerThread) -> None:
    headers = {"x-api-key": OTHER_KEY, "anthropic-beta": "managed-agents-2026-04-01"}
    with httpx.Client(base_url=limited.url, headers=headers, timeout=30) as http:
        statuses = [http.get("/v1/agents").status_code for _ in range(6)]
        # Reads are spent, creates are not: a create still goes through.
        created = http.post("/v1/environments", json={"name": "other-key"})

    assert statuses == [200] * 5 + [429]
    assert created.status_code == 200


def test_an_unlimited_server_never_answers_429(http: httpx.Client) -> None:
    # The shared test server runs the offline profile: rate limits are off.
    assert all(http.get("/v1/models").status_code == 200 for _ in range(30))


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("POST", "/v1/agents", "create"),
        ("POST", "/v1/skills/{skill_id}/versions", "create"),
        ("POST", "/v1/memory_stores/{memory_store_id}/memories", "create"),
        ("POST", "/v1/agents/{agent_id}", "read"),
        ("POST", "/v1/sessions/{session_id}/events", "read"),
        ("POST", "/v1/agents/{agent_id}/archive", "read"),
        ("GET", "/v1/agents", "read"),
        ("DELETE", "/v1/sessions/{session_id}", "read"),
    ],
)
def test_what_counts_as_a_create(method: str, path: str, kind: str) -> None:
    assert request_kind(method, path) == kind
