"""Prometheus metrics of one runtime (a registry of its own, so tests can run several).

The per-event figures (`iwb_events_total`, `iwb_errors_total`,
`iwb_handler_duration_seconds`) are plain integers and floats the runtime bumps on the hot
path, read into metric families only when `/metrics` is scraped: prometheus-client's own
counters take a lock per increment, which costs more than the rest of the accounting.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)


class EventStats(Collector):
    """Events, errors and handler durations, counted with plain numbers (see the module
    docstring). Bumped from the event loop's thread only."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str, str], int] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.durations: dict[str, list[float]] = {}
        """artifact → one count per bucket (the last is +Inf), then the sum."""

    def record(
        self, artifact: str, kind: str, status: str, error_type: str | None, seconds: float
    ) -> None:
        key = (artifact, kind, status)
        events = self.events
        events[key] = events.get(key, 0) + 1
        counts = self.durations.get(artifact)
        if counts is None:
            counts = self.durations[artifact] = [0.0] * (len(DURATION_BUCKETS) + 2)
        counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        counts[-1] += seconds
        if error_type is not None:
            errors = self.errors
            ekey = (artifact, error_type)
            errors[ekey] = errors.get(ekey, 0) + 1

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "iwb_events", "Events handled, by artifact, kind and status.",
            labels=["artifact", "kind", "status"],
        )
        for event_labels, count in list(self.events.items()):
            events.add_metric(list(event_labels), count)
        yield events
        errors = CounterMetricFamily(
            "iwb_errors", "Events whose outcome was an error, by artifact and error type.",
            labels=["artifact", "error_type"],
        )
        for labels, count in list(self.errors.items()):
            errors.add_metric(list(labels), count)
        yield errors
        duration = HistogramMetricFamily(
            "iwb_handler_duration_seconds", "Handler duration, by artifact.",
            labels=["artifact"],
        )
        for artifact, counts in list(self.durations.items()):
            snapshot = list(counts)
            buckets: list[tuple[str, float]] = []
            running = 0.0
            for bound, bucket in zip((*DURATION_BUCKETS, float("inf")), snapshot, strict=False):
                running += bucket
                buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)),
                                running))
            duration.add_metric([artifact], buckets, sum_value=snapshot[-1])
        yield duration


class Metrics:
    """Counters and histograms exposed on `/metrics` by `iwb run`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stats = EventStats()
        self.registry.register(self.stats)
        self.reloads = Counter(
            "iwb_reloads", "Hot reloads, by artifact and result (swapped, restarted, failed).",
            ["artifact", "result"], registry=self.registry,
        )
        self.reload_duration = Histogram(
            "iwb_reload_duration_seconds", "Time from a saved file to the new code serving.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.up = Gauge(
            "iwb_artifact_listening", "1 while the artifact is listening.", ["artifact"],
            registry=self.registry,
        )
        self.record_event = self.stats.record
        """Count one handled event: `(artifact, kind, status, error_type, seconds)`."""

    def render(self) -> bytes:
        return generate_latest(self.registry)
