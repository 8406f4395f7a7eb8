"""The shapes of the session row's JSON columns (``app.db.models.Session``), as stored.

The sessions package is their one writer; the agent loop reads them and asks sessions to change
them. No SQLAlchemy here, so schemas may use them: they are typing_extensions' TypedDicts because
pydantic validates some (``SessionOut``) and refuses typing's on Python 3.11.
"""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypedDict


class MonetaryAmount(TypedDict):
    """An amount in minor units (cents) as an integer string without leading zeros."""

    amount: str
    currency: Literal["USD"]


class CacheCreationUsage(TypedDict):
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int


class ServerToolUsage(TypedDict):
    web_search_requests: int
    web_fetch_requests: int


class PublicUsage(TypedDict):
    """`Session.usage` as clients see it (SDK ``BetaManagedAgentsSessionUsage``)."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation: NotRequired[CacheCreationUsage]
    server_tool_use: NotRequired[ServerToolUsage]
    list_cost: NotRequired[MonetaryAmount]
    active_seconds: NotRequired[float]


class UsageTotals(PublicUsage):
    """``Session.usage`` (and a thread's): cumulative over every model request, in the SDK's
    ``BetaManagedAgentsSessionUsage`` order. ``cost_usd`` is the exact list cost in dollars (a
    decimal string) that ``list_cost`` rounds to cents: bookkeeping stored beside the public fields,
    never shown (``sessions.schemas.public_usage``)."""

    cost_usd: NotRequired[str]


class Budget(TypedDict):
    """``Session.budget``: the spend ceiling."""

    type: Literal["limit"]
    max_list_cost: MonetaryAmount


class OutcomeEvaluation(TypedDict):
    """One entry of ``Session.outcome_evaluations`` as clients see it (SDK
    ``BetaManagedAgentsOutcomeEvaluationResource``)."""

    type: Literal["outcome_evaluation"]
    outcome_id: str
    description: str
    iteration: int
    result: str
    explanation: str | None
    completed_at: str | None


class StoredOutcomeEvaluation(OutcomeEvaluation):
    """An entry as the row stores it: the outcome's iteration limit beside the public fields
    (never shown, see ``sessions.outcomes.public``)."""

    max_iterations: NotRequired[int]


class Checkout(TypedDict):
    type: Literal["branch", "commit"]
    name: NotRequired[str]
    sha: NotRequired[str]


class FileResourceJson(TypedDict):
    """A stored ``sessions.resource_schemas.FileResource`` (its JSON dump, in field order)."""

    id: str
    type: Literal["file"]
    file_id: str
    mount_path: str
    created_at: str
    updated_at: str


class GitHubRepositoryResourceJson(TypedDict):
    id: str
    type: Literal["github_repository"]
    url: str
    mount_path: str
    checkout: NotRequired[Checkout | None]
    created_at: str
    updated_at: str


class MemoryStoreResourceJson(TypedDict):
    """A mounted memory store has no id and no timestamps."""

    type: Literal["memory_store"]
    memory_store_id: str
    access: Literal["read_write", "read_only"]
    description: str
    instructions: NotRequired[str | None]
    mount_path: str
    name: str


ResourceJson = FileResourceJson | GitHubRepositoryResourceJson | MemoryStoreResourceJson
