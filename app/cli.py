"""The `mas` command: serve, worker, migrate, keys, env-keys, webhooks, sandbox, files, sessions,
dispatch."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Annotated, TypedDict

import typer

from app.cli_db import run_api_call as _run_api_call
from app.cli_output import Json, emit
from app.cli_sandbox import sandbox_cli
from app.cli_webhooks import webhooks_cli
from app.config import Settings, get_settings

if TYPE_CHECKING:
    from types import FrameType

    from app.envkeys.schemas import EnvironmentKey
from app.dispatch.commands import dispatch
from app.files.commands import files_cli
from app.sessions.commands import sessions_cli

cli = typer.Typer(help="mas: the Managed Agents Server.", no_args_is_help=True, add_completion=False)
keys_cli = typer.Typer(help="Manage API keys (stored hashed).", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
env_keys_cli = typer.Typer(
    help="Manage environment keys: a self-hosted worker's credential (stored hashed).", no_args_is_help=True
)
cli.add_typer(env_keys_cli, name="env-keys")
cli.add_typer(webhooks_cli, name="webhooks")
cli.add_typer(sandbox_cli, name="sandbox")
cli.add_typer(files_cli, name="files")
cli.add_typer(sessions_cli, name="sessions")
cli.command("dispatch")(dispatch)


def _configure_logging(settings: Settings) -> None:
    from app.observability import logs

    logs.configure(settings.log_level, settings.log_format)


def _announce(settings: Settings, host: str, port: int) -> None:
    backend = settings.resolved_model_backend()
    typer.echo(f"mas serving http://{host}:{port}  (database: {settings.database_url})")
    if backend == "offline":
        typer.echo(
            "model: the built-in OFFLINE model (deterministic, no network). "
            "Set ANTHROPIC_API_KEY to use the real Messages API."
        )
    elif settings.cassette_mode() is not None:
        upstream = (
            "no upstream"
            if backend == "replay"
            else settings.anthropic_base_url or "https://api.anthropic.com"
        )
        cassette = settings.cassette_dir / f"{settings.cassette}.json"
        typer.echo(f"model: {backend} with cassette {cassette} ({upstream})")
    else:
        typer.echo(f"model: the Messages API at {settings.anthropic_base_url or 'https://api.anthropic.com'}")
    if not settings.api_keys:
        typer.echo("warning: MAS_API_KEYS is empty; only keys made with `mas keys create` are accepted.")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the API (and the embedded worker); applies migrations at start."""
    import uvicorn

    from app.api.http_protocol import http_protocol
    from app.api.sse import OpenStreams
    from app.main import create_app

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    settings = settings.model_copy(update={"host": host, "port": port})
    _configure_logging(settings)
    _announce(settings, host, port)
    app = create_app(settings)
    # A bounded graceful shutdown: open streams and model requests must not hold a stop forever.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        log_config=None,  # our handler formats uvicorn's lines too (see `_configure_logging`)
        access_log=False,  # mas writes its own, with the request id: MAS_ACCESS_LOG
        timeout_graceful_shutdown=5,
        http=http_protocol(),  # request bodies without uvicorn's two copies (app/api/http_protocol.py)
    )
    streams: OpenStreams = app.state.streams

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            streams.close_all()  # clients on a stream never leave by themselves

    server = Server(config)
    server.run()
    if not server.started:
        raise typer.Exit(3)  # as `uvicorn.run` exits when it could not start


async def _run_worker(settings: Settings) -> None:
    from contextlib import AsyncExitStack

    from app.db.engine import Database
    from app.deployments.scheduler import start_scheduler
    from app.events.notifier import Notifier
    from app.main import start_fanout
    from app.observability import tracing
    from app.webhooks.dispatcher import start_dispatcher
    from app.worker.runtime import start_worker

    async with AsyncExitStack() as stack:
        tracing.configure(settings.otlp_endpoint, "mas", settings.trace_sample_ratio)
        stack.callback(tracing.shutdown)
        db = Database(settings.database_url, settings.database_pool_size)
        stack.push_async_callback(db.dispose)
        notifier = Notifier()
        db.on_wake = notifier.wake  # a commit that queued work wakes its services everywhere
        # The API processes' announcements reach this one: NOTIFY on PostgreSQL, the processes'
        # sockets on SQLite (`app.events.sqlite_channel`).
        await start_fanout(stack, db, notifier)
        await start_dispatcher(stack, settings, db, notifier)
        await start_scheduler(stack, settings, db, notifier)
        await start_worker(stack, settings, db, notifier)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        typer.echo("worker stopping...")


@cli.command()
def worker() -> None:
    """Run a worker alone (the offline model runs inside it: no API process is needed)."""
    from app.db import migrate as migrations

    settings = get_settings()
    _configure_logging(settings)
    migrations.upgrade(settings.database_url, settings.storage_dir)
    typer.echo(f"mas worker (database: {settings.database_url}, model: {settings.resolved_model_backend()})")
    asyncio.run(_run_worker(settings))


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"mas {version('mas')}")
        raise typer.Exit()


@cli.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """mas: the Managed Agents Server."""


@cli.command()
def doctor() -> None:
    """Check what mas needs here (database, Docker, sandbox images, disk) and say what to do."""
    from app.doctor import examine

    findings = examine(get_settings())
    for finding in findings:
        if finding.ok:
            typer.echo(f"ok    {finding.check}")
        else:
            typer.echo(f"FAIL  {finding.check}: {finding.problem}\n      -> {finding.advice}")
    failed = [f for f in findings if not f.ok]
    typer.echo("all good" if not failed else f"{len(failed)} problem(s)")
    raise typer.Exit(1 if failed else 0)


