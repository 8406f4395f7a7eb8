"""`mas dispatch --environment ENV`: run every claimed session of a self-hosted environment in a
sandbox of its own (see service.py). The environment key comes from MAS_DISPATCH_ENVIRONMENT_KEY,
never from the command line (where `ps` would show it)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from typing import Annotated

import typer

from app.config import Settings, get_settings
from app.dispatch.queue import QueueClient, QueueError
from app.dispatch.service import Dispatcher, DispatchOptions
from app.sandbox.interface import SandboxError
from app.sandbox.launcher import SandboxPolicy
from app.shared.environment_config import NetworkingConfig, unrestricted

Packages = Annotated[list[str] | None, typer.Option(help="Package of this manager (repeatable).")]


def default_api_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def dispatch(
    environment: Annotated[str, typer.Option(help="The self_hosted environment whose queue to serve.")],
    api_url: Annotated[
        str | None,
        typer.Option("--url", "--api-url", help="The mas API (default: http://MAS_HOST:MAS_PORT)."),
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="Run sandboxes from this image instead of the base image + packages.")
    ] = None,
    apt: Packages = None,
    cargo: Packages = None,
    gem: Packages = None,
    go: Packages = None,
    npm: Packages = None,
    pip: Packages = None,
    networking: Annotated[str, typer.Option(help="unrestricted or limited (egress proxy).")] = "unrestricted",
    allow_host: Annotated[
        list[str] | None, typer.Option(help="A host limited sandboxes may reach (repeatable).")
    ] = None,
    allow_package_managers: Annotated[
        bool, typer.Option(help="Let limited sandboxes reach the package registries.")
    ] = False,
    max_sessions: Annotated[int, typer.Option(min=1, help="Sandboxes running at once.")] = 4,
    max_idle: Annotated[
        float, typer.Option(min=0, help="Seconds a worker waits for new input after a turn ends.")
    ] = 60.0,
    drain_seconds: Annotated[
        float, typer.Option(min=0, help="On SIGTERM, how long running sandboxes may finish.")
    ] = 30.0,
) -> None:
    """Serve a self-hosted environment's work queue: one hardened sandbox per session, each running
    the SDK's EnvironmentWorker (key: MAS_DISPATCH_ENVIRONMENT_KEY)."""
    settings = get_settings()
    key = settings.dispatch_environment_key
    if not key:
        raise typer.BadParameter(
            "set MAS_DISPATCH_ENVIRONMENT_KEY to the environment key (mas env-keys create)"
        )
    if networking not in ("unrestricted", "limited"):
        raise typer.BadParameter("--networking must be unrestricted or limited")
    net: NetworkingConfig = unrestricted()
    if networking == "limited":
        net = {
            "type": "limited",
            "allowed_hosts": allow_host or [],
            "allow_package_managers": allow_package_managers,
        }
    policy = SandboxPolicy(
        packages={
            "apt": apt or [],
            "cargo": cargo or [],
            "gem": gem or [],
            "go": go or [],
            "npm": npm or [],
            "pip": pip or [],
        },
        image=image,
        networking=net,
        max_idle_seconds=max_idle,
    )
    options = DispatchOptions(
        api_url=(api_url or default_api_url(settings)).rstrip("/"),
        max_sessions=max_sessions,
        drain_seconds=drain_seconds,
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll says nothing
    try:
        asyncio.run(run(settings, environment, key, policy, options))
    except (QueueError, SandboxError) as exc:
        typer.echo(f"mas dispatch: {exc}", err=True)
        raise typer.Exit(1) from None


async def run(
    settings: Settings, environment_id: str, key: str, policy: SandboxPolicy, options: DispatchOptions
) -> None:
    from app.sandbox.commands import ProgressBar
    from app.sandbox.docker_launcher import DockerLauncher

    worker_id = f"mas-dispatch-{socket.gethostname()}-{os.getpid()}"
    queue = QueueClient(options.api_url, environment_id, key, worker_id)
    launcher = DockerLauncher(settings, environment_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        bar = ProgressBar()
        preparing = asyncio.create_task(launcher.prepare(policy, bar))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({preparing, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        bar.finish()
        if not preparing.done():
            preparing.cancel()
            echo("mas dispatch: stopped before the sandbox image was ready")
            return
        image = preparing.result()
        echo(
            f"mas dispatch: serving {environment_id} from {options.api_url} as {worker_id}; "
            f"sandboxes run {image}"
        )
        await Dispatcher(queue, launcher, options, echo).run(stop)
        echo("mas dispatch: stopped")
    finally:
        await queue.close()
        await launcher.close()


def echo(line: str) -> None:
    typer.echo(line)
