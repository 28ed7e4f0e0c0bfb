"""The `kafka` connection kind: a Kafka cluster in connections.toml.

    [main]
    kind = "kafka"
    bootstrap_servers = "broker1:9092,broker2:9092"     # or a list
    client_id = "billing"
    security_protocol = "SASL_SSL"          # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    sasl_mechanism = "SCRAM-SHA-512"        # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    sasl_username = "billing"
    sasl_password = "${env:KAFKA_PASSWORD}"
    ssl_cafile = "certs/ca.pem"             # relative paths: from the project folder
    request_timeout = 30

Listeners consume through it (`kafka.Listener(connection="main", ...)`), and handlers
publish through it:

    from workbench.config import connection
    main = connection("main")

    await main.publish("invoices", invoice, key=str(invoice.id), headers={"source": "billing"})

`publish` takes bytes, text, a pydantic model or anything JSON-able as the value; it
produces with an `AIOKafkaProducer` started on first use (idempotence off, so it also works
with brokers that refuse InitProducerId, such as tansu), records a `kafka.publish` entry on
the current event's outcome (topic, partition, offset, key, headers, value) and, in sandbox
mode, records it without sending.

`dev_broker = true` starts a development broker on the (loopback) bootstrap address when the
connection opens; see `iwb_kafka.devbroker`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iwb_kafka.devbroker import DevBroker
from iwb_kafka.errors import BootstrapCause, KafkaPublishError, describe
from iwb_kafka.events import OutgoingRecord
from iwb_kafka.transport import encode_bytes, encode_headers
from workbench.config import project_path
from workbench.errors import ConnectionConfigError
from workbench.plugin import ConnectionKind, Health, record_outbound, sandboxed

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

__all__ = ["KafkaClient", "KafkaConnection", "KafkaConnectionConfig", "Published"]

HeadersIn = Mapping[str, str | bytes | None] | Iterable[tuple[str, str | bytes | None]]


class KafkaConnectionConfig(BaseModel):
    """A Kafka cluster."""

    model_config = ConfigDict(extra="forbid")

    bootstrap_servers: str | list[str]
    """`host:port` of one or more brokers: a comma-separated string or a list."""
    client_id: str = "iwb"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    """Masked wherever configuration is shown."""
    ssl_cafile: str | None = None
    """CA bundle that signs the brokers' certificates (default: the system's)."""
    ssl_certfile: str | None = None
    """Client certificate, for brokers that authenticate clients by TLS."""
    ssl_keyfile: str | None = None
    ssl_password: str | None = None
    """Password of `ssl_keyfile`, if it is encrypted."""
    ssl_check_hostname: bool = True
    request_timeout: float = Field(default=30.0, gt=0)
    """Seconds before a request to the cluster fails."""
    health_timeout: float = Field(default=5.0, gt=0)
    """Seconds the health check may take."""
    acks: Literal[0, 1, "all"] = "all"
    """Acknowledgements `publish` waits for."""
    dev_broker: bool = False
    """Start a development broker (tansu) on the bootstrap address when the connection
    opens; stop it when it closes."""

    @model_validator(mode="after")
    def _check(self) -> KafkaConnectionConfig:
        servers = self.servers
        if not servers:
            raise ValueError("bootstrap_servers names no broker; give host:port")
        for server in servers:
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"bootstrap server {server!r} is not host:port")
        sasl = self.security_protocol.startswith("SASL")
        if sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol {self.security_protocol!r} needs sasl_mechanism, "
                "sasl_username and sasl_password"
            )
        if not sasl and self.sasl_mechanism is not None:
            raise ValueError(
                f"sasl_mechanism is set but security_protocol is {self.security_protocol!r}; "
                "use SASL_PLAINTEXT or SASL_SSL"
            )
        if self.dev_broker:
            if len(servers) != 1 or self.security_protocol != "PLAINTEXT":
                raise ValueError(
                    "dev_broker = true needs exactly one loopback bootstrap server "
                    "(e.g. 127.0.0.1:19092) and security_protocol PLAINTEXT"
                )
        return self

    @property
    def servers(self) -> list[str]:
        raw = self.bootstrap_servers
        items = raw.split(",") if isinstance(raw, str) else raw
        return [s.strip() for s in items if s.strip()]


@dataclass(frozen=True, slots=True)
class Published:
    """Where a produced record went. `offset` is None when it was not sent (sandbox)."""

    topic: str
    partition: int | None
    offset: int | None
    timestamp: int | None = None
    sandboxed: bool = False


def _as_bytes(value: Any, what: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{what} must be bytes, str or None, not {type(value).__name__}")


def _value_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes | bytearray | memoryview | str):
        return _as_bytes(value, "value")
    if isinstance(value, BaseModel):
        return value.model_dump_json().encode("utf-8")
    import pydantic_core

    return pydantic_core.to_json(value)


def _headers(headers: HeadersIn | None) -> list[tuple[str, bytes | None]]:
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), _as_bytes(value, f"header {name!r}")) for name, value in pairs]


class KafkaClient:
    """What handlers reach through `connection("<name>")`: `publish` and `send`."""

    def __init__(self, connection: KafkaConnection) -> None:
        self.connection = connection
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def producer(self) -> AIOKafkaProducer:
        """The connection's producer, started on first use."""
        if self._producer is None:
            async with self._lock:
                if self._producer is None:
                    from aiokafka import AIOKafkaProducer

                    producer = AIOKafkaProducer(
                        **self.connection.client_options(),
                        acks=self.connection.settings.acks,
                        enable_idempotence=False,
                    )
                    try:
                        await producer.start()
                    except BaseException:
                        await producer.stop()
                        raise
                    self._producer = producer
        return self._producer

    async def publish(
        self,
        topic: str,
        value: Any,
        *,
        key: str | bytes | None = None,
        headers: HeadersIn | None = None,
        partition: int | None = None,
    ) -> Published:
        """Produce one record and wait for the broker's acknowledgement.

        Args:
            topic: the topic.
            value: bytes, text, a pydantic model (as JSON), anything else JSON-able, or
                None (a tombstone).
            key: the record key (text is UTF-8 encoded).
            headers: a mapping or (name, value) pairs; values are bytes, text or None.
            partition: a fixed partition; by default the producer picks one by key.

        Returns:
            Where the record went (in sandbox mode: not sent, `offset` None).

        Raises:
            KafkaPublishError: the cluster did not take the record.
        """
        raw_key = _as_bytes(key, "key")
        raw_value = _value_bytes(value)
        raw_headers = _headers(headers)
        details: dict[str, Any] = {
            "topic": topic,
            "partition": partition,
            "key": encode_bytes(raw_key),
            "headers": encode_headers(raw_headers),
            "value": encode_bytes(raw_value),
        }
        if sandboxed():
            record_outbound("kafka.publish", **details, offset=None, sandboxed=True)
            return Published(topic, partition, None, sandboxed=True)
        started = time.perf_counter()
        try:
            published = await self.send(
                OutgoingRecord(topic, raw_value, raw_key, raw_headers, partition)
            )
        except KafkaPublishError as exc:
            record_outbound(
                "kafka.publish", **details, offset=None, error=str(exc),
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            raise
        details["partition"] = published.partition
        record_outbound(
            "kafka.publish", **details, offset=published.offset,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return published

    async def send(self, record: OutgoingRecord) -> Published:
        """Produce `record` as it is: not recorded on the outcome, sent even in sandbox
        mode (inject and dead letters use it; handlers use `publish`).

        Raises:
            KafkaPublishError: the cluster did not take the record.
        """
        return (await self.send_many([record]))[0]

    async def send_many(self, records: Sequence[OutgoingRecord]) -> list[Published]:
        """Produce several records (batched by the producer) and wait for all of them.

        Raises:
            KafkaPublishError: a record was not taken (the first failure is reported).
        """
        from aiokafka.errors import KafkaError as ClientError

        if not records:
            return []
        where = self.connection.bootstrap
        try:
            producer = await self.producer()
            futures = [
                await producer.send(
                    r.topic, r.value, key=r.key, headers=list(r.headers or ()),
                    partition=r.partition,
                )
                for r in records
            ]
            metas = await asyncio.gather(*futures)
        except (ClientError, OSError, ValueError, AssertionError) as exc:
            topics = ", ".join(sorted({r.topic for r in records}))
            raise KafkaPublishError(
                f"Could not produce {len(records)} record(s) to {topics!r} on {where!r} "
                f"(connection {self.connection.name!r}): {describe(exc)}",
            ) from exc
        return [
            Published(m.topic, m.partition, m.offset, m.timestamp) for m in metas
        ]

    async def close(self) -> None:
        """Stop the producer (flushing what it holds)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


class KafkaConnection(ConnectionKind[KafkaClient]):
    """A Kafka cluster: client options for listeners, a producer for handlers."""

    kind: ClassVar[str] = "kafka"
    config_model: ClassVar[type[BaseModel]] = KafkaConnectionConfig

    _dev: DevBroker | None = None

    @property
    def settings(self) -> KafkaConnectionConfig:
        assert isinstance(self.config, KafkaConnectionConfig)
        return self.config

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers, comma-separated."""
        return ",".join(self.settings.servers)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client (consumer, producer, admin) takes."""
        cfg = self.settings
        options: dict[str, Any] = {
            "bootstrap_servers": cfg.servers,
            "client_id": cfg.client_id,
            "request_timeout_ms": int(cfg.request_timeout * 1000),
            "security_protocol": cfg.security_protocol,
        }
        if cfg.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = cfg.sasl_mechanism
            options["sasl_plain_username"] = cfg.sasl_username
            options["sasl_plain_password"] = cfg.sasl_password
        if cfg.security_protocol.endswith("SSL"):
            options["ssl_context"] = self._ssl_context()
        return options

    def _ssl_context(self) -> Any:
        from aiokafka.helpers import create_ssl_context

        cfg = self.settings

        def resolve(path: str | None, what: str) -> str | None:
            if path is None:
                return None
            full = project_path(path)
            if not full.is_file():
                raise ConnectionConfigError(
                    f"Connection {self.name!r}: {what} {path!r} does not exist "
                    f"(looked at {str(full)!r}).",
                    key=f"{self.name}.{what}",
                )
            return str(full)

        try:
            context = create_ssl_context(
                cafile=resolve(cfg.ssl_cafile, "ssl_cafile"),
                certfile=resolve(cfg.ssl_certfile, "ssl_certfile"),
                keyfile=resolve(cfg.ssl_keyfile, "ssl_keyfile"),
                password=cfg.ssl_password,
            )
            # the certificate is always checked against the CA; the host name only if asked
            context.check_hostname = cfg.ssl_check_hostname
            return context
        except OSError as exc:  # ssl.SSLError is an OSError
            raise ConnectionConfigError(
                f"Connection {self.name!r}: the TLS files could not be loaded: {exc}",
                key=self.name,
            ) from exc

    async def ensure_dev_broker(self) -> None:
        """With `dev_broker = true`: start the development broker unless it listens."""
        if not self.settings.dev_broker:
            return
        if self._dev is None:
            host, _, port = self.settings.servers[0].rpartition(":")
            host = host.strip("[]")
            self._dev = DevBroker(
                host, int(port), project_path(".iwb", f"kafka-dev-{self.name}.log")
            )
        await self._dev.start()

    async def open(self) -> KafkaClient:
        await self.ensure_dev_broker()
        return KafkaClient(self)

    async def close(self) -> None:
        client, self._client = self._client, None
        try:
            if client is not None:
                await client.close()
        finally:
            if self._dev is not None:
                dev, self._dev = self._dev, None
                await dev.stop()

    async def health(self) -> Health:
        """Ask the cluster for its brokers and topics (a short-lived admin client)."""
        from aiokafka.admin import AIOKafkaAdminClient

        cfg = self.settings
        started = time.perf_counter()
        admin: AIOKafkaAdminClient | None = None
        try:
            with BootstrapCause.watch() as cause:
                async with asyncio.timeout(cfg.health_timeout):
                    admin = AIOKafkaAdminClient(**self.client_options())
                    await admin.start()
                    cluster = await admin.describe_cluster()
                    topics = await admin.list_topics()
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                detail = (
                    f"Kafka at {self.bootstrap} did not answer within {cfg.health_timeout:g} s"
                )
                if cause.text:
                    detail += f" ({cause.text})"
            else:
                detail = f"Kafka at {self.bootstrap} is not reachable: {cause.explain(exc)}"
            return Health(False, detail, (time.perf_counter() - started) * 1000)
        finally:
            if admin is not None:
                await admin.close()
        latency = (time.perf_counter() - started) * 1000
        brokers = cluster.get("brokers", []) if isinstance(cluster, dict) else []
        return Health(
            True,
            f"Kafka at {self.bootstrap}: {len(brokers)} broker(s), {len(topics)} topic(s)",
            latency,
        )
