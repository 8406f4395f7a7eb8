"""Paths of the API this build does not serve answer 404 with a message that says so."""

from __future__ import annotations

import anthropic
import httpx
import pytest


@pytest.mark.parametrize(
    ("method", "path", "part"),
    [
        ("POST", "/v1/messages/batches", "message batches"),
        ("GET", "/v1/user_profiles", "user profiles"),
        ("GET", "/v1/tunnels", "tunnels"),
        ("GET", "/v1/organizations/me", "the Admin API"),
    ],
)
def test_known_but_unbuilt_paths_say_so(http: httpx.Client, method: str, path: str, part: str) -> None:
    response = http.request(method, path, params={"beta": "true"})

    assert response.status_code == 404
    body = response.json()
    assert body["error"]["type"] == "not_found_error"
    expected = f"{method} {path}: {part} is part of the API but not supported by this server yet"
    assert body["error"]["message"] == expected
    assert body["request_id"] == response.headers["request-id"]


def test_unknown_path_is_a_plain_404(http: httpx.Client) -> None:
    response = http.get("/v1/nonsense")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Not found"


def test_sdk_sees_not_found_for_an_unbuilt_resource(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as exc:
        client.beta.user_profiles.list()

    assert "not supported by this server yet" in str(exc.value)
