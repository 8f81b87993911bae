"""Prometheus metrics of the service (``GET /metrics``): requests by route and status,
latency, batch sizes and queue time. With several instances (processes) each writes its
samples to ``$PROMETHEUS_MULTIPROC_DIR`` and /metrics adds them up, whichever instance answers."""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REQUESTS = Counter("labkit_requests_total", "HTTP requests answered", ["route", "code"])
LATENCY = Histogram("labkit_request_seconds", "Time to answer a request", ["route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 40))
BATCH = Histogram("labkit_batch_size", "Samples per model run (the micro-batcher's batches)",
                  buckets=(1, 2, 4, 8, 16, 32, 64))
QUEUE = Histogram("labkit_queue_seconds", "Time a request waited for the model",
                  buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5))


def route(path: str) -> str:
    """A low-cardinality label: the route family, not the raw path."""
    if path.startswith("/v2/models/"):
        return "/v2/infer" if path.endswith("/infer") else "/v2/models"
    if path.startswith("/v1/infers/"):
        return "/v1/infers"
    return path if path in ("/", "/health", "/metrics", "/v2", "/v2/health/live", "/v2/health/ready", "/docs",
                            "/openapi.json") else "other"


def observe_request(path: str, code: int, seconds: float) -> None:
    name = route(path)
    REQUESTS.labels(name, str(code)).inc()
    LATENCY.labels(name).observe(seconds)


def observe_batch(size: int, waits: list[float]) -> None:
    BATCH.observe(size)
    for wait in waits:
        QUEUE.observe(wait)


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
