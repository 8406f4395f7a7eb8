"""`mas sandbox ...`: build the base and environment images; clean and prune what no session needs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli_output import Json
from app.config import get_settings

if TYPE_CHECKING:
    from app.maintenance import PruneResult

sandbox_cli = typer.Typer(
    help="Build sandbox images; clean and prune what no session needs.", no_args_is_help=True
)


@sandbox_cli.command("base")
def sandbox_base(
    force: Annotated[bool, typer.Option(help="Rebuild even if the image exists.")] = False,
) -> None:
    """Build the sandbox base and egress-proxy images from Debian packages (no registry needed)."""
    from app.cli_output import interactive
    from app.sandbox.commands import ProgressBar, build_base_image

    if not interactive():
        raise typer.Exit(build_base_image(get_settings(), force=force, echo=typer.echo))
    bar = ProgressBar(interactive=True)  # the phases (bootstrap, base, proxy) with the time taken
    try:
        code = build_base_image(get_settings(), force=force, echo=bar.feed)
    finally:
        bar.finish()
    if code != 0:
        typer.echo("\n".join(bar.tail), err=True)
    raise typer.Exit(code)


@sandbox_cli.command("clean")
def sandbox_clean() -> None:
    """Remove every sandbox of this instance (MAS_SANDBOX_INSTANCE); run it when its server is stopped."""
    from app.sandbox.commands import remove_instance_sandboxes

    typer.echo(f"removed {remove_instance_sandboxes(get_settings())} sandboxes")


@sandbox_cli.command("prune")
def sandbox_prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; remove nothing.")] = False,
    as_json: Json = False,
) -> None:
    """Remove this instance's stopped containers no session needs and environment images no
    environment needs (never the base images, never what a live session or environment uses)."""
    from app.cli_output import interactive, progress
    from app.maintenance import prune

    settings = get_settings()
    if settings.sandbox_backend != "docker":
        typer.echo(
            "error: `mas sandbox prune` works on the Docker backend (MAS_SANDBOX_BACKEND=docker)", err=True
        )
        raise typer.Exit(1)
    if dry_run or not interactive():  # off a terminal the report below says it all
        result = prune(settings, dry_run=dry_run)
    else:
        with progress("pruning") as advance:
            result = prune(settings, dry_run=dry_run, on_item=advance)
    _report_prune(result, dry_run=dry_run, as_json=as_json)
    raise typer.Exit(1 if result.failed else 0)


def _report_prune(result: PruneResult, *, dry_run: bool, as_json: bool) -> None:
    if as_json:
        items = [{**item.as_json(), "error": result.failed.get(item.id)} for item in result.planned]
        typer.echo(json.dumps({"dry_run": dry_run, "items": items}, indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    for item in result.planned:
        size = f" ({item.size_bytes / 1e6:.1f} MB)" if item.size_bytes else ""
        failed = result.failed.get(item.id)
        head = (
            f"FAILED to remove {item.kind} {item.name}: {failed}"
            if failed
            else f"{verb} {item.kind} {item.name}"
        )
        typer.echo(f"{head}{size}: {item.reason}" if not failed else head)
    gone = result.planned if dry_run else result.removed
    freed = sum(item.size_bytes or 0 for item in gone)
    containers = sum(1 for item in gone if item.kind == "container")
    typer.echo(
        f"{verb} {containers} container(s), {len(gone) - containers} image(s) ({freed / 1e6:.1f} MB)"
        if gone
        else "nothing to prune"
    )


@sandbox_cli.command("build")
def sandbox_build(
    apt: Annotated[list[str] | None, typer.Option(help="apt package (repeatable).")] = None,
    cargo: Annotated[list[str] | None, typer.Option(help="cargo crate.")] = None,
    gem: Annotated[list[str] | None, typer.Option(help="Ruby gem.")] = None,
    go: Annotated[list[str] | None, typer.Option(help="Go module path@version.")] = None,
    npm: Annotated[list[str] | None, typer.Option(help="npm package.")] = None,
    pip: Annotated[list[str] | None, typer.Option(help="pip requirement.")] = None,
) -> None:
    """Build (or reuse) the image of an environment's package spec, with a progress bar."""
    from app.sandbox.commands import build_environment_image

    packages = {
        "apt": apt or [],
        "cargo": cargo or [],
        "gem": gem or [],
        "go": go or [],
        "npm": npm or [],
        "pip": pip or [],
    }
    typer.echo(build_environment_image(get_settings(), packages))
