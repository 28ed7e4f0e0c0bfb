"""The `rabbitmq` connection kind: a named broker in connections.toml, and its client.

    [main]
    kind = "rabbitmq"
    url = "amqp://shop:${env:RABBIT_PASSWORD}@rabbit.internal:5672/shop"

    [backup]                       # the same, field by field
    kind = "rabbitmq"
    host = "rabbit.internal"
    port = 5671
    username = "shop"
    password = "${env:RABBIT_PASSWORD}"
    virtual_host = "shop"
    ssl = true
    cafile = "/etc/ssl/rabbit-ca.pem"
    heartbeat = 30
    connection_name = "billing"

Listeners name the connection (`rabbitmq.Listener(connection="main", ...)`) and open their
own AMQP connection with these settings. Handlers publish through the client:

    from workbench.config import connection
    main = connection("main")

    await main.publish("shop", "order.billed", receipt, headers={"tenant": "acme"})
    reply = await main.request("", "rates", {"currency": "EUR"}, timeout=5)

`publish` waits for the broker's confirm (publisher confirms) and raises
`RabbitPublishError` when the message is refused, or returned as unroutable with
`mandatory=True`. `request` publishes with `reply_to` set to RabbitMQ's direct reply-to
pseudo-queue and a fresh `correlation_id`, and returns the reply. Both are recorded on the
current event's outcome (`rabbitmq.publish`, `rabbitmq.request`); in sandbox mode they are
recorded with `sandboxed: true` and not sent (`request` then answers `{}` with the header
`x-iwb-sandbox: 1`).

The client connects on first use and again after the connection closed (a broker restart):
a publish while the broker is down raises, and the runtime's retry policy decides what
happens to the event.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, model_validator

from iwb_rabbitmq.errors import RabbitConnectError, RabbitPublishError
from iwb_rabbitmq.message import headers_to_json, properties_of
from workbench.plugin import ConnectionKind, Health, record_outbound, sandboxed

if TYPE_CHECKING:
    import ssl as ssl_module

    from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

__all__ = [
    "Endpoint",
    "RabbitClient",
    "RabbitConnection",
    "RabbitConnectionConfig",
    "Reply",
    "encode_body",
]

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
BODY_RECORD_LIMIT = 65536
"""How much of a body `rabbitmq.publish` records on the outcome (as text)."""

_ENDPOINT_FIELDS = ("host", "port", "username", "password", "virtual_host", "ssl")


class RabbitConnectionConfig(BaseModel):
    """A named RabbitMQ broker: a `url`, or the endpoint field by field."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    """`amqp://user:password@host:port/vhost` (`amqps://` for TLS); the virtual host is
    percent-encoded (`%2F` is `/`), an empty path means `/`. Excludes the endpoint fields."""
    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default 5672, or 5671 with `ssl`."""
    username: str = "guest"
    password: str = "guest"
    """Masked wherever configuration is shown."""
    virtual_host: str = "/"
    ssl: bool = False
    """Connect with TLS."""
    cafile: str | None = None
    """CA bundle to verify the broker's certificate (default: the system's)."""
    certfile: str | None = None
    """Client certificate, for brokers that authenticate clients by certificate."""
    keyfile: str | None = None
    """Private key of `certfile` (when not in the same file)."""
    verify: bool = True
    """Verify the broker's certificate and host name (TLS)."""
    heartbeat: int = Field(default=60, ge=0)
    """Seconds between heartbeats; 0 turns them off."""
    connection_name: str | None = None
    """Shown in the management UI (default: `iwb <connection> <purpose>`)."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for a connection (and for `health()`)."""
    publish_timeout: float = Field(default=10.0, gt=0)
    """Seconds `publish` waits for the broker's confirm."""

    @model_validator(mode="after")
    def _check(self) -> RabbitConnectionConfig:
        if self.url is not None:
            both = sorted(set(_ENDPOINT_FIELDS) & self.model_fields_set)
            if both:
                raise ValueError(
                    f"give either url or {', '.join(both)}, not both: the url already names "
                    "the host, port, user, password and virtual host"
                )
            Endpoint.parse(self.url)  # raises ValueError with the reason
        if (self.certfile or self.keyfile) and not (self.ssl or _is_tls_url(self.url)):
            raise ValueError("certfile/keyfile need ssl = true (or an amqps:// url)")
        return self


