"""Field limits (issue 8, item 6): text fields have documented (or, where the hosted service
documents none, stated) limits; a 10 MB description is a 400, not a stored row."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.postgres

HUGE = "d" * 10_000_000


def _assert_400(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text[:200]
    assert response.json()["error"]["message"].startswith(field), response.json()["error"]["message"]


def test_long_text_fields_are_refused(http: httpx.Client) -> None:
    env = http.post("/v1/environments", json={"name": "limits"}).json()
    agent = http.post("/v1/agents", json={"name": "limits", "model": "claude-sonnet-4-6"}).json()
    _assert_400(http.post("/v1/environments", json={"name": "e", "description": HUGE}), "description")
    _assert_400(http.post(f"/v1/environments/{env['id']}", json={"description": "d" * 2049}), "description")
    _assert_400(http.post("/v1/agents", json={"name": "a", "model": "m", "description": HUGE}), "description")
    session = {"agent": agent["id"], "environment_id": env["id"], "title": "t" * 513}
    _assert_400(http.post("/v1/sessions", json=session), "title")
    # At the limit they are accepted.
    ok = http.post(f"/v1/environments/{env['id']}", json={"description": "d" * 2048})
    assert ok.status_code == 200 and len(ok.json()["description"]) == 2048
    created = http.post("/v1/sessions", json={**session, "title": "t" * 512})
    assert created.status_code == 200 and created.json()["title"] == "t" * 512
