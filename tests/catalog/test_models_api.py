"""/v1/models through the real SDK (strict response validation), on each backend."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from app.catalog.service import CATALOGUE
from tests.support.server import ServerThread


def test_list_pages_through_the_whole_catalogue(client: anthropic.Anthropic) -> None:
    first = client.beta.models.list(limit=5)

    assert [m.id for m in first.data] == [m.id for m in CATALOGUE[:5]]
    assert first.has_more is True
    assert first.first_id == first.data[0].id and first.last_id == first.data[-1].id
    every = [m.id for m in client.beta.models.list(limit=4)]
    assert every == [m.id for m in CATALOGUE]
    assert "claude-sonnet-4-6" in every and len(set(every)) == len(every)


def test_before_id_pages_backwards(client: anthropic.Anthropic) -> None:
    page = client.beta.models.list(before_id=CATALOGUE[6].id, limit=3)

    assert [m.id for m in page.data] == [m.id for m in CATALOGUE[3:6]]
    assert page.has_more is True
    start = client.beta.models.list(before_id=CATALOGUE[2].id, limit=10)
    assert [m.id for m in start.data] == [m.id for m in CATALOGUE[:2]] and start.has_more is False


def test_retrieve_describes_the_model(client: anthropic.Anthropic) -> None:
    model = client.beta.models.retrieve("claude-sonnet-4-5-20250929")

    assert model.type == "model" and model.lifecycle == "active" and model.line == "sonnet"
    assert model.display_name == "Claude Sonnet 4.5"
    assert model.created_at.isoformat().startswith("2025-09-29")
    assert client.models.retrieve("claude-opus-4-6").display_name == "Claude Opus 4.6"


def test_unknown_model_is_404_and_unknown_cursor_400(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.beta.models.retrieve("claude-nonexistent-1")
    assert "claude-nonexistent-1" in str(missing.value)
    with pytest.raises(anthropic.BadRequestError):
        client.beta.models.list(after_id="claude-nonexistent-1")


def test_models_need_a_key(mas_server: ServerThread) -> None:
    response = httpx.get(f"{mas_server.url}/v1/models?beta=true")

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