def _is_tls_url(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith("amqps://")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a broker is and how to log in."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    virtual_host: str
    tls: bool

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("amqp", "amqps"):
            raise ValueError(f"url {_masked(url)!r} must start with amqp:// or amqps://")
        if not parts.hostname:
            raise ValueError(f"url {_masked(url)!r} names no host")
        if parts.query:
            raise ValueError(
                f"url {_masked(url)!r} has a query string; set heartbeat, connection_name "
                "and the TLS files as fields instead"
            )
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"url {_masked(url)!r}: {exc}") from None
        return cls(
            host=parts.hostname,
            port=port or (5671 if scheme == "amqps" else 5672),
            username=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            virtual_host=unquote(path) if path else "/",
            tls=scheme == "amqps",
        )

    @classmethod
    def of(cls, cfg: RabbitConnectionConfig) -> Endpoint:
        if cfg.url is not None:
            return cls.parse(cfg.url)
        return cls(
            host=cfg.host,
            port=cfg.port or (5671 if cfg.ssl else 5672),
            username=cfg.username,
            password=cfg.password,
            virtual_host=cfg.virtual_host,
            tls=cfg.ssl,
        )

    def url(self, *, heartbeat: int, name: str, masked: bool = False) -> str:
        """The AMQP URL aio-pika connects to (the password masked for messages)."""
        scheme = "amqps" if self.tls else "amqp"
        secret = "****" if masked else quote(self.password, safe="")
        vhost = "" if self.virtual_host == "/" else quote(self.virtual_host, safe="")
        query = f"?heartbeat={heartbeat}&name={quote(name, safe='')}" if not masked else ""
        return (
            f"{scheme}://{quote(self.username, safe='')}:{secret}@{self.host}:{self.port}"
            f"/{vhost}{query}"
        )

    def display(self) -> str:
        """`amqp://host:port/vhost`, for messages."""
        scheme = "amqps" if self.tls else "amqp"
        return f"{scheme}://{self.host}:{self.port}/{quote(self.virtual_host, safe='')}"


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return parts._replace(netloc=netloc).geturl()


def encode_body(body: Any, content_type: str | None = None) -> tuple[bytes, str | None]:
    """The bytes of a message body and its content type: bytes as they are, text as UTF-8
    (`text/plain`), anything else — pydantic models, dicts, lists, numbers, None — as JSON
    (`application/json`). An explicit `content_type` wins."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), content_type
    if isinstance(body, str):
        return body.encode("utf-8"), content_type or "text/plain; charset=utf-8"
    return pydantic_core.to_json(body), content_type or "application/json"


def _body_text(body: bytes) -> str:
    return body[:BODY_RECORD_LIMIT].decode("utf-8", errors="replace")


@dataclass(slots=True)
class Reply:
    """The answer to `request()`."""

    body: bytes
    content_type: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    """Every AMQP property of the reply, as JSON (see `iwb_rabbitmq.message`)."""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises `ValueError` when it is not JSON."""
        return pydantic_core.from_json(self.body)


