"""The authoring side: `Listener`, its configuration and the handler decorators.

    orders = kafka.Listener(connection="main", topics=["orders"], group_id="billing",
                            offset_reset="earliest", dead_letter_topic="orders.dlq")

    @orders.on_record
    async def bill(order: Order, record: kafka.Record) -> None: ...

A listener has one handler: `on_record` (one event per record) or `on_batch` (one event
per batch of consecutive records of a partition; see `iwb_kafka.events`). The decorator
registers it under the key `record` or `batch`; switching between them changes the
listener's configuration, so a reload restarts the consumer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.errors import TriggerConfigError
from workbench.plugin import Artifact

__all__ = ["Listener", "ListenerConfig"]

F = TypeVar("F", bound=Callable[..., Any])

RESERVED_CONSUMER_OPTIONS = frozenset({
    "bootstrap_servers", "client_id", "group_id", "enable_auto_commit", "auto_offset_reset",
    "session_timeout_ms", "heartbeat_interval_ms", "max_poll_interval_ms",
    "key_deserializer", "value_deserializer", "security_protocol", "ssl_context",
    "sasl_mechanism", "sasl_plain_username", "sasl_plain_password", "loop",
})
"""aiokafka consumer arguments the listener sets itself (not allowed in consumer_options)."""


class ListenerConfig(BaseModel):
    """The listener configuration of a Kafka consumer."""

    model_config = ConfigDict(extra="forbid")

    connection: str
    """The `kind = "kafka"` connection of connections.toml to consume from."""
    topics: list[str] = Field(default_factory=list)
    """Topics to subscribe to (or give `pattern`)."""
    pattern: str | None = None
    """A regular expression; every matching topic is subscribed (new ones as they appear)."""
    group_id: str | None = None
    """The consumer group; default: the artifact name."""
    offset_reset: Literal["earliest", "latest"] = "latest"
    """Where a group without a committed offset starts: the oldest record or new ones."""
    dead_letter_topic: str | None = None
    """Where records whose outcome is an error go (with the error in headers). Without
    one, such a record is logged and committed."""
    batch: bool | None = None
    """None: the handler decorator decides. True/False: require `on_batch`/`on_record`."""
    max_batch: int = Field(default=500, ge=1)
    """Most records in one batch event (`on_batch`)."""
    max_inflight: int = Field(default=1000, ge=1)
    """Records fetched but not yet settled (backpressure), shared evenly between the
    assigned partitions. Batch listeners keep two batches per partition in flight."""
    content_type: str | None = None
    """The content type of records that have no `content-type` header. When unset, a
    value that is UTF-8 JSON gets `application/json` and other values none."""
    commit_interval_ms: int = Field(default=500, ge=10)
    """How often the offsets of settled records are committed (also on rebalance and
    shutdown)."""
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    """Kafka consumer session timeout: a member silent this long leaves the group."""
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    probe_interval_ms: int = Field(default=3_000, ge=100)
    """How often the cluster is probed (a metadata request) while consuming; two failed
    probes in a row (refused, or no answer within max(interval, 5 s)) mean the connection
    is lost: the listener stops, shows `disconnected-retrying`, and the runtime starts it
    again with backoff."""
    drain_timeout_ms: int = Field(default=10_000, ge=0)
    """How long a graceful stop waits for records being handled before committing."""
    consumer_options: dict[str, Any] = Field(default_factory=dict)
    """More `AIOKafkaConsumer` arguments (e.g. `fetch_max_bytes`, `isolation_level`)."""

    @model_validator(mode="after")
    def _check(self) -> ListenerConfig:
        if bool(self.topics) == bool(self.pattern):
            raise ValueError("give either topics=[...] or pattern='...', not both or neither")
        if any(not t or not isinstance(t, str) for t in self.topics):
            raise ValueError(f"topics must be non-empty names, got {self.topics!r}")
        matcher: re.Pattern[str] | None = None
        if self.pattern is not None:
            try:
                matcher = re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {self.pattern!r} is not a regular expression: {exc}"
                ) from None
        dlq = self.dead_letter_topic
        if dlq is not None:
            if not dlq:
                raise ValueError("dead_letter_topic must be a topic name or None")
            if dlq in self.topics or (matcher is not None and matcher.fullmatch(dlq)):
                raise ValueError(
                    f"dead_letter_topic {dlq!r} is consumed by this listener itself; "
                    "a failing record would come back forever. Use another topic."
                )
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be below "
                f"session_timeout_ms ({self.session_timeout_ms}); a third of it is usual"
            )
        reserved = sorted(RESERVED_CONSUMER_OPTIONS & set(self.consumer_options))
        if reserved:
            raise ValueError(
                f"consumer_options may not set {', '.join(reserved)}: the listener sets "
                "them (use the listener options or the connection instead)"
            )
        return self


class Listener(Artifact[ListenerConfig]):
    """A Kafka consumer in a consumer group, with one handler per record or per batch."""

    kind: ClassVar[str] = "kafka"
    config_model: ClassVar[type[BaseModel]] = ListenerConfig

    @property
    def mode(self) -> Literal["record", "batch"] | None:
        """`record` or `batch` after a handler is registered, else None."""
        if "batch" in self.handlers:
            return "batch"
        if "record" in self.handlers:
            return "record"
        return None

    def address(self) -> str:
        cfg = self.config
        where = ",".join(cfg.topics) if cfg.topics else f"/{cfg.pattern}/"
        return f"kafka://{cfg.connection}/{where}"

    def _register(self, mode: Literal["record", "batch"], func: F) -> F:
        wanted = self.config.batch
        if wanted is not None and wanted != (mode == "batch"):
            expected = "on_batch" if wanted else "on_record"
            raise TriggerConfigError(
                f"Kafka listener {self.name or self.address()!r} is declared with "
                f"batch={wanted!r}, so its handler must use @{expected}, not @on_{mode}.",
                title="Invalid handler",
            )
        current = self.mode
        if current is not None:
            other = self.handlers[current]
            raise TriggerConfigError(
                f"Kafka listener {self.name or self.address()!r} already has a handler "
                f"({other.ref}); a listener takes one handler, @on_record or @on_batch. "
                "Declare another Listener for another handler.",
                title="Invalid handler",
            )
        self.add_handler(mode, func, mode=mode)
        return func

    def on_record(self, func: F) -> F:
        """Register `func` to handle each record (one event per record)."""
        return self._register("record", func)

    def on_batch(self, func: F) -> F:
        """Register `func` to handle batches: one event per run of up to `max_batch`
        consecutive records of one partition, its data a JSON array of the values."""
        return self._register("batch", func)
