"""Prometheus metrics of the service, in a registry of its own (one per app: no global state, and
tests can build many apps in one process), and the ASGI middleware that times every request.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_SCORE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1000)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "fraud_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "fraud_http_request_duration_seconds",
            "Time from request to the end of the response",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.scores = Histogram(
            "fraud_score", "Fraud probability of scored orders", buckets=_SCORE_BUCKETS, registry=r
        )
        self.decisions = Counter("fraud_decisions", "Decisions", ["decision"], registry=r)
        self.replays = Counter(
            "fraud_replayed_orders", "Orders answered from a stored answer", registry=r
        )
        self.cold_starts = Counter(
            "fraud_cold_start_entities", "Entities scored with no history", ["kind"], registry=r
        )
        self.batch_orders = Histogram(
            "fraud_batch_orders", "Orders per micro-batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.conflicts = Counter(
            "fraud_store_conflicts",
            "Writes retried because an entity changed meanwhile",
            registry=r,
        )
        self.commit_replies_lost = Counter(
            "fraud_commit_replies_lost",
            "Writes whose reply was lost, by what settling them found: stored, not_stored, "
            "taken (another writer stored the orders), unknown (Redis stayed silent: a 504)",
            ["result"],
            registry=r,
        )
        self.labels = Counter("fraud_labels", "Labels received", ["result"], registry=r)
        self.model_info = Gauge(
            "fraud_model_info", "The served model version (value 1)", ["version"], registry=r
        )
        self.model_reloads = Counter("fraud_model_reloads", "Model loads", ["result"], registry=r)
        self.redis_up = Gauge("fraud_redis_up", "1 when the online store answers", registry=r)
        self.policy_info = Gauge(
            "fraud_policy_info", "The applied policy version (value 1)", ["version"], registry=r
        )
        self.policy_reloads = Counter(
            "fraud_policy_reloads", "Policy loads", ["result"], registry=r
        )
        self.rule_matches = Counter(
            "fraud_policy_rule_matches", "Orders each policy rule matched", ["rule"], registry=r
        )
        self.shadow_scored = Counter(
            "fraud_shadow_scored", "Orders the challenger model scored in shadow", registry=r
        )
        self.shadow_info = Gauge(
            "fraud_shadow_model_info",
            "The challenger model scored in shadow (value 1; none when absent)",
            ["version"],
            registry=r,
        )
        self._policy_version: str | None = None
        self._shadow_version: str | None = None

    def shadow_model(self, version: str | None) -> None:
        if self._shadow_version is not None and self._shadow_version != version:
            self.shadow_info.remove(self._shadow_version)
        self._shadow_version = version
        if version is not None:
            self.shadow_info.labels(version=version).set(1)

    def policy_loaded(self, version: str) -> None:
        if self._policy_version is not None and self._policy_version != version:
            self.policy_info.remove(self._policy_version)
        self._policy_version = version
        self.policy_info.labels(version=version).set(1)
        self.policy_reloads.labels(result="loaded").inc()

    def policy_refused(self) -> None:
        self.policy_reloads.labels(result="refused").inc()

    def model_loaded(self, version: str, previous: str | None) -> None:
        if previous is not None and previous != version:
            self.model_info.remove(previous)
        self.model_info.labels(version=version).set(1)
        self.model_reloads.labels(result="loaded").inc()

    def model_refused(self) -> None:
        self.model_reloads.labels(result="refused").inc()

    def scored(self, scores: Sequence[float], decisions: Sequence[str]) -> None:
        for s in scores:
            self.scores.observe(s)
        for d, n in collections.Counter(decisions).items():
            self.decisions.labels(decision=d).inc(n)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_middleware(metrics: ServiceMetrics):
    """A middleware factory for Litestar: counts and times requests by route template (never
    by raw path, so label values stay few)."""
    # The labelled children, looked up once per label set: `labels()` takes a lock and checks
    # its arguments every time, which cost more than the rest of the middleware.
    counted: dict[tuple[str, str, int], Counter] = {}
    timed: dict[str, Histogram] = {}

    def record(method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        counter = counted.get(key)
        if counter is None:
            counter = counted[key] = metrics.requests.labels(method, route, str(status))
        histogram = timed.get(route)
        if histogram is None:
            histogram = timed[route] = metrics.latency.labels(route)
        counter.inc()
        histogram.observe(seconds)

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                route = scope.get("path_template") or "unmatched"
                record(scope["method"], route, status, time.perf_counter() - started)

        return middleware

    return factory