class RabbitConnection(ConnectionKind["RabbitClient"]):
    """A RabbitMQ broker (AMQP 0-9-1 through aio-pika)."""

    kind: ClassVar[str] = "rabbitmq"
    config_model: ClassVar[type[BaseModel]] = RabbitConnectionConfig

    @property
    def settings(self) -> RabbitConnectionConfig:
        assert isinstance(self.config, RabbitConnectionConfig)
        return self.config

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.of(self.settings)

    def _ssl_context(self) -> ssl_module.SSLContext | None:
        import ssl

        cfg = self.settings
        if not self.endpoint.tls:
            return None
        context = ssl.create_default_context(cafile=cfg.cafile)
        if cfg.certfile:
            context.load_cert_chain(cfg.certfile, cfg.keyfile)
        if not cfg.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def connect(self, purpose: str) -> AbstractConnection:
        """A new AMQP connection with this configuration (not robust: the caller decides
        what a lost connection means).

        Args:
            purpose: what the connection is for, shown in the broker's connection name.

        Raises:
            RabbitConnectError: the broker is unreachable, refused the login, or the virtual
                host does not exist.
        """
        import aio_pika

        cfg = self.settings
        endpoint = self.endpoint
        name = cfg.connection_name or f"iwb {self.name} {purpose}"
        try:
            return await aio_pika.connect(
                endpoint.url(heartbeat=cfg.heartbeat, name=name),
                ssl_context=self._ssl_context(),
                timeout=cfg.connect_timeout,
                client_properties={"connection_name": name},
            )
        except TimeoutError as exc:
            raise RabbitConnectError(
                f"Connection {self.name!r}: no answer from {endpoint.display()} within "
                f"{cfg.connect_timeout:g} s. Is the broker running and reachable?"
            ) from exc
        except Exception as exc:
            raise RabbitConnectError(
                f"Connection {self.name!r}: could not connect to {endpoint.display()} as "
                f"{endpoint.username!r}: {type(exc).__name__}: {exc or 'no detail'}. Check "
                "that the broker runs, and the user, password and virtual host."
            ) from exc

    async def open(self) -> RabbitClient:
        return RabbitClient(self)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def health(self) -> Health:
        """Open a connection and a channel (within `connect_timeout`), then close them."""
        cfg = self.settings
        started = time.perf_counter()
        target = self.endpoint.display()
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                conn = await self.connect("health")
                try:
                    channel = await conn.channel(publisher_confirms=False)
                    await channel.close()
                    version = _server_version(conn)
                finally:
                    await conn.close()
        except TimeoutError:
            return Health(
                False,
                f"{target}: no answer within {cfg.connect_timeout:g} s",
                (time.perf_counter() - started) * 1000,
            )
        except Exception as exc:
            detail = exc.message if isinstance(exc, RabbitConnectError) else repr(exc)
            return Health(False, detail, (time.perf_counter() - started) * 1000)
        latency = (time.perf_counter() - started) * 1000
        suffix = f" (RabbitMQ {version})" if version else ""
        return Health(True, f"connected to {target}{suffix}", latency)

    def describe(self) -> dict[str, Any]:
        data = super().describe()
        if isinstance(data.get("url"), str):
            data["url"] = _masked(data["url"])
        return data


def _server_version(conn: AbstractConnection) -> str:
    transport = getattr(conn, "transport", None)
    props = getattr(getattr(transport, "connection", None), "server_properties", None) or {}
    version = props.get("version") if isinstance(props, dict) else None
    if isinstance(version, bytes):
        return version.decode("utf-8", errors="replace")
    return str(version) if version else ""


