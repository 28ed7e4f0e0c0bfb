"""Prometheus metrics of one runtime (a registry of its own, so tests can run several)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Counters and histograms exposed on `/metrics` by `iwb run`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "iwb_events", "Events handled, by artifact, kind and status.",
            ["artifact", "kind", "status"], registry=self.registry,
        )
        self.errors = Counter(
            "iwb_errors", "Events whose outcome was an error, by artifact and error type.",
            ["artifact", "error_type"], registry=self.registry,
        )
        self.duration = Histogram(
            "iwb_handler_duration_seconds", "Handler duration, by artifact.", ["artifact"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                     5, 10, 30),
            registry=self.registry,
        )
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

        self._events: dict[tuple[str, str, str], Any] = {}
        self._durations: dict[str, Any] = {}

    def record_event(
        self, artifact: str, kind: str, status: str, error_type: str | None, seconds: float
    ) -> None:
        """Count one handled event (label children cached: this is on the hot path)."""
        key = (artifact, kind, status)
        counter = self._events.get(key)
        if counter is None:
            counter = self._events[key] = self.events.labels(artifact, kind, status)
        counter.inc()
        histogram = self._durations.get(artifact)
        if histogram is None:
            histogram = self._durations[artifact] = self.duration.labels(artifact)
        histogram.observe(seconds)
        if error_type is not None:
            self.errors.labels(artifact, error_type).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
