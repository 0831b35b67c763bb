"""Prometheus metrics of one service instance (its own registry: several apps in one process,
as in the tests, never share counters)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """Requests and errors by endpoint and status, latency, batch sizes, queue depth."""

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "facecascade_requests", "HTTP requests answered", ["endpoint", "status"], registry=self.registry
        )
        self.errors = Counter(
            "facecascade_errors", "requests answered with an error, by reason", ["error"], registry=self.registry
        )
        self.latency = Histogram(
            "facecascade_request_seconds",
            "time from request to answer",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "facecascade_batch_size", "images per cascade batch", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.queue_depth = Gauge("facecascade_queue_depth", "images waiting for a batch", registry=self.registry)
        self.queue_depth.set_function(queue_depth)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
