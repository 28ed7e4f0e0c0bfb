"""`MqttTrigger`: the listener of a set of MQTT subscriptions.

`serve()` opens an MQTT session of its own on the named connection's broker (the listener's
`client_id`, clean or persistent session), subscribes to every topic filter (as
`$share/<group>/<filter>` with `shared_group`) and hands each message to the runtime as an
event (`iwb.mqtt.message`) through `workbench.lanes.Lanes`, one lane per topic: messages of
one topic are handled one after another in arrival order, different topics at once, with at
most `max_inflight` messages received and not yet settled.

Acknowledgement follows the outcome (see `iwb_mqtt.session`): a QoS 1 message's PUBACK and
a QoS 2 message's PUBREC are sent only once its outcome is known, in arrival order by
default (`ack_order="received"`, as MQTT asks; Mosquitto also accepts them out of order,
`ack_order="settled"`). With a persistent session (`clean_session=False`, a stable
`client_id`) a message whose outcome was never known — the process was killed, the
connection dropped — is delivered again when the session resumes: at least once. With a
clean session the broker forgets unacknowledged messages on disconnect (at most once), and
QoS 0 is at most once either way.

What happens to a message follows the outcome's disposition:

- `ack`: it is acknowledged;
- `reject` (the handler failed after the artifact's `retries`, the payload does not bind,
  no handler): MQTT has no dead-letter queue, so with `dead_letter_topic` the listener
  publishes it there (QoS 1, through the connection's publishing client, waiting for the
  broker's confirmation) and then acknowledges it; without one it is acknowledged and
  dropped — its outcome, with the error, is in the capture store either way.
  MQTT 5 dead letters carry the original payload and properties plus the user properties
  `iwb-error-type`, `iwb-error-message`, `iwb-error-where` (file:line), `iwb-event-id`
  (the capture to look at), `iwb-handler`, `iwb-topic` and `iwb-attempts`. MQTT 3.1.1 has
  no properties, so a dead letter is a JSON document: `{"topic", "qos", "retain",
  "payload" (text) or "payload_base64", "error": {"type", "message", "where"},
  "event_id", "handler", "attempts"}`.
- `retry`: MQTT has no negative acknowledgement; the listener drops its connection so
  that the broker sends the message again (persistent sessions).

If a dead letter cannot be published the listener leaves the message unacknowledged and
raises, like a lost connection.

Reconnecting: when the connection drops, `serve()` releases the session and raises
`MqttDisconnectedError`; the runtime shows `disconnected-retrying` and calls `serve()` again
with backoff, which reconnects (resuming a persistent session) and subscribes again.

`inject()` publishes an event through the broker to its transport topic with its QoS,
retain flag and MQTT 5 properties. The inject mark travels as the MQTT 5 user property
`iwb-inject`; MQTT 3.1.1 has no properties, so the listener remembers the (topic, payload)
of what it injected and marks the first such message that arrives (messages are not
wrapped: other subscribers see exactly what was injected). With a shared subscription the
broker may hand an injected message to another member, whose outcome this process does
not see.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pydantic import BaseModel

from iwb_mqtt.connection import MqttConnection, MqttConnectionConfig, connect_error, new_client
from iwb_mqtt.errors import MqttError, MqttSubscribeError
from iwb_mqtt.listener import HANDLER_KEY, Listener, ListenerConfig
from iwb_mqtt.message import (
    EVENT_TYPE,
    INJECT_PROPERTY,
    KIND,
    MqttTransport,
    event_from_message,
    properties_from_transport,
)
from iwb_mqtt.session import Delivery, Inbound
from iwb_mqtt.topics import check_topic, example_topic, shared_filter
from workbench.errors import TriggerConfigError, WorkbenchError
from workbench.events import Event, Outcome
from workbench.lanes import Lanes
from workbench.plugin import Artifact, Dispatch, Sample, Trigger
from workbench.samples import NO_PAYLOAD, payload_example

if TYPE_CHECKING:
    import aiomqtt

__all__ = ["MqttTrigger"]

log = logging.getLogger("iwb.mqtt")

DISCONNECT_SECONDS = 3.0
"""How long a stopping listener waits for the broker to take its DISCONNECT."""
MARK_SECONDS = 120.0
"""How long an MQTT 3.1.1 inject mark waits for its message."""
ERROR_TEXT_LIMIT = 1024


class _Draining(Exception):
    """Raised out of the inbound buffer once the listener drains."""


class _RedeliveryRequested(MqttError):
    """An outcome asked for redelivery, which MQTT offers only by reconnecting."""


class MqttTrigger(Trigger[ListenerConfig]):
    """Serves one `mqtt.Listener`."""

    kind: ClassVar[str] = KIND
    artifact_class: ClassVar[type[Artifact[Any]]] = Listener
    transport_model: ClassVar[type[BaseModel]] = MqttTransport
    connection_kinds: ClassVar[tuple[type[Any], ...]] = (MqttConnection,)

    _inbound: Inbound | None = None
    _lanes: Lanes | None = None
    _marks: dict[tuple[str, bytes], deque[tuple[float, str]]] | None = None

    # ------------------------------------------------------------------ plumbing

    def _connection(self) -> MqttConnection:
        conn = self.context.connection(self.config.connection)
        if not isinstance(conn, MqttConnection):
            raise TriggerConfigError(
                f"Artifact {self.name!r} uses connection {self.config.connection!r}, which "
                f"is a {conn.kind!r} connection; an MQTT listener needs kind = \"mqtt\".",
                title="Wrong connection kind",
            )
        return conn

    def _settings(self) -> MqttConnectionConfig | None:
        try:
            return self._connection().settings
        except WorkbenchError:
            return None

    # ------------------------------------------------------------------ serving

    async def serve(self, dispatch: Dispatch, *, ready: Callable[[], None]) -> None:
        import aiomqtt

        cfg = self.config
        settings = self._connection().settings
        client = new_client(
            settings,
            client_id=cfg.client_id,
            clean_session=cfg.clean_session,
            session_expiry=cfg.session_expiry,
            receive_maximum=cfg.max_inflight if settings.v5 else None,
        )
        inbound = Inbound(client, high_water=cfg.max_inflight,
                          in_order=cfg.ack_order == "received")

        async def settle(event: Event, outcome: Outcome, delivery: Delivery | None) -> None:
            await self._settle(inbound, event, outcome, delivery)

        lanes = Lanes(dispatch, settle=settle, max_inflight=cfg.max_inflight)
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise connect_error(settings, exc, f"Listener {self.name!r}: connecting to") from exc
        self._inbound, self._lanes = inbound, lanes
        try:
            inbound.connected()
            filters = await self._subscribe(client, settings)
            inbound.start_flow_control()
            self.context.set_address(f"{settings.url} {', '.join(filters)}")
            ready()
            await self._consume(inbound, lanes, f"mqtt://{settings.host}:{settings.port}")
        finally:
            self._inbound = self._lanes = None
            await lanes.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(DISCONNECT_SECONDS):
                    await client.__aexit__(None, None, None)

    async def _subscribe(self, client: aiomqtt.Client, settings: MqttConnectionConfig
                         ) -> list[str]:
        import aiomqtt

        cfg = self.config
        filters = [shared_filter(t, cfg.shared_group) for t in cfg.topics]
        topics: list[tuple[str, Any]]
        if settings.v5:
            from paho.mqtt.subscribeoptions import SubscribeOptions

            options = SubscribeOptions(qos=cfg.qos, retainHandling=2 if cfg.ignore_retained
                                       else 0)
            topics = [(f, options) for f in filters]
        else:
            topics = [(f, cfg.qos) for f in filters]
        try:
            granted = await client.subscribe(topics)
        except aiomqtt.MqttError as exc:
            raise MqttSubscribeError(
                f"Listener {self.name!r}: subscribing to {filters} on {settings.url} failed: "
                f"{exc}.",
            ) from exc
        for topic_filter, code in zip(filters, granted, strict=False):
            failed = getattr(code, "is_failure", None)
            if failed is None:
                failed = int(cast(int, code)) >= 0x80
            if failed:
                raise MqttSubscribeError(
                    f"Listener {self.name!r}: the broker at {settings.url} refused the "
                    f"subscription {topic_filter!r} ({code}). Check the broker's access "
                    f"rules for client {cfg.client_id or '(generated id)'!r} and user "
                    f"{settings.username!r}.",
                )
        return filters

    async def _consume(self, inbound: Inbound, lanes: Lanes, source: str) -> None:
        name = self.name
        ignore_retained = self.config.ignore_retained
        while True:
            try:
                message, delivery = await inbound.get()
            except _Draining:
                # the runtime cancels serve() once what was handed over is settled
                await asyncio.Event().wait()
                return
            if ignore_retained and message.retain:
                inbound.settle(delivery)
                continue
            event = event_from_message(message, artifact=name, source=source,
                                       handler=HANDLER_KEY)
            if self._marks:
                self._claim_mark(event)
            await lanes.submit(event.subject, event, delivery)

    async def _settle(
        self, inbound: Inbound, event: Event, outcome: Outcome, delivery: Delivery | None
    ) -> None:
        try:
            if outcome.disposition == "reject" and self.config.dead_letter_topic:
                await self._dead_letter(event, outcome)
            elif outcome.disposition == "retry":
                raise _RedeliveryRequested(
                    f"Listener {self.name!r}: the outcome of event {event.id} asked for "
                    "redelivery; MQTT has no negative acknowledgement, so the listener "
                    "reconnects and the broker sends the message again.",
                )
        except Exception as exc:
            # Left unacknowledged; the listener stops and reconnects, and the broker sends
            # the message again.
            inbound.close(exc)
            return
        inbound.settle(delivery)

    async def drain(self) -> None:
        """Stop taking messages from the connection, then wait until every message already
        handed to the runtime is settled and acknowledged. Messages received and not handed
        over stay unacknowledged (a persistent session gets them again)."""
        inbound, lanes = self._inbound, self._lanes
        if inbound is not None:
            inbound.close(_Draining())
        if lanes is not None:
            limit = (self.artifact.policy.timeout or 30.0) + DISCONNECT_SECONDS
            await lanes.drain(limit)

    # ------------------------------------------------------------------ dead letters

    async def _dead_letter(self, event: Event, outcome: Outcome) -> None:
        cfg = self.config
        assert cfg.dead_letter_topic is not None
        conn = self._connection()
        t = event.transport
        source_topic = str(t.get("topic") or event.subject or "")
        topic = cfg.dead_letter_topic.replace("{topic}", source_topic)
        error = outcome.error
        error_type = error.type if error else "Rejected"
        message = (error.message if error else "")[:ERROR_TEXT_LIMIT]
        where = error.where if error else ""
        properties: dict[str, Any] | None = None
        if conn.settings.v5:
            properties = properties_from_transport(t.get("properties") or {})
            users = [tuple(p) for p in properties.get("user_properties") or ()]
            users += [
                ("iwb-error-type", error_type), ("iwb-error-message", message),
                ("iwb-error-where", where), ("iwb-event-id", event.id),
                ("iwb-handler", outcome.handler), ("iwb-topic", source_topic),
                ("iwb-attempts", str(outcome.attempts)),
            ]
            properties["user_properties"] = users
            body = event.data
        else:
            doc: dict[str, Any] = {
                "topic": source_topic, "qos": t.get("qos", 0), "retain": t.get("retain", False),
                "error": {"type": error_type, "message": message, "where": where},
                "event_id": event.id, "handler": outcome.handler, "attempts": outcome.attempts,
            }
            try:
                doc["payload"] = event.data.decode("utf-8")
            except UnicodeDecodeError:
                doc["payload_base64"] = base64.b64encode(event.data).decode("ascii")
            body = json.dumps(doc).encode("utf-8")
        await conn.client.send(topic, body, qos=1, properties=properties)

    # ------------------------------------------------------------------ inject

    async def inject(self, event: Event) -> None:
        """Publish `event` to its topic through the broker, as a client would."""
        conn = self._connection()
        settings = conn.settings
        t = event.transport
        topic = str(t.get("topic") or event.subject or "")
        try:
            check_topic(topic)
        except ValueError as exc:
            raise WorkbenchError(
                f"Cannot inject into {self.name!r}: {exc}. Give the event a topic "
                "(transport.topic) that the listener subscribes to.",
                title="Inject failed",
            ) from None
        qos = int(t.get("qos", self.config.qos))
        retain = bool(t.get("retain", False))
        properties: dict[str, Any] = {}
        if settings.v5:
            properties = properties_from_transport(t.get("properties") or {})
        mark = event.extensions.get("iwbinject")
        if mark is not None:
            if settings.v5:
                users = [tuple(p) for p in properties.get("user_properties") or ()]
                properties["user_properties"] = [*users, (INJECT_PROPERTY, str(mark))]
            else:
                self._remember_mark(topic, event.data, str(mark))
        await conn.client.send(topic, event.data, qos=qos, retain=retain,
                               properties=properties or None)

    def _remember_mark(self, topic: str, payload: bytes, mark: str) -> None:
        now = time.monotonic()
        marks = self._marks if self._marks is not None else {}
        for key in [k for k, q in marks.items() if q and now - q[-1][0] > MARK_SECONDS]:
            del marks[key]
        marks.setdefault((topic, payload), deque()).append((now, mark))
        self._marks = marks

    def _claim_mark(self, event: Event) -> None:
        marks = self._marks
        if marks is None or "iwbinject" in event.extensions:
            return
        key = (str(event.subject), event.data)
        waiting = marks.get(key)
        if waiting:
            event.extensions["iwbinject"] = waiting.popleft()[1]
            if not waiting:
                del marks[key]

    def correlates(self, injected: Event, received: Event) -> bool:
        topic = injected.transport.get("topic") or injected.subject
        return received.data == injected.data and received.transport.get("topic") == topic

    # ------------------------------------------------------------------ console

    def samples(self) -> list[Sample]:
        """One sample per subscription: a message to a topic the filter matches (each
        wildcard level becomes `example`) whose payload fits the handler."""
        cfg = self.config
        spec = self.artifact.handlers.get(HANDLER_KEY)
        example = payload_example(spec, type(self)) if spec is not None else NO_PAYLOAD
        body, content_type = _sample_body(example)
        settings = self._settings()
        v5 = settings is not None and settings.v5
        source = f"mqtt://{settings.host}:{settings.port}" if settings else "mqtt://"
        samples: list[Sample] = []
        for topic_filter in cfg.topics:
            topic = example_topic(topic_filter)
            transport: dict[str, Any] = {
                "topic": topic, "qos": cfg.qos, "retain": False, "mid": 0, "dup": False,
            }
            if v5 and content_type:
                transport["properties"] = {"content_type": content_type}
            event = Event(
                artifact=self.name, kind=KIND, type=EVENT_TYPE, source=source, data=body,
                transport=transport, handler=HANDLER_KEY, subject=topic,
                datacontenttype=content_type,
            )
            description = f"publish to {topic}" + (
                f" (matches {topic_filter})" if topic != topic_filter else ""
            )
            samples.append(Sample(topic, description, event))
        return samples


def _sample_body(example: Any) -> tuple[bytes, str | None]:
    if example is NO_PAYLOAD:
        return b"", None
    if isinstance(example, bytes):
        return example, None
    if isinstance(example, str):
        return example.encode("utf-8"), None
    return json.dumps(example, indent=2).encode("utf-8"), "application/json"

