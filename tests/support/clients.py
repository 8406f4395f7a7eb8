"""The real SDK as the client of every API test: strict response validation, no retries."""

from __future__ import annotations

import anthropic

API_KEY = "sk-mas-test-key"


def strict_client(base_url: str, api_key: str = API_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=base_url, api_key=api_key, _strict_response_validation=True, max_retries=0
    )


def strict_async_client(base_url: str, api_key: str = API_KEY) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=base_url, api_key=api_key, _strict_response_validation=True, max_retries=0
    )


def bearer_async_client(base_url: str, token: str) -> anthropic.AsyncAnthropic:
    """A client that authenticates with ``Authorization: Bearer`` only (an environment key or a
    sessions token), as the SDK's worker sub-clients do."""
    return anthropic.AsyncAnthropic(
        base_url=base_url, auth_token=token, _strict_response_validation=True, max_retries=0
    )
