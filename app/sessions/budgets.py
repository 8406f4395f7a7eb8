"""Session budgets: a ceiling on the list cost a session (all its threads) may accrue.

Enforced between model requests: the request that crosses the ceiling completes, then every
thread that would make another request stops with `budget_reached` instead. While the budget is
reached only settle events are accepted (tool confirmations and results, interrupts). Raising the
ceiling above what was spent, or removing the budget (for good), resumes the paused threads.
Every model has a list price here (`MAS_PRICES`; unknown models are priced as sonnet), so no
session is rejected as `model_not_budgetable`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Session
from app.db.session_json import Budget, UsageTotals
from app.errors import InvalidRequest
from app.sessions import repository

_AMOUNT = re.compile(r"0|[1-9][0-9]{0,17}")
SETTLE_EVENTS = ("user.tool_confirmation", "user.tool_result", "user.custom_tool_result", "user.interrupt")


def parse(raw: Any, where: str = "budget") -> Budget:
    """The budget as stored and shown: `{type: "limit", max_list_cost: {amount, currency}}`."""
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where}: expected an object")
    if raw.get("type") != "limit":
        raise InvalidRequest(f"{where}.type: must be 'limit'")
    cost = raw.get("max_list_cost")
    if not isinstance(cost, dict):
        raise InvalidRequest(f"{where}.max_list_cost: required, an object {{amount, currency}}")
    amount, currency = cost.get("amount"), cost.get("currency")
    if not isinstance(amount, str) or not _AMOUNT.fullmatch(amount):
        raise InvalidRequest(
            f"{where}.max_list_cost.amount: an integer number of cents as a string without leading "
            'zeros (e.g. "2500" is $25.00)'
        )
    if currency != "USD":
        raise InvalidRequest(f"{where}.max_list_cost.currency: only 'USD' is supported")
    return {"type": "limit", "max_list_cost": {"amount": amount, "currency": "USD"}}


def _cents(usage: UsageTotals) -> Decimal:
    """Exact list cost in cents (the shown `list_cost.amount` is rounded)."""
    return Decimal(str(usage.get("cost_usd", "0"))) * 100


async def spent_cents(db: AsyncSession, session: Session) -> Decimal:
    """What the session and all its threads spent, at list prices."""
    return _cents(session.usage) + sum(
        (_cents(row.usage) for row in await repository.children(db, session.id)), Decimal(0)
    )


def _limit(session: Session) -> Decimal | None:
    if session.budget is None:
        return None
    return Decimal(str(session.budget["max_list_cost"]["amount"]))


async def reached(db: AsyncSession, session: Session) -> bool:
    """Whether the session's budget is spent (a session without one never is)."""
    limit = _limit(session)
    return limit is not None and await spent_cents(db, session) >= limit


async def update(db: AsyncSession, session: Session, raw: Any) -> bool:
    """Apply `budget` of a session update; returns whether it changed."""
    if raw is None:
        if session.budget is None:
            return False
        session.budget, session.budget_removed = None, True
        return True
    budget = parse(raw)
    if session.budget is None:
        reason = (
            "a removed budget cannot be re-added"
            if session.budget_removed
            else ("a budget cannot be added to a session created without one")
        )
        raise InvalidRequest(f"budget: {reason} (budget_create_only)", error_code="budget_create_only")
    spent = await spent_cents(db, session)
    if Decimal(budget["max_list_cost"]["amount"]) <= spent:
        raise InvalidRequest(
            f"budget: max_list_cost must exceed the list cost already consumed "
            f"({spent.quantize(Decimal('0.01'))} cents) (budget_not_raised)",
            error_code="budget_not_raised",
        )
    if budget == session.budget:
        return False
    session.budget = budget
    return True


def check_settle_only(params_types: list[str]) -> None:
    """While the budget is reached, only settle events are accepted."""
    for i, kind in enumerate(params_types):
        if kind not in SETTLE_EVENTS:
            raise InvalidRequest(
                f"events[{i}]: the session's budget is reached; only {', '.join(SETTLE_EVENTS)} are "
                "accepted until the budget is raised or removed (budget_reached)"
            )
