"""The `mqtt` connection kind: a named MQTT broker in connections.toml.

    [main]
    kind = "mqtt"
    host = "broker.internal"
    port = 8883
    username = "iwb"
    password = "${MQTT_PASSWORD}"
    protocol = "5"                 # or "3.1.1" (the default)
    tls = true
    ca_certs = "certs/ca.pem"      # relative paths resolve against the project

Listeners name it (`mqtt.Listener(connection="main", ...)`) for the broker's address,
credentials, protocol and TLS; each listener opens a session of its own on it. Handlers
publish through it:

    from workbench.config import connection
    main = connection("main")

    await main.publish("alerts/high", {"sensor": "s1"}, qos=1,
                       properties={"user_properties": [("source", "iwb")]})

Every publish is recorded on the current event's outcome (`mqtt.publish` with topic, QoS,
retain, payload, properties and duration). In sandbox mode (a replay that must not reach the
outside) it is recorded with `sandboxed=True` and not sent. The publishing client connects on
first use and reconnects when its connection has dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from iwb_mqtt.errors import MqttConnectError, MqttPublishError
from iwb_mqtt.message import properties_to_paho
from iwb_mqtt.topics import check_topic
from workbench.config import project_path
from workbench.plugin import ConnectionKind, Health, record_outbound, sandboxed

if TYPE_CHECKING:
    import aiomqtt

__all__ = [
    "MqttClient",
    "MqttConnection",
    "MqttConnectionConfig",
    "Payload",
    "encode_payload",
    "new_client",
]

Protocol = Literal["3.1.1", "5"]
Payload = bytes | bytearray | memoryview | str | BaseModel | dict[str, Any] | list[Any] | None
"""What `publish` accepts: bytes as they are, text as UTF-8, anything else as JSON."""

_PROTOCOL_ALIASES = {
    "3.1.1": "3.1.1", "311": "3.1.1", "3": "3.1.1", "4": "3.1.1", "v3.1.1": "3.1.1",
    "5": "5", "5.0": "5", "v5": "5",
}


class MqttConnectionConfig(BaseModel):
    """A named MQTT broker."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    """Masked wherever configuration is shown."""
    client_id: str | None = None
    """Client identifier of the publishing client (listeners have their own); a random one
    when not set."""
    protocol: Protocol = "3.1.1"
    """`3.1.1` or `5` (MQTT 5: properties, session expiry, retain handling)."""
    keepalive: int = Field(default=60, ge=0, le=65535)
    """Seconds between keep-alive pings."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the broker to accept a connection (and for a publish to be
    confirmed)."""
    tls: bool = False
    """Connect with TLS (implied by `ca_certs`, `certfile` or `tls_insecure`)."""
    ca_certs: str | None = None
    """CA bundle to verify the broker's certificate (default: the system's)."""
    certfile: str | None = None
    """Client certificate, for brokers that authenticate clients by certificate."""
    keyfile: str | None = None
    """Private key of `certfile` (when it is not inside `certfile`)."""
    tls_insecure: bool = False
    """Do not verify the broker's certificate or host name (test brokers only)."""

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol(cls, value: Any) -> Any:
        key = str(value).strip().lower()
        if key in _PROTOCOL_ALIASES:
            return _PROTOCOL_ALIASES[key]
        raise ValueError(f"protocol {value!r} is not supported; use \"3.1.1\" or \"5\"")

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.uses_tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def uses_tls(self) -> bool:
        return self.tls or bool(self.ca_certs or self.certfile or self.tls_insecure)

    @property
    def v5(self) -> bool:
        return self.protocol == "5"


def _path(value: str) -> str:
    return str(project_path(Path(value).expanduser()))