class RabbitClient:
    """Publishes for handlers: `connection("main").publish(...)` reaches this object.

    One AMQP connection and one channel with publisher confirms, opened on first use and
    again after they closed.
    """

    def __init__(self, connection: RabbitConnection) -> None:
        self._connection = connection
        self._conn: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()
        self._pending: dict[str, asyncio.Future[AbstractIncomingMessage]] = {}
        self._replies_ready = False

    @property
    def name(self) -> str:
        return self._connection.name

    async def _ensure(self) -> AbstractChannel:
        channel = self._channel
        if channel is not None and not channel.is_closed:
            return channel
        async with self._lock:
            if self._channel is not None and not self._channel.is_closed:
                return self._channel
            await self._drop()
            self._conn = await self._connection.connect("publisher")
            self._channel = await self._conn.channel(publisher_confirms=True)
            self._replies_ready = False
            return self._channel

    async def _drop(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(RabbitPublishError("the connection closed before the reply"))
        self._pending.clear()
        if conn is not None and not conn.is_closed:
            try:
                await conn.close()
            except Exception:  # closing a broken connection: nothing left to release
                pass

    async def close(self) -> None:
        """Close the connection (the next publish opens a new one)."""
        async with self._lock:
            await self._drop()

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: Any = b"",
        *,
        headers: dict[str, Any] | None = None,
        content_type: str | None = None,
        content_encoding: str | None = None,
        delivery_mode: int = 2,
        priority: int | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expiration: float | None = None,
        message_id: str | None = None,
        timestamp: datetime | None = None,
        type: str | None = None,  # noqa: A002 - the AMQP property's name
        app_id: str | None = None,
        mandatory: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Publish one message and wait for the broker's confirm.

        Args:
            exchange: the exchange (`""`: the default exchange, routing by queue name).
            routing_key: the routing key (the queue name, for the default exchange).
            body: bytes as they are; str as UTF-8; models, dicts, lists as JSON.
            headers: application headers.
            content_type: default from the body (`application/json`, `text/plain`).
            delivery_mode: 2 (persistent, the default) or 1 (transient).
            expiration: per-message TTL in seconds.
            mandatory: raise when no queue is bound for the routing key.
            timeout: seconds to wait for the confirm (default `publish_timeout`).

        Raises:
            RabbitPublishError: refused (nack), returned as unroutable, or not confirmed in
                time.
            RabbitConnectError: the broker cannot be reached.
        """
        data, ctype = encode_body(body, content_type)
        properties: dict[str, Any] = {
            "content_type": ctype, "content_encoding": content_encoding,
            "headers": dict(headers or {}), "delivery_mode": delivery_mode,
            "priority": priority, "correlation_id": correlation_id, "reply_to": reply_to,
            "expiration": expiration, "message_id": message_id, "timestamp": timestamp,
            "type": type, "app_id": app_id,
        }
        await self._send(
            "rabbitmq.publish", exchange, routing_key, data, properties,
            mandatory=mandatory, timeout=timeout,
        )

    async def request(
        self,
        exchange: str,
        routing_key: str,
        body: Any = b"",
        *,
        timeout: float = 10.0,
        headers: dict[str, Any] | None = None,
        content_type: str | None = None,
        message_id: str | None = None,
        type: str | None = None,  # noqa: A002 - the AMQP property's name
        app_id: str | None = None,
        expiration: float | None = None,
    ) -> Reply:
        """Send a request and wait for its reply (RPC over RabbitMQ).

        The message goes out with `reply_to` set to the direct reply-to pseudo-queue and a
        fresh `correlation_id`; the reply is the first message that comes back with it.

        Raises:
            TimeoutError: no reply within `timeout` seconds.
            RabbitPublishError: the request was refused or unroutable (no queue is bound
                for `routing_key`).
        """
        data, ctype = encode_body(body, content_type)
        correlation_id = uuid.uuid4().hex
        properties: dict[str, Any] = {
            "content_type": ctype, "headers": dict(headers or {}), "delivery_mode": 1,
            "correlation_id": correlation_id, "reply_to": DIRECT_REPLY_TO,
            "message_id": message_id, "type": type, "app_id": app_id,
            "expiration": expiration,
        }
        if sandboxed():
            await self._send("rabbitmq.request", exchange, routing_key, data, properties)
            return Reply(
                b"{}", "application/json", {"x-iwb-sandbox": "1"}, correlation_id,
                {"content_type": "application/json", "headers": {"x-iwb-sandbox": "1"},
                 "correlation_id": correlation_id},
            )
        started = time.perf_counter()
        fut: asyncio.Future[AbstractIncomingMessage] = (
            asyncio.get_running_loop().create_future()
        )
        await self._listen_replies()
        self._pending[correlation_id] = fut
        try:
            await self._send(
                "rabbitmq.request", exchange, routing_key, data, properties, mandatory=True,
                timeout=timeout, record=False,
            )
            try:
                async with asyncio.timeout(timeout):
                    message = await fut
            except TimeoutError:
                record_outbound(
                    "rabbitmq.request", exchange=exchange, routing_key=routing_key,
                    correlation_id=correlation_id, body=_body_text(data), size=len(data),
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    error=f"no reply within {timeout:g} s",
                )
                raise TimeoutError(
                    f"No reply to the request sent to exchange {exchange!r} with routing "
                    f"key {routing_key!r} within {timeout:g} s (connection {self.name!r})."
                ) from None
        finally:
            self._pending.pop(correlation_id, None)
        props = properties_of(message.properties)
        reply = Reply(
            message.body, message.content_type, props.get("headers", {}), message.correlation_id,
            props,
        )
        record_outbound(
            "rabbitmq.request", exchange=exchange, routing_key=routing_key,
            correlation_id=correlation_id, body=_body_text(data), size=len(data),
            reply=_body_text(message.body), reply_content_type=message.content_type,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return reply

    async def _listen_replies(self) -> None:
        channel = await self._ensure()
        if self._replies_ready:
            return
        async with self._lock:
            if self._replies_ready:
                return
            queue = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
            await queue.consume(self._on_reply, no_ack=True)
            self._replies_ready = True

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        fut = self._pending.get(message.correlation_id or "")
        if fut is not None and not fut.done():
            fut.set_result(message)

    async def _send(
        self,
        kind: str,
        exchange: str,
        routing_key: str,
        data: bytes,
        properties: dict[str, Any],
        *,
        mandatory: bool = False,
        timeout: float | None = None,
        record: bool = True,
    ) -> None:
        details: dict[str, Any] = {
            "exchange": exchange,
            "routing_key": routing_key,
            "headers": headers_to_json(properties.get("headers")),
            "content_type": properties.get("content_type"),
            "body": _body_text(data),
            "size": len(data),
        }
        for key in ("correlation_id", "reply_to", "message_id"):
            if properties.get(key):
                details[key] = properties[key]
        if sandboxed():
            record_outbound(kind, **details, sandboxed=True)
            return
        started = time.perf_counter()
        try:
            await self._publish(exchange, routing_key, data, properties, mandatory, timeout)
        except Exception as exc:
            record_outbound(
                kind, **details, duration_ms=round((time.perf_counter() - started) * 1000, 3),
                error=f"{type(exc).__name__}: {exc}",
            )
            raise
        if record:
            record_outbound(
                kind, **details, confirmed=True,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )

    async def _publish(
        self,
        exchange: str,
        routing_key: str,
        data: bytes,
        properties: dict[str, Any],
        mandatory: bool,
        timeout: float | None,
    ) -> None:
        import aio_pika
        from aiormq.abc import DeliveredMessage
        from aiormq.exceptions import DeliveryError

        channel = await self._ensure()
        message = aio_pika.Message(data, **{k: v for k, v in properties.items() if v is not None})
        wait = timeout if timeout is not None else self._connection.settings.publish_timeout
        try:
            target = (
                channel.default_exchange if exchange == ""
                else await channel.get_exchange(exchange, ensure=False)
            )
            async with asyncio.timeout(wait):
                result = await target.publish(message, routing_key, mandatory=mandatory)
        except DeliveryError as exc:
            raise RabbitPublishError(
                f"The broker refused the message for exchange {exchange!r}, routing key "
                f"{routing_key!r} (connection {self.name!r}): {exc}."
            ) from exc
        except TimeoutError:
            raise RabbitPublishError(
                f"The broker did not confirm the message for exchange {exchange!r}, routing "
                f"key {routing_key!r} within {wait:g} s (connection {self.name!r})."
            ) from None
        except RabbitConnectError:
            raise
        except Exception as exc:
            if self._channel is not None and self._channel.is_closed:
                reason = f"{type(exc).__name__}: {exc}"
                raise RabbitPublishError(
                    f"Publishing to exchange {exchange!r} with routing key {routing_key!r} "
                    f"failed (connection {self.name!r}): {reason}. Does the exchange exist?"
                ) from exc
            raise
        if isinstance(result, DeliveredMessage):
            raise RabbitPublishError(
                f"No queue is bound to exchange {exchange!r} for routing key "
                f"{routing_key!r}; the broker returned the message (connection "
                f"{self.name!r})."
            )