@cli.command()
def migrate() -> None:
    """Apply database migrations."""
    from app.db import migrate as migrations

    settings = get_settings()
    migrations.upgrade(settings.database_url, settings.storage_dir)
    typer.echo(f"migrated {settings.database_url}")


async def _keys_create(name: str) -> str:
    from app.apikeys import service
    from app.db.engine import Database

    db = Database(get_settings().database_url)
    try:
        async with db.unit_of_work() as session:
            row, secret = await service.create(session, name)
        return f"{row.id}\t{secret}"
    finally:
        await db.dispose()


@keys_cli.command("create")
def keys_create(name: Annotated[str, typer.Option(help="A label for the key.")] = "default") -> None:
    """Create an API key. The key is printed once and stored only as a hash."""
    from app.db import migrate as migrations

    migrations.upgrade(get_settings().database_url, get_settings().storage_dir)
    typer.echo(asyncio.run(_keys_create(name)))


def _state(revoked_at: object) -> str:
    return "revoked" if revoked_at else "active"


class _ListedKey(TypedDict):
    """A key as `mas keys list` and `mas env-keys list` show it (never the key itself)."""

    id: str
    name: str
    hint: str
    created_at: str
    revoked_at: str | None
    state: str


async def _keys_list() -> list[_ListedKey]:
    from app.apikeys import service
    from app.db.engine import Database

    db = Database(get_settings().database_url)
    try:
        async with db.read() as session:
            rows = await service.list_keys(session)
        return [
            {
                "id": r.id,
                "name": r.name,
                "hint": r.hint,
                "created_at": r.created_at.isoformat(),
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                "state": _state(r.revoked_at),
            }
            for r in rows
        ]
    finally:
        await db.dispose()


@keys_cli.command("list")
def keys_list(as_json: Json = False) -> None:
    """List API keys (never the keys themselves)."""
    emit(
        asyncio.run(_keys_list()),
        as_json,
        lambda k: f"{k['id']}\t{k['name']}\t{k['hint']}\t{k['created_at']}\t{k['state']}",
    )


async def _keys_revoke(key_id: str) -> None:
    from app.apikeys import service
    from app.db.engine import Database

    db = Database(get_settings().database_url)
    try:
        async with db.unit_of_work() as session:
            await service.revoke(session, key_id)
    finally:
        await db.dispose()


@keys_cli.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key by id."""
    asyncio.run(_keys_revoke(key_id))
    typer.echo(f"revoked {key_id}")


async def _env_keys_create(environment_id: str, name: str) -> list[str]:
    from app.db.engine import Database
    from app.envkeys import service
    from app.envkeys.schemas import EnvironmentKeyCreate

    db = Database(get_settings().database_url)
    try:
        async with db.unit_of_work() as session:
            key = await service.create(session, environment_id, EnvironmentKeyCreate(name=name))
        return [f"created {key.id} for {environment_id} (shown once; stored hashed):", key.key or ""]
    finally:
        await db.dispose()


class _ListedEnvironmentKey(_ListedKey):
    type: str
    environment_id: str


def _listed_environment_key(key: EnvironmentKey) -> _ListedEnvironmentKey:
    times = key.model_dump(mode="json", include={"created_at", "revoked_at"})  # the API's text
    return {
        "type": key.type,
        "id": key.id,
        "environment_id": key.environment_id,
        "name": key.name,
        "hint": key.hint,
        "created_at": times["created_at"],
        "revoked_at": times["revoked_at"],
        "state": _state(key.revoked_at),
    }


async def _env_keys_list(environment_id: str) -> list[_ListedEnvironmentKey]:
    from app.db.engine import Database
    from app.envkeys import service

    db = Database(get_settings().database_url)
    keys: list[_ListedEnvironmentKey] = []
    try:
        async with db.read() as session:
            page: str | None = None
            while True:
                listed = await service.list_keys(session, environment_id, limit=100, page=page)
                keys += [_listed_environment_key(k) for k in listed.data]
                if not (page := listed.next_page):
                    return keys
    finally:
        await db.dispose()


async def _env_keys_revoke(environment_id: str, key_id: str) -> None:
    from app.db.engine import Database
    from app.envkeys import service

    db = Database(get_settings().database_url)
    try:
        async with db.unit_of_work() as session:
            await service.revoke(session, environment_id, key_id)
    finally:
        await db.dispose()


@env_keys_cli.command("create")
def env_keys_create(
    environment_id: str,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "default",
) -> None:
    """Create a key for a self_hosted environment; the key is printed once, on the last line."""
    from app.db import migrate as migrations

    migrations.upgrade(get_settings().database_url, get_settings().storage_dir)
    for line in _run_api_call(_env_keys_create(environment_id, name)):
        typer.echo(line)


@env_keys_cli.command("list")
def env_keys_list(environment_id: str, as_json: Json = False) -> None:
    """List an environment's keys (never the keys themselves)."""
    emit(
        _run_api_call(_env_keys_list(environment_id)),
        as_json,
        lambda k: f"{k['id']}\t{k['name']}\t{k['hint']}\t{k['created_at']}\t{k['state']}",
    )


@env_keys_cli.command("revoke")
def env_keys_revoke(environment_id: str, key_id: str) -> None:
    """Revoke an environment key: its workers are refused within seconds."""
    _run_api_call(_env_keys_revoke(environment_id, key_id))
    typer.echo(f"revoked {key_id}")


def main() -> None:
    cli()
