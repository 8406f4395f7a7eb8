"""The Prometheus metrics of mas, and their exposition.

Counters and histograms live in this process (``prometheus_client``'s default registry). When
several processes serve one deployment (API replicas, `mas worker`s), set the standard
``PROMETHEUS_MULTIPROC_DIR`` to a directory they share, empty at start: every process writes its
samples there and any one `/metrics` answers for all of them. Figures read from the database
(sessions by status, queue depths) are added at scrape time by the caller (`gauge_families`).

Labels are bounded sets (route templates, tool names, model ids, error types), never ids.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)

HTTP_REQUESTS = Histogram(
    "mas_http_request_duration_seconds",
    "HTTP requests by method, route template and status: time until the response ended "
    "(streams: the stream's life); _count is the request count.",
    ["method", "route", "status"],
    buckets=_FAST,
)
TURNS_STARTED = Counter("mas_turns_started_total", "Turns started (a session went from idle to running).")
TURNS = Histogram(
    "mas_turn_duration_seconds",
    "Turns ended (the session went idle or terminated) by stop reason, timed from when the session "
    "started running; _count is the number of turns.",
    ["stop_reason"],
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
)
MODEL_REQUESTS = Histogram(
    "mas_model_request_duration_seconds",
    "Model requests by model and outcome (ok, or the error type): time until the response was complete.",
    ["model", "outcome"],
    buckets=_SLOW,
)
MODEL_TOKENS = Counter(
    "mas_model_tokens_total",
    "Tokens of model responses by model and kind (input, output, cache_read, cache_creation).",
    ["model", "kind"],
)
TOOL_CALLS = Histogram(
    "mas_tool_call_duration_seconds",
    "Tool calls run by mas (built-in tools in the sandbox, MCP tools) by tool and outcome (ok, error).",
    ["tool", "outcome"],
    buckets=_SLOW,
)
SANDBOX_STARTS = Histogram(
    "mas_sandbox_start_duration_seconds",
    "Sandboxes started for a session: warm (taken from the pool), cold (created), restart (a stopped one).",
    ["kind"],
    buckets=_SLOW,
)
IMAGE_BUILDS = Histogram(
    "mas_image_build_duration_seconds",
    "Environment image builds by outcome (built, failed).",
    ["outcome"],
    buckets=(1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0),
)
EVENT_DELIVERY = Histogram(
    "mas_event_delivery_seconds",
    "From an event's append to the log to its delivery on a live SSE stream.",
    buckets=_FAST,
)
WORKER_LEASES = Gauge(
    "mas_worker_leases_held",
    "Sessions whose lease this process's worker holds (running, or waiting on tools).",
    multiprocess_mode="livesum",
)


def observe_event_delivery(processed_at: object) -> None:
    """Append -> live delivery, from the event's `processed_at` (ISO 8601, UTC)."""
    if isinstance(processed_at, str):
        appended = datetime.fromisoformat(processed_at).timestamp()
        EVENT_DELIVERY.observe(max(0.0, time.time() - appended))


def gauge_families(
    sessions_by_status: Mapping[str, int], queue_depths: Mapping[str, int]
) -> list[Metric]:
    """What the database knows, as gauges: the same from every process that is scraped."""
    sessions = GaugeMetricFamily("mas_sessions", "Sessions by status (from the database).", labels=["status"])
    for status, count in sorted(sessions_by_status.items()):
        sessions.add_metric([status], count)
    queues = GaugeMetricFamily(
        "mas_queue_depth",
        "Work waiting: sessions_runnable (due, unclaimed), work_items (self-hosted, queued), "
        "webhook_deliveries (pending).",
        labels=["queue"],
    )
    for queue, depth in sorted(queue_depths.items()):
        queues.add_metric([queue], depth)
    return [sessions, queues]


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def exposition(shared: Path | None, extra: Iterable[Metric] = ()) -> bytes:
    """The text exposition: this process's samples (with ``shared``, the multi-process directory:
    every process's), then ``extra``."""
    if shared is None:
        registry: CollectorRegistry = REGISTRY
    else:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(shared))  # type: ignore[no-untyped-call]
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_Families(extra))
    return generate_latest(registry) + generate_latest(scraped)


def process_exited(shared: Path | None) -> None:
    """Drop this process's live gauges from the shared directory (multi-process mode)."""
    if shared is not None:
        mark_process_dead(os.getpid(), str(shared))  # type: ignore[no-untyped-call]
