"""The baseline of bench_http: a bare FastAPI app that serves bodies captured from mas, unchanged.

    python bench/bare_server.py --port PORT --bodies bodies.json

`bodies.json` maps a request path to `{"content_type", "body"}`. The routes have the same shapes
as mas's (path parameters included), the handlers are `async def` like mas's, and uvicorn runs
with the settings `mas serve` uses, so the difference to mas is mas's own work per request.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Response


def create_app(bodies: dict[str, tuple[bytes, str]]) -> FastAPI:
    app = FastAPI()

    def reply(path: str) -> Response:
        body, content_type = bodies[path]
        return Response(body, media_type=content_type)

    @app.get("/v1/agents/{agent_id}")
    async def get_agent(agent_id: str) -> Response:
        return reply(f"/v1/agents/{agent_id}")

    @app.get("/v1/environments/{environment_id}")
    async def get_environment(environment_id: str) -> Response:
        return reply(f"/v1/environments/{environment_id}")

    @app.get("/v1/sessions")
    async def list_sessions() -> Response:
        return reply("/v1/sessions")

    @app.get("/v1/sessions/{session_id}/events")
    async def list_events(session_id: str) -> Response:
        return reply(f"/v1/sessions/{session_id}/events")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    args = parser.parse_args()
    raw = json.loads(args.bodies.read_text())
    bodies = {path: (entry["body"].encode(), entry["content_type"]) for path, entry in raw.items()}
    # As `mas serve` runs uvicorn (app/cli.py): one process, default loop and HTTP parser, no access log.
    uvicorn.run(
        create_app(bodies),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
