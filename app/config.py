"""The one settings class. Every knob of mas is read here (env prefix ``MAS_``, ``.env`` read too).

This module imports no other ``app`` module.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ModelBackend = Literal["auto", "anthropic", "offline", "record", "replay", "record_missing"]
CassetteMode = Literal["record", "replay", "record_missing"]


# List prices (USD per MTok) used for `usage.list_cost`. Unknown models fall back to the sonnet row.
DEFAULT_PRICES: dict[str, dict[str, str]] = {
    "opus": {"input": "5", "output": "25", "cache_write_5m": "6.25", "cache_read": "0.50"},
    "sonnet": {"input": "3", "output": "15", "cache_write_5m": "3.75", "cache_read": "0.30"},
    "haiku": {"input": "1", "output": "5", "cache_write_5m": "1.25", "cache_read": "0.10"},
    "fable": {"input": "3", "output": "15", "cache_write_5m": "3.75", "cache_read": "0.30"},
}


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAS_", env_file=".env", extra="ignore")

    # --- server -----------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface `mas serve` binds to.")
    port: int = Field(8000, description="Port `mas serve` listens on.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./data/mas.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user:pw@host/db.",
    )
    database_pool_size: int = Field(10, description="Connection pool size (PostgreSQL).")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated API keys that are always accepted (local use, CI)."
    )
    rate_limits: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Per-API-key request rate limits: auto = on unless the model backend is the offline "
        "model (the offline test profile), on, or off.",
    )
    rate_limit_creates_per_minute: int = Field(
        60, description="Create requests (POST to a collection) per minute and API key; 0 = unlimited."
    )
    rate_limit_reads_per_minute: int = Field(
        600, description="Other requests per minute and API key; 0 = unlimited."
    )
    auto_migrate: bool = Field(True, description="Apply Alembic migrations when `mas serve` starts.")
    log_level: str = Field("info", description="Log level for mas and uvicorn.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as readable text, or JSON objects (one per line); both carry the "
        "request, session, worker and trace ids of the line's work.",
    )
    access_log: bool = Field(
        False,
        description="Log one line per HTTP request (method, path, status, duration; logger mas.access).",
    )
    max_request_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        description="Largest request body (32 MiB, as hosted); uploads have their own limits. Larger: 413.",
    )

    # --- operations ---------------------------------------------------------------------------
    metrics_enabled: bool = Field(
        True, description="Serve /metrics and time every HTTP request by route (off: neither)."
    )
    metrics_public: bool = Field(
        False, description="Serve /metrics without an API key (for a Prometheus on a trusted network)."
    )
    prometheus_multiproc_dir: Path | None = Field(
        None,
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="prometheus_client's standard variable: a directory every process of one deployment "
        "shares (empty at start), so any /metrics answers for all of them.",
    )

    otlp_endpoint: str | None = Field(
        None,
        description="Export OpenTelemetry traces over OTLP/HTTP to this base URL (`/v1/traces` is added), "
        "e.g. http://localhost:4318; unset: tracing is off.",
    )
    trace_sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of new traces recorded (a continued trace follows its parent).",
    )

    # --- streaming ----------------------------------------------------------------------------
    stream_heartbeat_seconds: float = Field(
        10.0, description="Interval of `ping` frames on idle SSE streams."
    )
    stream_poll_seconds: float = Field(
        2.0, description="How often a stream re-reads the log even without a notification (safety net)."
    )

    # --- worker -------------------------------------------------------------------------------
    embedded_worker: bool = Field(True, description="Run the worker inside `mas serve`.")
    worker_concurrency: int = Field(
        8, ge=1, description="Sessions one worker process works on at once (a tool wait frees its slot)."
    )
    worker_tool_waits: int = Field(
        64, ge=0, description="Sessions one worker may have waiting on tool calls besides those it works on."
    )
    worker_lease_seconds: float = Field(
        30.0, description="Lease a worker holds on a session or a dream; renewed while it runs."
    )
    worker_poll_seconds: float = Field(
        30.0,
        gt=0,
        description="Safety poll of the worker's claims: work, retries and expired leases wake it "
        "when they fall due; this catches anything else.",
    )
    missed_wakeup_poll_seconds: float = Field(
        1.0,
        gt=0,
        description="How often background services (worker claims, webhook sender, deployment "
        "scheduler, dream runner) look for work while wake-ups from other processes can be missed: a "
        "lost LISTEN connection on PostgreSQL; on SQLite, a live process without a notification "
        "socket (an older mas).",
    )
    worker_ledgers: int = Field(
        64,
        ge=0,
        description="Sessions whose log a worker keeps read and analysed between claims, so their next "
        "turn reads only what is new (least recently run dropped first; 0: read each claim's log anew).",
    )
    ledger_verify: bool = Field(
        False,
        description="Check aid: every step also rebuilds the turn from the full log and compares "
        "(slow; the test-suite turns it on).",
    )
    max_model_retries: int = Field(
        4, description="Retries of a failed model request before retries_exhausted."
    )
    retry_base_seconds: float = Field(1.0, description="First retry backoff; doubles each retry.")
    max_tool_rounds: int = Field(
        200, description="Model requests per turn before tool_use_limit_reached_error."
    )
    outcome_heartbeat_seconds: float = Field(
        5.0,
        gt=0,
        description="Interval of `span.outcome_evaluation_ongoing` heartbeats while the outcome "
        "grader scores an iteration (one is sent as grading starts).",
    )

    # --- self-hosted work queue -----------------------------------------------------------
    work_lease_ttl_seconds: int = Field(
        90,
        description="Lease of a claimed work item until a heartbeat asks for another TTL; "
        "an item not heartbeaten within it goes back to the queue.",
    )
    work_max_ttl_seconds: int = Field(
        3600, description="Largest `desired_ttl_seconds` a heartbeat may ask for."
    )

    dispatch_environment_key: str | None = Field(
        None,
        description="The environment key `mas dispatch` polls with (an environment variable, so that "
        "it stays out of the command line).",
    )

    # --- webhooks ------------------------------------------------------------------------------
    webhooks_enabled: bool = Field(True, description="Send webhook deliveries from this process.")
    webhook_poll_seconds: float = Field(
        30.0,
        gt=0,
        description="Safety poll of the webhook sender: queued deliveries wake it and retries are sent "
        "when due; this catches anything else.",
    )
    webhook_timeout_seconds: float = Field(10.0, description="Time limit of one delivery attempt.")
    webhook_max_attempts: int = Field(8, description="Attempts per delivery before it is marked failed.")
    webhook_retry_base_seconds: float = Field(
        5.0,
        gt=0,
        description="Shortest delay between two attempts; the window doubles per attempt, jittered.",
    )
    webhook_retry_max_seconds: float = Field(120.0, gt=0, description="Longest delay between two attempts.")
    webhook_disable_after_failures: int = Field(
        20, description="Failed attempts in a row after which an endpoint is disabled."
    )

    # --- deployments ---------------------------------------------------------------------------
    deployments_scheduler: bool = Field(True, description="Fire scheduled deployments from this process.")
    deployment_poll_seconds: float = Field(
        30.0,
        gt=0,
        description="Safety poll of the deployment scheduler: it wakes when a slot falls due and when "
        "a deployment changes; this catches anything else.",
    )
    deployment_max_jitter_seconds: float = Field(
        540.0, description="Cap of the per-deployment jitter (15 % of the cron interval, 5 s to 9 min)."
    )
    deployment_missed_grace_seconds: float = Field(
        3600.0, description="A slot missed while no server ran is made up (once) only if no older than this."
    )

    # --- model --------------------------------------------------------------------------------
    model_backend: ModelBackend = Field(
        "auto",
        description="auto: the real API when ANTHROPIC_API_KEY is set, else the offline model; record, "
        "replay, record_missing: through cassettes (see Testing your agent code).",
    )
    cassette_dir: Path = Field(
        Path("cassettes"), description="Directory of cassettes for the record/replay model backends."
    )
    cassette: str = Field(
        "default",
        description="Cassette in use at start: <cassette_dir>/<cassette>.json (switchable per test).",
    )
    anthropic_api_key: str | None = Field(
        None,
        validation_alias=AliasChoices("MAS_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
        description="Key for the real Messages API (ANTHROPIC_API_KEY works too).",
    )
    anthropic_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("MAS_ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL"),
        description="Messages API base URL (a compatible gateway); ANTHROPIC_BASE_URL works too.",
    )
    offline_script_dir: Path | None = Field(
        None,
        description="Directory of per-agent offline scripts named by `#offline-script: NAME` in a system "
        "prompt (unset: only inline and global scripts).",
    )
    offline_script: Path | None = Field(
        None, description="JSON script file of turn-by-turn responses for the offline model (global)."
    )
    model_timeout_seconds: float = Field(
        600.0, description="HTTP timeout of one model request (the stream's read timeout)."
    )
    compaction_threshold_tokens: int = Field(
        150_000, description="Input tokens of a request above which the history is compacted."
    )
    max_compactions_in_a_row: int = Field(
        3,
        description="Compactions each followed by at most one request before compaction_limit_reached_error.",
    )
    prices: dict[str, dict[str, str]] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="List prices (USD/MTok) by model family, JSON.",
    )

    # --- sandbox ------------------------------------------------------------------------------
    sandbox_backend: Literal["docker", "local"] = Field(
        "docker",
        description="Where built-in tools run: per-session Docker containers, or local (tests only).",
    )
    sandbox_base_image: str = Field(
        "mas-sandbox-base:bookworm",
        description="Base image for environment images (built by `mas sandbox base`).",
    )
    sandbox_memory_mb: int = Field(2048, description="Memory limit of a session container (MiB).")
    sandbox_cpus: float = Field(1.0, description="CPU limit of a session container.")
    sandbox_pids: int = Field(512, description="Process limit of a session container.")
    sandbox_idle_stop_seconds: float = Field(
        900.0, description="Stop a session container after this idle time."
    )
    sandbox_pip_index_url: str | None = Field(None, description="pip index URL for image builds (mirror).")
    sandbox_apt_mirror: str | None = Field(None, description="Debian mirror URL for image builds.")
    sandbox_npm_registry: str | None = Field(None, description="npm registry URL for image builds.")
    sandbox_goproxy: str | None = Field(None, description="GOPROXY for image builds.")
    sandbox_gem_source: str | None = Field(None, description="RubyGems source for image builds.")
    sandbox_cargo_registry: str | None = Field(None, description="crates.io mirror (sparse index URL).")
    sandbox_state_dir: Path = Field(
        Path("./data/sandbox"),
        description="Host directory for per-session tool-server sockets and proxy configs (bind-mounted "
        "into containers, so it must be a path the Docker daemon sees).",
    )
    sandbox_assets_dir: Path = Field(
        Path(__file__).resolve().parent.parent / "sandbox",
        description="The repository's sandbox/ directory: tool server (mounted read-only) and build-base.sh.",
    )
    sandbox_instance: str = Field(
        "default",
        description="Label value (mas.instance) owning this server's containers; reaping touches no other.",
    )
    sandbox_network: str = Field("mas-sandbox", description="Docker network of unrestricted sessions.")
    sandbox_egress_network: str = Field(
        "mas-egress", description="Docker network the egress proxies of limited sessions reach out from."
    )
    sandbox_proxy_image: str = Field(
        "mas-sandbox-egress:bookworm-python",
        description="Egress proxy image: python3 for the mounted proxy (built by build-base.sh).",
    )
    sandbox_egress_ca_bundle: Path | None = Field(
        None,
        description="Extra CA certificates (PEM) the egress proxy trusts, besides the host's, when it "
        "connects upstream for a session whose vault secrets it substitutes (a private CA).",
    )
    sandbox_disk_mb: int = Field(
        4096,
        ge=0,
        description="Disk quota of one sandbox (MiB): workspace, /tmp, home and outputs share one "
        "loop-mounted filesystem of this size and the root filesystem is read-only; 0 turns quotas off.",
    )
    sandbox_host_firewall: bool = Field(
        True,
        description="Install iptables rules (through a privileged helper container) so sandboxes cannot "
        "reach the host's services or the link-local metadata range; off only for engines that cannot.",
    )
    sandbox_warm_pool: int = Field(
        2,
        description="Started sandboxes kept ready per image in use (unrestricted networking), so a new "
        "session's first tool call does not wait for a container to start; 0 disables.",
    )
    sandbox_bash_timeout_seconds: float = Field(
        120.0, gt=0, description="Default time limit of one bash call (the tool's timeout_ms overrides it)."
    )
    sandbox_max_tool_seconds: float = Field(
        600.0,
        gt=0,
        description="Upper bound of any tool call's time limit (a larger timeout_ms is cut to it).",
    )
    sandbox_engine_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Deadline of one Docker engine call (image builds excepted); past it the sandbox "
        "is reported unavailable and the session gets a session.error.",
    )
    sandbox_engine_concurrency: int = Field(
        8, ge=1, description="Docker engine calls in flight at once, per process; more wait their turn."
    )
    # --- vaults -------------------------------------------------------------------------------
    vault_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Fernet keys that encrypt vault secrets at rest: the first encrypts, "
        "every one decrypts (add a new key in front to rotate). Unset: a key is generated once into "
        "vault_key_file.",
    )
    vault_key_file: Path = Field(
        Path("./data/vault.key"),
        description="Where the generated vault key is kept when vault_keys is unset (mode 0600).",
    )

    # --- MCP ----------------------------------------------------------------------------------
    mcp_call_timeout_seconds: float = Field(
        300.0, description="Longest an MCP tool call may take before it becomes an error result."
    )
    mcp_idle_seconds: float = Field(
        300.0, description="Close a session's MCP connections after this long without use."
    )

    # --- skills -------------------------------------------------------------------------------
    skills_max_upload_bytes: int = Field(
        8 * 1024 * 1024, description="Largest skill version (all its files together), in bytes."
    )
    skills_max_files: int = Field(500, description="Most files one skill version may hold.")

    # --- files and storage -------------------------------------------------------------------
    storage_dir: Path = Field(
        Path("./data/storage"),
        description="Where uploaded and produced files are kept on disk: content addressed "
        "(blobs/ab/cd/<sha256>), written to tmp/ first and renamed into place.",
    )
    dreams_poll_seconds: float = Field(
        30.0,
        description="Safety poll of the dream runner (a new dream wakes it; this finds dreams whose "
        "worker died); 0: this worker runs none.",
    )
    storage_sweep_seconds: float = Field(
        30.0, description="How often content with no references left is removed from disk; 0 disables."
    )
    files_max_bytes: int = Field(
        500 * 1024 * 1024,
        description="Largest file one upload may carry (500 MB, as hosted); larger is a 413.",
    )
    files_quota_bytes: int = Field(
        100 * 1024**3,
        description="Total size of uploaded files kept at once (100 GB, as hosted); over it an upload "
        "is a 400 storage_quota_exceeded.",
    )
    files_outputs_max_bytes: int = Field(
        4 * 1024**3,
        ge=0,
        description="Total size of the outputs one session keeps (what it writes under "
        "/mnt/session/outputs; 4 GiB, the default sandbox disk); an output that would pass it is not kept.",
    )
    github_base_url: str = Field(
        "https://github.com",
        description="Where github_repository resources live: GitHub, a GitHub Enterprise server, or "
        "any git smart-HTTP server (repository URLs must be <base>/<owner>/<repo>).",
    )
    files_uploads_downloadable: bool = Field(
        False,
        description="Let uploaded files be downloaded too (hosted: only session outputs are; "
        "downloading an upload is a 400 file_not_downloadable).",
    )

    web_search_url: str | None = Field(
        None, description="Search endpoint for web_search when the backend is not the real API."
    )

    def uses_real_api(self) -> bool:
        """Requests go (or went, for cassettes) to the hosted API itself rather than a compatible
        base URL: only then is `web_search` the API's server tool."""
        if self.resolved_model_backend() == "anthropic":
            return True
        return self.cassette_mode() is not None and self.anthropic_base_url is None

    def cassette_mode(self) -> CassetteMode | None:
        backend = self.model_backend
        if backend == "record" or backend == "replay" or backend == "record_missing":
            return backend
        return None

    def resolved_model_backend(self) -> Literal["anthropic", "offline", "record", "replay", "record_missing"]:
        if self.model_backend == "auto":
            return "anthropic" if self.anthropic_api_key else "offline"
        return self.model_backend

    def rate_limits_enabled(self) -> bool:
        if self.rate_limits == "auto":
            return self.resolved_model_backend() != "offline"
        return self.rate_limits == "on"

    @field_validator("api_keys", "vault_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        return _split_csv(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
