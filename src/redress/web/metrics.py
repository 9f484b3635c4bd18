"""Prometheus metrics of one app: request latency, scan throughput, queue depth, outcomes,
matches. Each app has its own registry (no global state); the database-backed figures
(items by status and outcome, actions) are read at scrape time so that they include
work done by Celery workers in other processes."""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from redress.pipeline.service import ProcessReport, ScanResult
from redress.pipeline.store import ScanStore

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)


class CollectionPauses(Collector):
    """Times the interpreter's garbage collections, by generation: every thread of the
    process waits while one runs, so a long one shows in every request's latency
    (docs/operations.md). A :data:`gc.callbacks` entry while the app runs.

    The hook keeps plain counts, read at scrape time, and takes no lock: a collection
    starts in whichever thread allocates, possibly while that thread holds one of
    prometheus_client's own (non-reentrant) locks, so observing a ``Histogram`` from
    here could deadlock the thread.
    """

    GENERATIONS = 3  # CPython's: 0, 1 and 2 (full)

    def __init__(self) -> None:
        self._started: float | None = None
        # Made whole here: the hook only adds to them, so a scrape never iterates a
        # dict that a collection (starting mid-scrape) changes the size of.
        self._counts = {g: [0] * (len(PAUSE_BUCKETS) + 1) for g in range(self.GENERATIONS)}
        self._sums = dict.fromkeys(range(self.GENERATIONS), 0.0)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        # Collections do not nest and run under the interpreter lock: start, then stop.
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return
        elapsed = time.perf_counter() - self._started
        self._started = None
        generation = info["generation"]
        counts = self._counts.get(generation)
        if counts is None:
            return
        counts[bisect.bisect_left(PAUSE_BUCKETS, elapsed)] += 1  # le: at most the bound
        self._sums[generation] += elapsed

    def collect(self) -> Iterator[Metric]:
        pauses = HistogramMetricFamily(
            "redress_gc_pause_seconds",
            "Garbage collections of this process (all its threads wait), by generation.",
            labels=["generation"],
        )
        for generation, counts in self._counts.items():
            cumulative = list(itertools.accumulate(counts))
            buckets = [(str(b), float(c)) for b, c in zip(PAUSE_BUCKETS, cumulative, strict=False)]
            buckets.append(("+Inf", float(cumulative[-1])))
            pauses.add_metric([str(generation)], buckets, self._sums[generation])
        yield pauses


class _DatabaseCollector(Collector):
    def __init__(
        self, sessions: sessionmaker[Session], depth: Callable[[], int], size: int
    ) -> None:
        self._sessions = sessions
        self._depth = depth
        self._size = size

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("redress_queue_depth", "Scan items waiting in the queue.")
        depth.add_metric([], float(self._depth()))
        yield depth
        capacity = GaugeMetricFamily("redress_queue_capacity", "Bound of the scan queue.")
        capacity.add_metric([], float(self._size))
        yield capacity
        with self._sessions() as session:
            store = ScanStore(session)
            by_status = store.count_by("status")
            by_outcome = store.count_by("outcome")
            actions = store.count_actions()
        items = GaugeMetricFamily(
            "redress_scan_items", "Scan items in the database by status.", labels=["status"]
        )
        for status in ("queued", "done", "dead"):
            items.add_metric([status], float(by_status.get(status, 0)))
        yield items
        outcomes = GaugeMetricFamily(
            "redress_scan_outcomes", "Finished scan items by outcome.", labels=["outcome"]
        )
        for outcome in ("ignore", "review", "act"):
            outcomes.add_metric([outcome], float(by_outcome.get(outcome, 0)))
        yield outcomes
        acts = GaugeMetricFamily(
            "redress_actions", "Outbox actions by kind and status.", labels=["kind", "status"]
        )
        for key, count in sorted(actions.items()):
            kind, status = key.split(":", 1)
            acts.add_metric([kind, status], float(count))
        yield acts


class ApiMetrics:
    """The metrics of one app."""

    def __init__(
        self, sessions: sessionmaker[Session], depth: Callable[[], int], queue_size: int
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "redress_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "redress_http_requests",
            "HTTP requests answered, by route and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.scanned = Counter(
            "redress_scanned_items",
            "Items taken through the pipeline in this process, by mode and outcome.",
            ["mode", "outcome"],
            registry=self.registry,
        )
        self.matches = Counter(
            "redress_matches",
            "Matches reported to submitters in this process, by signal type.",
            ["signal"],
            registry=self.registry,
        )
        self.processing_seconds = Histogram(
            "redress_scan_processing_seconds",
            "Time to process one queued item (hash, match, decide), in this process.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.collection_pauses = CollectionPauses()
        self.registry.register(self.collection_pauses)
        self.registry.register(_DatabaseCollector(sessions, depth, queue_size))

    def observe_result(self, result: ScanResult) -> None:
        """Count a synchronous result."""
        self.scanned.labels(result.mode, result.outcome or result.status).inc()
        for match in result.matches:
            self.matches.labels(match.signal).inc()

    def observe_processed(self, report: ProcessReport) -> None:
        """Count an item processed from the queue."""
        if report.status in ("skipped", "busy"):
            return
        self.scanned.labels("media", report.outcome or report.status).inc()
        self.processing_seconds.observe(report.seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Times every request (pure ASGI, so that it adds little to each request)."""

    def __init__(self, app: ASGIApp, metrics: Callable[[Any], ApiMetrics | None]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics = self.metrics(scope.get("app"))
            if metrics is not None:
                route: Any = scope.get("route")
                path = getattr(route, "path", "unmatched")
                method = str(scope.get("method", ""))
                metrics.request_seconds.labels(path, method).observe(time.perf_counter() - started)
                metrics.requests.labels(path, method, str(status)).inc()