def tls_context(cfg: MqttConnectionConfig) -> ssl.SSLContext | None:
    """The TLS context of a connection, or None without TLS."""
    if not cfg.uses_tls:
        return None
    try:
        context = ssl.create_default_context(
            cafile=_path(cfg.ca_certs) if cfg.ca_certs else None
        )
        if cfg.certfile:
            context.load_cert_chain(
                _path(cfg.certfile), _path(cfg.keyfile) if cfg.keyfile else None
            )
    except (OSError, ssl.SSLError) as exc:
        raise MqttConnectError(
            f"Could not set up TLS for {cfg.url}: {exc}. Check ca_certs={cfg.ca_certs!r}, "
            f"certfile={cfg.certfile!r} and keyfile={cfg.keyfile!r} in connections.toml.",
        ) from exc
    if cfg.tls_insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def new_client(
    cfg: MqttConnectionConfig,
    *,
    client_id: str | None = None,
    clean_session: bool = True,
    session_expiry: int = 0,
    receive_maximum: int | None = None,
    timeout: float | None = None,
) -> aiomqtt.Client:
    """An unconnected `aiomqtt.Client` for the broker of `cfg` (call inside the event loop).

    Args:
        client_id: the session's client identifier (random when None).
        clean_session: start afresh and drop the session on disconnect (MQTT 5: clean
            start, session expiry 0), or resume/keep a persistent session.
        session_expiry: MQTT 5, persistent sessions: seconds the broker keeps the session.
        receive_maximum: MQTT 5: how many unacknowledged QoS 1/2 messages the broker may
            send at once.
        timeout: seconds for connecting and confirmations (default `connect_timeout`).
    """
    import aiomqtt

    kwargs: dict[str, Any] = {}
    if cfg.v5:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if not clean_session:
            props.SessionExpiryInterval = session_expiry
        if receive_maximum is not None:
            props.ReceiveMaximum = max(1, min(receive_maximum, 65535))
        kwargs["protocol"] = aiomqtt.ProtocolVersion.V5
        # a fresh Client per (re)connect: "first only" would start clean every time
        kwargs["clean_start"] = clean_session
        kwargs["properties"] = props
    else:
        kwargs["protocol"] = aiomqtt.ProtocolVersion.V311
        kwargs["clean_session"] = clean_session
    return aiomqtt.Client(
        cfg.host,
        cfg.port,
        username=cfg.username,
        password=cfg.password,
        identifier=client_id,
        keepalive=cfg.keepalive,
        timeout=timeout or cfg.connect_timeout,
        tls_context=tls_context(cfg),
        tls_insecure=cfg.tls_insecure if cfg.uses_tls else None,
        **kwargs,
    )


