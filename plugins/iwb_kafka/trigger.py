"""`KafkaTrigger`: the listener of a `kafka.Listener`.

`serve()` starts an `AIOKafkaConsumer` in the listener's group (auto-commit off), waits for
its first assignment (status `starting` until then, `listening` after) and runs the consume
loop of `iwb_kafka.consumer` until cancelled. `drain()` stops fetching, lets running events
finish and commits. `inject()` produces an event's record(s) to the topic through the real
broker; `reread()` reads a partition again from an offset as events (the runtime's
`replay_log` hands them to the current handler); `samples()` offers one template per topic.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from iwb_kafka.connection import KafkaClient, KafkaConnection
from iwb_kafka.errors import BootstrapCause, KafkaConnectionLostError, RereadError
from iwb_kafka.events import EventFactory, outgoing_records
from iwb_kafka.listener import Listener, ListenerConfig
from iwb_kafka.record import Batch
from iwb_kafka.samples import build_samples, record_list_annotation
from iwb_kafka.transport import KafkaTransport
from workbench.errors import TriggerConfigError, WorkbenchError
from workbench.events import Event
from workbench.plugin import Artifact, Dispatch, HandlerSpec, Sample, Trigger

if TYPE_CHECKING:
    from iwb_kafka.consumer import ConsumeLoop

__all__ = ["KafkaTrigger"]

log = logging.getLogger("iwb.kafka")


class KafkaTrigger(Trigger[ListenerConfig]):
    """Consumes for one `kafka.Listener`."""

    kind: ClassVar[str] = "kafka"
    artifact_class: ClassVar[type[Artifact[Any]]] = Listener
    transport_model: ClassVar[type[BaseModel]] = KafkaTransport
    connection_kinds: ClassVar[tuple[type[Any], ...]] = (KafkaConnection,)

    _loop: ConsumeLoop | None = None

    @property
    def group_id(self) -> str:
        """The consumer group: the configured one, else the artifact name."""
        return self.config.group_id or self.name

    @property
    def loop(self) -> ConsumeLoop | None:
        """The running consume loop (offsets, assignment), or None when not serving."""
        return self._loop

    def connection(self) -> KafkaConnection:
        """The listener's connection.

        Raises:
            TriggerConfigError: connections.toml does not define it, or not as Kafka.
        """
        conn = self.context.connection(self.config.connection)
        if not isinstance(conn, KafkaConnection):
            raise TriggerConfigError(
                f"Kafka listener {self.name!r} uses connection {self.config.connection!r}, "
                f"which is of kind {conn.kind!r}; it needs kind = \"kafka\".",
            )
        return conn

    def _client(self, conn: KafkaConnection) -> KafkaClient:
        try:
            return conn.client
        except RuntimeError:
            raise WorkbenchError(
                f"Connection {conn.name!r} of listener {self.name!r} is not open (it failed "
                "to open when the project started; see the log).",
                title="Connection not open",
            ) from None

    def _where(self) -> str:
        cfg = self.config
        return ",".join(cfg.topics) if cfg.topics else f"/{cfg.pattern}/"

    def _consumes(self, topic: str) -> bool:
        cfg = self.config
        if cfg.topics:
            return topic in cfg.topics
        return cfg.pattern is not None and re.fullmatch(cfg.pattern, topic) is not None

    def _consumer(self, conn: KafkaConnection, **options: Any) -> Any:
        from aiokafka import AIOKafkaConsumer

        try:
            return AIOKafkaConsumer(**conn.client_options(), **options)
        except (TypeError, ValueError) as exc:
            raise TriggerConfigError(
                f"Kafka listener {self.name!r}: the consumer does not accept its options: "
                f"{exc}. Check consumer_options.",
            ) from exc

    # ------------------------------------------------------------------ serve

    async def serve(self, dispatch: Dispatch, *, ready: Callable[[], None]) -> None:

        from iwb_kafka.consumer import ConsumeLoop, LoopSettings, RebalanceListener

        artifact = self.artifact
        mode = artifact.mode if isinstance(artifact, Listener) else None
        if mode is None:
            raise TriggerConfigError(
                f"Kafka listener {self.name!r} has no handler: decorate a function with "
                f"@{self.name}.on_record or @{self.name}.on_batch.",
            )
        cfg = self.config
        conn = self.connection()
        await conn.ensure_dev_broker()
        client: KafkaClient | None
        try:
            client = conn.client
        except RuntimeError:
            client = None
        consumer = self._consumer(
            conn,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=cfg.offset_reset,
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms,
            max_poll_interval_ms=cfg.max_poll_interval_ms,
            **cfg.consumer_options,
        )
        loop = ConsumeLoop(
            consumer,
            name=self.name,
            bootstrap=conn.bootstrap,
            dispatch=dispatch,
            factory=EventFactory(self.name, conn.bootstrap, self.group_id, cfg.content_type),
            settings=LoopSettings(
                batch=mode == "batch",
                max_batch=cfg.max_batch,
                max_inflight=cfg.max_inflight,
                commit_interval=cfg.commit_interval_ms / 1000,
                probe_interval=cfg.probe_interval_ms / 1000,
                drain_timeout=cfg.drain_timeout_ms / 1000,
                revoke_timeout=cfg.session_timeout_ms / 1000,
                dead_letter_topic=cfg.dead_letter_topic,
            ),
            client=client,
            ready=ready,
            set_status=self.context.set_status,
        )
        listener = RebalanceListener(loop)
        if cfg.topics:
            consumer.subscribe(topics=cfg.topics, listener=listener)
        else:
            consumer.subscribe(pattern=cfg.pattern, listener=listener)
        self.context.set_address(
            f"kafka://{conn.bootstrap}/{self._where()} (group {self.group_id})"
        )
        try:
            await _start(consumer, conn, f"Listener {self.name!r}", KafkaConnectionLostError)
            self._loop = loop
            await loop.run()
        finally:
            self._loop = None
            # Shielded: a cancelled listener must still commit and leave its group.
            await asyncio.shield(asyncio.ensure_future(_shutdown(self.name, loop, consumer)))

    async def drain(self) -> None:
        """Stop fetching; running events finish, the rest is skipped; commit."""
        if self._loop is not None:
            await self._loop.drain()

    # ------------------------------------------------------------------ inject, reread

    async def inject(self, event: Event) -> None:
        """Produce the event's record (or, for a batch event, its records) to
        `transport.topic` (default: the listener's only topic) and `transport.partition`
        (if given), with its key and headers and an `iwb-inject` header carrying the mark."""
        conn = self.connection()
        client = self._client(conn)
        cfg = self.config
        mark = event.extensions.get("iwbinject")
        try:
            records = outgoing_records(
                event,
                cfg.topics[0] if len(cfg.topics) == 1 else None,
                mark=None if mark is None else str(mark),
                implied_content_type=cfg.content_type,
            )
        except ValueError as exc:
            raise WorkbenchError(
                f"Cannot inject into Kafka listener {self.name!r}: {exc}", title="Inject failed"
            ) from None
        topic = records[0].topic if records else ""
        if records and not self._consumes(topic):
            raise WorkbenchError(
                f"Cannot inject into Kafka listener {self.name!r}: it does not consume topic "
                f"{topic!r} (it consumes {self._where()}), so no outcome would come back. "
                "Set transport.topic to one of its topics.",
                title="Inject failed",
            )
        await client.send_many(records)

    async def reread(self, position: str, count: int) -> list[Event]:
        """Read up to `count` records again from `position`, `[topic/]partition@offset`
        (the topic may be left out when the listener consumes one), as events — replay
        through the transport from the log itself.

        It reads with a consumer of its own (no group, nothing committed, the listener's
        position untouched; the listener need not be running); the events are marked
        `extensions["iwbreread"] = "<topic>/<partition>@<offset>"`. The runtime hands them
        to the handler outside the consume loop, so nothing is committed or dead-lettered
        for them, whatever their outcome. Batch listeners get
        the records in batches of `max_batch`. Fewer events come back when the partition
        holds fewer records (or older ones were deleted: reading starts at the oldest
        that is left).

        Raises:
            WorkbenchError: the position does not parse, its topic is not consumed, or
                the records do not arrive within ten seconds.
        """
        topic, partition, offset = self._position(position)
        return await self.read_log(partition, offset, count, topic=topic)

    def log_match(self, event: Event) -> dict[str, Any] | None:
        """Topic, partition and (first) offset: where the record sits in the log."""
        transport = event.transport
        if not all(k in transport for k in ("topic", "partition", "offset")):
            return None
        return {k: transport[k] for k in ("topic", "partition", "offset")}

    def _position(self, position: str) -> tuple[str | None, int, int]:
        where, sep, offset = position.strip().rpartition("@")
        topic, _, partition = where.rpartition("/")
        try:
            if not sep:
                raise ValueError
            return topic or None, int(partition), int(offset)
        except ValueError:
            raise RereadError(
                f"{position!r} is not a Kafka log position; write [topic/]partition@offset, "
                "e.g. 0@120 or payments/2@0.",
            ) from None

    async def read_log(
        self,
        partition: int,
        offset: int,
        count: int,
        *,
        topic: str | None = None,
        timeout: float = 10.0,
    ) -> list[Event]:
        """The events of up to `count` records of `topic`/`partition` from `offset` (see
        `reread`)."""
        from aiokafka import TopicPartition

        cfg = self.config
        topic = topic or (cfg.topics[0] if len(cfg.topics) == 1 else None)
        if not topic or not self._consumes(topic):
            raise RereadError(
                f"Kafka listener {self.name!r} consumes {self._where()}; name one of its "
                f"topics to re-read (got {topic!r}).",
            )
        if count <= 0:
            return []
        if partition < 0 or offset < 0:
            raise RereadError(
                f"Re-reading for {self.name!r}: partition and offset must not be negative "
                f"(got {partition}@{offset}).",
            )
        conn = self.connection()
        tp = TopicPartition(topic, partition)
        consumer = self._consumer(
            conn, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            **cfg.consumer_options,
        )
        factory = EventFactory(self.name, conn.bootstrap, None, cfg.content_type)
        records: list[Any] = []
        try:
            await _start(consumer, conn, f"Re-reading for {self.name!r}", RereadError)
            partitions = consumer.partitions_for_topic(topic)
            if partitions is not None and partition not in partitions:
                raise RereadError(
                    f"Topic {topic!r} has no partition {partition} (it has "
                    f"{', '.join(map(str, sorted(partitions)))}).",
                )
            consumer.assign([tp])
            consumer.seek(tp, offset)
            async with asyncio.timeout(timeout):
                while len(records) < count:
                    fetched = await consumer.getmany(tp, timeout_ms=200)
                    records.extend(fetched.get(tp, []))
                    # the fetch's high watermark says where the partition ends (ListOffsets
                    # is not asked: some brokers, tansu among them, answer it wrongly)
                    high = consumer.highwater(tp)
                    position = records[-1].offset + 1 if records else offset
                    if high is not None and position >= high:
                        break
        except TimeoutError:
            raise RereadError(
                f"Re-reading {topic}/{partition}@{offset} for {self.name!r}: only "
                f"{len(records)} record(s) arrived within {timeout:g} s.",
            ) from None
        finally:
            await consumer.stop()
        records = records[:count]
        mark = f"{topic}/{partition}@{offset}"
        if isinstance(self.artifact, Listener) and self.artifact.mode == "batch":
            size = cfg.max_batch
            events = [factory.batch(records[i : i + size]) for i in range(0, len(records), size)]
        else:
            events = [factory.record(r) for r in records]
        for event in events:
            event.extensions["iwbreread"] = mark
        return events

    # ------------------------------------------------------------------ console, binding

    def samples(self) -> list[Sample]:
        try:
            bootstrap = self.connection().bootstrap
        except WorkbenchError:
            bootstrap = self.config.connection
        return build_samples(
            self.name, self.config, self.artifact.handlers, bootstrap, type(self)
        )

    @classmethod
    def param_extractor(
        cls, param: inspect.Parameter, annotation: Any, handler: HandlerSpec
    ) -> Callable[[Event], Any] | None:
        """`list[kafka.Record]` receives the records of the event (one for a record event)."""
        if record_list_annotation(annotation):
            return lambda event: Batch.from_event(event).records
        return None


async def _start(
    consumer: Any, conn: KafkaConnection, who: str, error: type[WorkbenchError]
) -> None:
    """Start a consumer; a cluster it cannot reach raises `error`, naming the cause."""
    from aiokafka.errors import KafkaError as ClientError

    with BootstrapCause.watch() as cause:
        try:
            await consumer.start()
        except ClientError as exc:
            raise error(
                f"{who}: cannot reach Kafka at {conn.bootstrap} (connection {conn.name!r}): "
                f"{cause.explain(exc)}",
            ) from exc


async def _shutdown(name: str, loop: ConsumeLoop, consumer: Any) -> None:
    """Commit what is done and leave the group, each step bounded (the runtime waits five
    seconds for a stopped listener)."""
    task = asyncio.current_task()
    for what, step in (("committing", loop.close), ("leaving the group", consumer.stop)):
        try:
            async with asyncio.timeout(2.0):
                await step()
        except TimeoutError:
            log.warning("%s: %s did not finish within 2 s; going on", name, what)
        except asyncio.CancelledError:
            # aiokafka's stop() lets the CancelledError of its own background tasks
            # escape when the broker is gone; only a cancellation of this task counts
            if task is not None and task.cancelling():
                raise
            log.warning("%s: %s was interrupted; going on", name, what)
        except Exception as exc:
            log.warning("%s: %s failed: %s", name, what, exc)

