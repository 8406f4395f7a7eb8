"""The OpenAPI document lists the errors the API really answers (issue 8, item 12)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

ENVELOPE_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture(scope="module")
def document(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_no_operation_documents_a_422(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        assert "422" not in operation["responses"], (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_error_statuses_follow_the_routes(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        statuses = set(operation["responses"])
        assert {"400", "500"} <= statuses, (method, path)
        assert ("401" in statuses) == path.startswith("/v1/"), (method, path)
        worker_scoped = path.startswith("/v1/") and "/v1/messages" not in path
        assert ("403" in statuses) == worker_scoped, (method, path)
        # An unknown id in the path, or one a resource's body refers to (an agent, a store).
        refers = method in ("post", "put", "patch") and path.startswith("/v1/") and "/v1/messages" not in path
        assert ("404" in statuses) == ("{" in path or refers), (method, path)
        if method == "post":
            assert "413" in statuses, (method, path)
        for status in statuses - {"200", "201", "204"}:
            content = operation["responses"][status]["content"]["application/json"]["schema"]
            assert content == {"$ref": ENVELOPE_REF}, (method, path, status)
    update = document["paths"]["/v1/agents/{agent_id}"]["post"]["responses"]
    assert "409" in update


def test_the_documented_envelope_is_what_errors_look_like(
    document: dict[str, Any], http: httpx.Client
) -> None:
    schema = document["components"]["schemas"]["ErrorResponse"]
    for response in (
        http.get("/v1/agents/agent_missing"),
        http.get("/v1/agents", params={"limit": 0}),
        httpx.get(str(http.base_url.join("/v1/agents"))),  # no key: 401
    ):
        body = response.json()
        assert set(schema["required"]) <= set(body)
        assert set(schema["properties"]["error"]["required"]) <= set(body["error"])
        assert body["request_id"] == response.headers["request-id"]
