"""Token usage and list cost, accumulated on the session."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from app.agent_loop.model_client import ModelUsage
from app.db.session_json import UsageTotals
from app.events.types import SpanModelUsage

MTOK = Decimal(1_000_000)


def price_row(prices: dict[str, dict[str, str]], model: str) -> dict[str, Decimal]:
    family = next((name for name in prices if name in model), "sonnet")
    row = prices.get(family) or next(iter(prices.values()))
    return {k: Decimal(v) for k, v in row.items()}


def request_cost(prices: dict[str, dict[str, str]], model: str, usage: ModelUsage) -> Decimal:
    """USD at list prices for one model request."""
    row = price_row(prices, model)
    return (
        usage.input_tokens * row["input"]
        + usage.output_tokens * row["output"]
        + usage.cache_creation_input_tokens * row["cache_write_5m"]
        + usage.cache_read_input_tokens * row["cache_read"]
    ) / MTOK


SEARCH_PRICE = Decimal("0.01")  # USD per web search ($10 per 1,000)


def accumulate(total: UsageTotals, usage: ModelUsage, cost: Decimal, *, searches: int = 0) -> UsageTotals:
    """A new cumulative usage (the session's `usage`). `list_cost.amount` is whole cents."""
    cache = total.get("cache_creation")
    server = total.get("server_tool_use")
    spent = Decimal(str(total.get("cost_usd", "0"))) + cost + searches * SEARCH_PRICE
    out = total.copy()
    out["input_tokens"] = total.get("input_tokens", 0) + usage.input_tokens
    out["output_tokens"] = total.get("output_tokens", 0) + usage.output_tokens
    out["cache_read_input_tokens"] = total.get("cache_read_input_tokens", 0) + usage.cache_read_input_tokens
    out["cache_creation"] = {
        "ephemeral_5m_input_tokens": (cache.get("ephemeral_5m_input_tokens", 0) if cache else 0)
        + (usage.cache_creation_5m_input_tokens or usage.cache_creation_input_tokens),
        "ephemeral_1h_input_tokens": (cache.get("ephemeral_1h_input_tokens", 0) if cache else 0)
        + usage.cache_creation_1h_input_tokens,
    }
    out["server_tool_use"] = {
        "web_search_requests": (server.get("web_search_requests", 0) if server else 0) + searches,
        "web_fetch_requests": server.get("web_fetch_requests", 0) if server else 0,
    }
    out["cost_usd"] = str(spent)
    out["list_cost"] = {"amount": str(int((spent * 100).to_integral_value())), "currency": "USD"}
    return out


def span_usage(usage: ModelUsage, speed: Literal["standard", "fast"] | None) -> SpanModelUsage:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "speed": speed,
    }
