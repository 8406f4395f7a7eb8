"""All tables. Import this package so Alembic sees the full metadata."""

from app.db.models.agent import Agent, AgentVersion
from app.db.models.api_key import ApiKey
from app.db.models.content_blob import ContentBlob
from app.db.models.deployment import Deployment, DeploymentRun
from app.db.models.dream import Dream
from app.db.models.environment import Environment
from app.db.models.file import StoredFile
from app.db.models.memory import Memory, MemoryStore, MemoryVersion
from app.db.models.session import Session
from app.db.models.session_event import SessionEvent
from app.db.models.skill import Skill, SkillFile, SkillVersion
from app.db.models.vault import Vault, VaultCredential
from app.db.models.webhook import WebhookDelivery, WebhookEndpoint
from app.db.models.work import EnvironmentKey, WorkItem, WorkPoller
from app.db.models.workflow_run import WorkflowRun

__all__ = [
    "Agent",
    "AgentVersion",
    "ApiKey",
    "ContentBlob",
    "Deployment",
    "DeploymentRun",
    "Dream",
    "Environment",
    "EnvironmentKey",
    "Memory",
    "MemoryStore",
    "MemoryVersion",
    "Session",
    "SessionEvent",
    "Skill",
    "SkillFile",
    "SkillVersion",
    "StoredFile",
    "Vault",
    "VaultCredential",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkItem",
    "WorkPoller",
    "WorkflowRun",
]
