"""Schemas of /v1/deployments and /v1/deployment_runs, after the SDK's
`BetaManagedAgentsDeployment` and `BetaManagedAgentsDeploymentRun`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.db.deployment_json import PausedReason, RunError, TriggerContext
from app.db.session_json import Budget, ResourceJson
from app.events.schemas import InitialEvent

Name = Annotated[str, Field(min_length=1, max_length=256)]
InitialEvents = Annotated[list[InitialEvent], Field(min_length=1, max_length=50)]


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ScheduleParams(Params):
    type: Literal["cron"]
    expression: Annotated[str, Field(min_length=1, max_length=256)]
    timezone: Annotated[str, Field(min_length=1, max_length=64)]


class AgentParams(Params):
    type: Literal["agent"] = "agent"
    id: str
    version: int


class DeploymentCreate(Params):
    name: Name
    agent: str | AgentParams
    environment_id: str = Field(min_length=1)
    initial_events: InitialEvents
    description: str | None = None
    metadata: dict[str, str] | None = None
    resources: list[dict[str, JsonValue]] | None = None  # unsupported: refused unless empty
    vault_ids: list[str] | None = None
    budget: dict[str, JsonValue] | None = None  # unsupported: refused unless null
    schedule: ScheduleParams | None = None


class DeploymentUpdate(Params):
    """Omitted fields keep their value (`model_fields_set` tells omitted from null)."""

    name: Name | None = None
    agent: str | AgentParams | None = None
    environment_id: str | None = None
    initial_events: InitialEvents | None = None
    description: str | None = None
    metadata: dict[str, str | None] | None = None
    resources: list[dict[str, JsonValue]] | None = None  # unsupported: refused unless empty
    vault_ids: list[str] | None = None
    budget: dict[str, JsonValue] | None = None  # unsupported: refused unless null
    schedule: ScheduleParams | None = None


class AgentReference(BaseModel):
    type: Literal["agent"] = "agent"
    id: str
    version: int


class Schedule(BaseModel):
    type: Literal["cron"] = "cron"
    expression: str
    timezone: str
    last_run_at: datetime | None
    upcoming_runs_at: list[datetime]


class Deployment(BaseModel):
    type: Literal["deployment"] = "deployment"
    id: str
    name: str
    description: str | None
    agent: AgentReference
    environment_id: str
    initial_events: list[dict[str, JsonValue]]  # as stored (dump_event)
    metadata: dict[str, str]
    resources: list[ResourceJson]
    vault_ids: list[str]
    budget: Budget | None = None
    schedule: Schedule | None
    status: Literal["active", "paused"]
    paused_reason: PausedReason | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class DeploymentPage(BaseModel):
    data: list[Deployment]
    next_page: str | None


class DeploymentRun(BaseModel):
    type: Literal["deployment_run"] = "deployment_run"
    id: str
    deployment_id: str
    agent: AgentReference
    session_id: str | None
    error: RunError | None
    trigger_context: TriggerContext
    created_at: datetime


class DeploymentRunPage(BaseModel):
    data: list[DeploymentRun]
    next_page: str | None
