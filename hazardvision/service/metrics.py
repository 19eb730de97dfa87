"""Prometheus metrics of one service instance, in their own registry (several apps may share a process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hazardvision.results import ScanResult
from hazardvision.video.alerts import Alert
from hazardvision.video.webhooks import WebhookStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class _Webhooks(Collector):
    """Delivery counts read from the sender when scraped."""

    def __init__(self, stats: Callable[[], WebhookStats]) -> None:
        self.stats = stats

    def collect(self) -> Iterable[Metric]:
        stats = self.stats()
        deliveries = CounterMetricFamily("hazardvision_webhook_deliveries", "Finished webhook deliveries, by outcome.",
                                         labels=["status"])
        # By outcome only: a label per URL, host or port would tell a reader which internal ports answer.
        for status in ("delivered", "failed", "dropped", "refused"):
            deliveries.add_metric([status], getattr(stats, status))
        yield deliveries
        yield CounterMetricFamily("hazardvision_webhook_retries", "Webhook attempts retried.", value=stats.retries)
        yield GaugeMetricFamily("hazardvision_webhook_pending", "Webhook deliveries not finished yet.",
                                value=stats.pending)


class ServiceMetrics:
    """Requests, latency, findings, alerts, batches and the model versions in use."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # `*_created` series double the output
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("hazardvision_http_requests", "HTTP requests answered, by route and status.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("hazardvision_http_request_duration_seconds", "Time to answer a request.",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.findings = Counter("hazardvision_findings", "Hazards found in scanned photos, by class and severity.",
                                ["class_name", "severity"], registry=r)
        self.alerts = Counter("hazardvision_alerts", "Alerts raised from camera frames, by class.",
                              ["class_name"], registry=r)
        self.batches = Histogram("hazardvision_inference_batch_size", "Photos per model run (micro-batching).",
                                 ["kind"], buckets=BATCH_BUCKETS, registry=r)
        self.inference = Histogram("hazardvision_inference_duration_seconds", "Time of one batched model run.",
                                   ["kind"], buckets=LATENCY_BUCKETS, registry=r)
        self.models = Gauge("hazardvision_model_active", "1 for each model pack version the service serves with.",
                            ["pack", "version"], registry=r)

    def watch_webhooks(self, stats: Callable[[], WebhookStats]) -> None:
        self.registry.register(_Webhooks(stats))

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def batch(self, kind: str) -> Callable[[int, float], None]:
        """An observer for a micro-batcher of this kind."""
        def observe(size: int, seconds: float) -> None:
            self.batches.labels(kind).observe(size)
            self.inference.labels(kind).observe(seconds)
        return observe

    def scanned(self, result: ScanResult) -> None:
        for finding in result.findings:
            self.findings.labels(finding.class_name, finding.hazard.severity.value).inc()

    def alerted(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            self.alerts.labels(alert.class_name).inc()

    def serving(self, versions: Mapping[str, str]) -> None:
        self.models.clear()
        for pack, version in versions.items():
            self.models.labels(pack, version).set(1)

    def exposition(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
