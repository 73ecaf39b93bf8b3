"""Prometheus metrics, in a registry of the app's own (no process-wide globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "egide_requests",
            "Requests served, by model, endpoint and outcome (ok or the error kind)",
            ("model", "endpoint", "outcome"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "egide_request_duration_seconds",
            "Time from request to last byte, by model and endpoint",
            ("model", "endpoint"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_token = Histogram(
            "egide_time_to_first_token_seconds",
            "Time from request to the first streamed chunk",
            ("model",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "egide_tokens",
            "Tokens processed, by model and direction (in = prompt, out = completion)",
            ("model", "direction"),
            registry=self.registry,
        )

    def observe(self, model: str, endpoint: str, outcome: str, seconds: float) -> None:
        self.requests.labels(model, endpoint, outcome).inc()
        self.latency.labels(model, endpoint).observe(seconds)

    def count_tokens(self, model: str, usage: dict[str, int] | None) -> None:
        if not usage:
            return
        self.tokens.labels(model, "in").inc(usage.get("prompt_tokens", 0) or 0)
        self.tokens.labels(model, "out").inc(usage.get("completion_tokens", 0) or 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