def connect_error(cfg: MqttConnectionConfig, exc: BaseException, what: str) -> MqttConnectError:
    """A `MqttConnectError` for a failed connect, with a hint at the likely cause."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "not authori" in lowered or "bad user" in lowered or "password" in lowered:
        hint = "Check username and password in connections.toml."
    elif "identifier" in lowered:
        hint = "The broker refused the client_id; use another one."
    elif "timed out" in lowered:
        hint = f"No answer within {cfg.connect_timeout:g} s; is the broker reachable?"
    else:
        hint = "Is the broker running, and are host and port right in connections.toml?"
    return MqttConnectError(f"{what} {cfg.url} failed: {text}. {hint}")


def encode_payload(payload: Payload) -> tuple[bytes, bool]:
    """The bytes to publish, and whether they were encoded as JSON."""
    if payload is None:
        return b"", False
    if isinstance(payload, bytes):
        return payload, False
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload), False
    if isinstance(payload, str):
        return payload.encode("utf-8"), False
    if isinstance(payload, BaseModel):
        return payload.model_dump_json().encode("utf-8"), True
    try:
        return json.dumps(payload, separators=(",", ":")).encode("utf-8"), True
    except (TypeError, ValueError) as exc:
        raise MqttPublishError(
            f"Cannot publish a {type(payload).__name__} payload: {exc}. Pass bytes, str, a "
            "pydantic model or a JSON-serialisable value.",
        ) from None


def body_text(data: bytes, limit: int = 16_384) -> str:
    """The payload for an outcome record: UTF-8 text (truncated), or a size note."""
    try:
        text = data[:limit].decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes of binary data>"
    return text if len(data) <= limit else text + f"… ({len(data)} bytes)"


class MqttClient:
    """What handlers get from `connection("<name>")`: publishing to the broker.

    One MQTT connection (clean session) per `connections.toml` entry, opened on the first
    publish and again after it dropped.
    """

    def __init__(self, connection: MqttConnection) -> None:
        self._connection = connection
        self._client: aiomqtt.Client | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    @property
    def settings(self) -> MqttConnectionConfig:
        return self._connection.settings

    async def publish(
        self,
        topic: str,
        payload: Payload = b"",
        *,
        qos: int = 0,
        retain: bool = False,
        properties: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Publish one message.

        Args:
            topic: a topic name (no wildcards).
            payload: bytes as they are, text as UTF-8, a pydantic model or any
                JSON-serialisable value as JSON (MQTT 5: with Content Type
                `application/json` unless `properties` gives one).
            qos: 0, 1 or 2; with 1 and 2 this returns once the broker confirmed it.
            retain: the broker keeps it as the topic's retained message.
            properties: MQTT 5 properties: `user_properties` (pairs or a mapping),
                `content_type`, `response_topic`, `correlation_data` (bytes),
                `message_expiry_interval`, `payload_format_indicator`.
            timeout: seconds to wait for the confirmation (default `connect_timeout`).

        Raises:
            MqttPublishError: a bad argument, or the broker could not be reached or did
                not confirm in time.
        """
        body, as_json = encode_payload(payload)
        props = self._properties(topic, qos, properties, as_json)
        details: dict[str, Any] = {
            "topic": topic, "qos": qos, "retain": retain, "payload": body_text(body),
            "size": len(body),
        }
        if props:
            details["properties"] = _jsonable_properties(props)
        if sandboxed():
            record_outbound("mqtt.publish", **details, sandboxed=True)
            return
        started = time.perf_counter()
        try:
            await self.send(topic, body, qos=qos, retain=retain, properties=props,
                            timeout=timeout)
        except MqttPublishError as exc:
            record_outbound(
                "mqtt.publish", **details,
                duration_ms=round((time.perf_counter() - started) * 1000, 3), error=str(exc),
            )
            raise
        record_outbound(
            "mqtt.publish", **details, duration_ms=round((time.perf_counter() - started) * 1000, 3)
        )

    def _properties(
        self, topic: str, qos: int, properties: Mapping[str, Any] | None, as_json: bool
    ) -> dict[str, Any]:
        try:
            check_topic(topic)
        except ValueError as exc:
            raise MqttPublishError(f"Cannot publish: {exc}.") from None
        if qos not in (0, 1, 2):
            raise MqttPublishError(f"Cannot publish to {topic!r} with qos={qos!r}; use 0, 1 or 2.")
        props = dict(properties or {})
        if props and not self.settings.v5:
            raise MqttPublishError(
                f"Cannot publish to {topic!r} with properties {sorted(props)}: connection "
                f"{self._connection.name!r} speaks MQTT 3.1.1, which has no properties. "
                'Set protocol = "5" in connections.toml.',
            )
        if as_json and self.settings.v5 and "content_type" not in props:
            props["content_type"] = "application/json"
        return props

    async def send(
        self,
        topic: str,
        body: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        properties: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Publish without recording (for the plugin's own messages: dead letters)."""
        import aiomqtt

        try:
            paho_props = properties_to_paho(properties) if properties else None
        except ValueError as exc:
            raise MqttPublishError(f"Cannot publish to {topic!r}: {exc}.") from None
        for attempt in (1, 2):
            client = await self._connected()
            try:
                await client.publish(
                    topic, body, qos=qos, retain=retain, properties=paho_props, timeout=timeout
                )
                return
            except aiomqtt.MqttError as exc:
                await self._reset()
                if attempt == 2:
                    raise MqttPublishError(
                        f"Publishing to {topic!r} on {self.settings.url} failed: {exc or 'no'}"
                        " detail. The broker may be down; the message was not confirmed.",
                    ) from exc

    async def _connected(self) -> aiomqtt.Client:
        async with self._lock:
            client = self._client
            if client is not None and not client._disconnected.done():
                return client
            if client is not None:
                await self._reset()
            cfg = self.settings
            client = new_client(cfg, client_id=cfg.client_id)
            stack = contextlib.AsyncExitStack()
            try:
                await stack.enter_async_context(client)
            except Exception as exc:
                raise MqttPublishError(str(connect_error(cfg, exc, "Connecting to"))) from exc
            self._client, self._stack = client, stack
            return client

    async def _reset(self) -> None:
        client, stack, self._stack, self._client = self._client, self._stack, None, None
        if client is not None:
            lost = client._disconnected
            if lost.done() and not lost.cancelled():
                lost.exception()  # seen: asyncio need not report it as never retrieved
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()

    async def close(self) -> None:
        """Disconnect (the next publish connects again)."""
        async with self._lock:
            await self._reset()


def _jsonable_properties(props: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in props.items():
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                value = value.hex()
        elif key == "user_properties":
            value = [[str(k), str(v)] for k, v in (
                value.items() if isinstance(value, Mapping) else value
            )]
        out[key] = value
    return out


class MqttConnection(ConnectionKind[MqttClient]):
    """An MQTT broker: where listeners subscribe and through which handlers publish."""

    kind: ClassVar[str] = "mqtt"
    config_model: ClassVar[type[BaseModel]] = MqttConnectionConfig

    @property
    def settings(self) -> MqttConnectionConfig:
        assert isinstance(self.config, MqttConnectionConfig)
        return self.config

    async def open(self) -> MqttClient:
        return MqttClient(self)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def health(self) -> Health:
        cfg = self.settings
        started = time.perf_counter()
        try:
            async with asyncio.timeout(cfg.connect_timeout + 1):
                async with new_client(cfg):
                    pass
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                exc = TimeoutError("timed out")
            return Health(
                False, connect_error(cfg, exc, "Connecting to").message,
                (time.perf_counter() - started) * 1000,
            )
        latency = (time.perf_counter() - started) * 1000
        return Health(True, f"{cfg.url} accepted an MQTT {cfg.protocol} connection", latency)
