"""`RabbitTrigger`: the listener of a RabbitMQ queue.

`serve()` opens an AMQP connection of its own (from the named connection's settings),
declares the topology — the queue (or checks that it exists, with `declare=None`), the
exchanges of bindings that give an `exchange_type`, the bindings, the dead-letter exchange
and queue — sets the prefetch (basic.qos) and consumes. Each delivery becomes an event
(`iwb.rabbitmq.message`) handed to the runtime through `workbench.lanes.Lanes`:

- `ordered=False` (the default): up to `prefetch` messages are handled at once, each on a
  lane of its own (a pool of `prefetch` lane keys), acknowledged as each one finishes;
- `ordered=True`: one lane for the queue, so messages are handled one at a time in delivery
  order (the broker still sends `prefetch` ahead, which keeps the lane fed). A message that
  fails goes back to the end of the queue (below), so order holds for what succeeds.

The consumer is registered on the aiormq channel under aio-pika's, so a delivery becomes an
event without an aio-pika `IncomingMessage` (and its extra task) in between; aio-pika still
opens the connection and channel and declares the topology. Acknowledgements are coalesced
(`iwb_rabbitmq.acks`): each message is acknowledged only once its outcome is known, but the
acks completed in one turn of the event loop go out as one `multiple` frame.

What happens to a message follows the outcome:

- `ack` (the handler succeeded): when the message has `reply_to`, the handler's return value
  is published to it first (default exchange, the request's `correlation_id`; JSON for
  models, dicts, lists and None, UTF-8 for text, bytes as they are), then the message is
  acknowledged.
- `reject` after the runtime's in-process retries: the listener publishes a copy to the back
  of the queue (default exchange, routing key = queue name) with the header `x-iwb-retries`
  incremented and the last error in `x-iwb-error-*`, waits for the broker's confirm, then
  acknowledges the original. The count lives in the message, so it survives restarts and
  works on every queue type (classic, quorum). The copy keeps the exchange and routing key it
  was first published with in `x-iwb-exchange` / `x-iwb-routing-key`, and its event shows
  those. Once the count reaches `max_redeliveries` the message is dead-lettered.
- a payload that cannot bind (malformed JSON, failed validation, wrong content type) or an
  event with no handler: dead-lettered at once — the same input will never bind.

Dead-lettering publishes the message itself to `dead_letter_exchange` (routing key
`dead_letter_routing_key`, or the original one), with every property and header plus
`x-iwb-error-type`, `x-iwb-error-message`, `x-iwb-error-where` (file:line), `x-iwb-event-id`
(the capture to look at), `x-iwb-handler`, `x-iwb-queue`, `x-iwb-retries`, waits for the
confirm and acknowledges the original. The listener publishes instead of relying on the
queue's `x-dead-letter-exchange` argument so the error travels with the message and the
queue never has to be declared again when the dead-letter exchange changes (a queue
argument cannot change on an existing queue). With `declare` set, a missing dead-letter
exchange is declared (durable, fanout); `dead_letter_queue` is declared and bound to it
with `#`. Without `dead_letter_exchange`, the message is rejected without requeue (a queue
with its own `x-dead-letter-exchange` then dead-letters it, else the broker drops it).
When a dead-lettered message has `reply_to`, the requester gets an error reply
(`{"error": {"type", "message", "event_id"}}`, header `x-iwb-error-type`).

Every reply, requeue and dead letter is noted on the outcome (`rabbitmq.reply`,
`rabbitmq.requeue`, `rabbitmq.dead_letter`, `rabbitmq.reject`).

Reconnecting: when the connection or the channel closes, `serve()` releases everything and
raises `RabbitConnectionLostError`; the runtime shows `disconnected-retrying` and calls
`serve()` again with backoff, which connects and declares the topology again. Messages that
were in flight are not acknowledged, so the broker delivers them again (at least once).

`inject()` publishes an event through the broker to its transport's exchange and routing
key (the default exchange and the queue when it names none) with every property and header,
plus `x-iwb-inject` (the runtime's mark, which becomes the received event's `iwbinject`);
the listener's own bookkeeping headers are left out, so a replayed message starts afresh.
A message injected in sandbox mode is an experiment: its reply is recorded (`sandboxed`)
but not sent, and when it fails it is acknowledged, not requeued or dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from iwb_rabbitmq.acks import Acker
from iwb_rabbitmq.connection import RabbitConnection, encode_body
from iwb_rabbitmq.errors import (
    RabbitConnectionLostError,
    RabbitError,
    RabbitPublishError,
    RabbitTopologyError,
)
from iwb_rabbitmq.listener import HANDLER_KEY, Listener, ListenerConfig
from iwb_rabbitmq.message import (
    BOOKKEEPING_HEADERS,
    EXCHANGE_HEADER,
    INJECT_HEADER,
    RETRIES_HEADER,
    ROUTING_KEY_HEADER,
    RabbitTransport,
    event_from_delivery,
    outgoing_properties,
    retries_of,
    source_of,
)
from iwb_rabbitmq.samples import build_samples
from workbench.errors import TriggerConfigError
from workbench.events import Event, Outcome
from workbench.lanes import Lanes
from workbench.plugin import (
    Artifact,
    BindingError,
    Dispatch,
    Sample,
    Trigger,
    TriggerContext,
    sandboxed,
)

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel, AbstractConnection
    from aiormq.abc import AbstractChannel as RawChannel
    from aiormq.abc import DeliveredMessage
    from pamqp.commands import Basic

__all__ = ["RabbitTrigger", "is_permanent"]

DRAIN_SECONDS = 10.0
"""How long `drain()` waits for in-flight messages to be settled."""
CLOSE_SECONDS = 5.0
CONFIRM_SECONDS = 30.0
"""How long a requeue, dead letter or reply waits for the broker's confirm."""
ERROR_TEXT_LIMIT = 4096
"""Longest error message put in a header."""
BODY_RECORD_LIMIT = 65536
PERMANENT_ERRORS = frozenset(
    {"NoHandler", "HandlerSignatureError", "MalformedPayload", "UnsupportedMediaType"}
)
"""Outcome error types the same message will always get again (never requeued)."""

Token = tuple["DeliveredMessage", int | None]


def is_permanent(outcome: Outcome) -> bool:
    """Whether redelivering the message cannot help: it never bound to the handler."""
    if outcome.status == "rejected" or isinstance(outcome.exception, BindingError):
        return True
    return (
        outcome.exception is None
        and outcome.error is not None
        and outcome.error.type in PERMANENT_ERRORS
    )


def _tag(message: DeliveredMessage) -> int:
    return int(getattr(message.delivery, "delivery_tag", 0) or 0)


class RabbitTrigger(Trigger[ListenerConfig]):
    """Consumes one `rabbitmq.Listener`'s queue."""

    kind: ClassVar[str] = "rabbitmq"
    artifact_class: ClassVar[type[Artifact[Any]]] = Listener
    transport_model: ClassVar[type[BaseModel]] = RabbitTransport
    connection_kinds: ClassVar[tuple[type[Any], ...]] = (RabbitConnection,)

    def __init__(self, artifact: Artifact[ListenerConfig], context: TriggerContext) -> None:
        super().__init__(artifact, context)
        self._conn: AbstractConnection | None = None
        self._raw: RawChannel | None = None
        self._consumer_tag: str | None = None
        self._lanes: Lanes | None = None
        self._acker: Acker | None = None
        self._slots: asyncio.Queue[int] = asyncio.Queue()
        self._failure: asyncio.Future[BaseException] | None = None
        self._sandbox_marks: set[str] = set()
        self._login = ""
        self._source = ""
        # Event ids: a random prefix per listener run and a counter — unique like a UUID,
        # without reading the system's random source for every message.
        self._id_prefix = uuid.uuid4().hex[:20]
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ serving

    def _rabbit(self) -> RabbitConnection:
        conn = self.context.connection(self.config.connection)
        if not isinstance(conn, RabbitConnection):
            raise TriggerConfigError(
                f"Artifact {self.name!r} uses connection {self.config.connection!r}, whose "
                f"kind is {conn.kind!r}; a RabbitMQ listener needs kind = \"rabbitmq\".",
                title="Wrong connection kind",
            )
        return conn

    async def serve(self, dispatch: Dispatch, *, ready: Callable[[], None]) -> None:
        cfg = self.config
        rabbit = self._rabbit()
        endpoint = rabbit.endpoint
        self._login = endpoint.username
        self._source = source_of(endpoint.host, endpoint.port, endpoint.virtual_host, cfg.queue)
        failure: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        self._failure = failure
        conn = await rabbit.connect(f"listener {self.name}")
        self._conn = conn
        lanes: Lanes | None = None
        try:
            conn.close_callbacks.add(self._on_closed)
            channel = await conn.channel(publisher_confirms=True)
            channel.close_callbacks.add(self._on_closed)
            await channel.set_qos(prefetch_count=cfg.prefetch)
            await self._declare(conn, channel)
            raw = await channel.get_underlay_channel()
            lanes = Lanes(dispatch, settle=self._settle, max_inflight=cfg.prefetch)
            for slot in range(cfg.prefetch):
                self._slots.put_nowait(slot)
            self._raw, self._lanes = raw, lanes
            self._acker = Acker(raw, self._fail)
            # Consumed on the aiormq channel under aio-pika's: a delivery becomes an event
            # without an aio-pika IncomingMessage and its extra task in between.
            ok = await raw.basic_consume(cfg.queue, self._on_delivery)
            self._consumer_tag = ok.consumer_tag
            self.context.set_address(self._source)
            ready()
            reason = await failure
            raise RabbitConnectionLostError(
                f"Listener {self.name!r} lost its connection to {endpoint.display()} "
                f"(queue {cfg.queue!r}): {_describe(reason)}. It reconnects with backoff; "
                "unacknowledged messages are delivered again."
            ) from reason
        finally:
            self._raw = self._lanes = None
            self._consumer_tag, self._conn = None, None
            if not failure.done():
                failure.set_result(RabbitConnectionLostError("the listener stopped"))
            acker, self._acker = self._acker, None
            await _shielded(self._release(conn, lanes, acker))

    async def _release(
        self, conn: AbstractConnection, lanes: Lanes | None, acker: Acker | None
    ) -> None:
        if lanes is not None:
            await lanes.close()
        if acker is not None and not conn.is_closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_SECONDS):
                    await acker.flush()
        if not conn.is_closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_SECONDS):
                    await conn.close()

    def _on_closed(self, _sender: Any, exc: BaseException | None = None) -> None:
        self._fail(exc or RabbitConnectionLostError("the broker closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        failure = self._failure
        if failure is not None and not failure.done():
            failure.set_result(exc)

    async def drain(self) -> None:
        """Stop consuming (basic.cancel), then wait until every message already handed to
        the runtime is settled and acknowledged; what the broker sent ahead and nobody
        handled goes back to the queue when the connection closes."""
        raw, tag, lanes, acker = self._raw, self._consumer_tag, self._lanes, self._acker
        if raw is not None and tag is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_SECONDS):
                    await raw.basic_cancel(tag)
        if lanes is not None:
            await lanes.drain(DRAIN_SECONDS)
        if acker is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_SECONDS):
                    await acker.flush()

    # ------------------------------------------------------------------ topology

    async def _declare(self, conn: AbstractConnection, channel: AbstractChannel) -> None:
        cfg = self.config
        step = ""
        try:
            for binding in cfg.bindings:
                if binding.exchange_type is not None:
                    step = f"declaring exchange {binding.exchange!r} ({binding.exchange_type})"
                    await channel.declare_exchange(
                        binding.exchange, binding.exchange_type, durable=binding.durable
                    )
            if cfg.declare is not None:
                step = f"declaring queue {cfg.queue!r}"
                queue = await channel.declare_queue(
                    cfg.queue,
                    durable=cfg.declare.durable,
                    exclusive=cfg.declare.exclusive,
                    auto_delete=cfg.declare.auto_delete,
                    arguments=dict(cfg.declare.arguments) or None,
                )
            else:
                step = f"looking up queue {cfg.queue!r} (declare=None)"
                queue = await channel.declare_queue(cfg.queue, passive=True)
            for binding in cfg.bindings:
                step = (
                    f"binding queue {cfg.queue!r} to exchange {binding.exchange!r} with "
                    f"{binding.routing_key!r}"
                )
                await queue.bind(
                    binding.exchange, binding.routing_key,
                    arguments=dict(binding.arguments) or None,
                )
            if cfg.dead_letter_exchange:
                step = f"setting up dead-letter exchange {cfg.dead_letter_exchange!r}"
                await self._declare_dead_letters(conn, channel)
        except RabbitError:
            raise
        except Exception as exc:
            raise RabbitTopologyError(
                f"Listener {self.name!r}: {step} failed: {_describe(exc)}. "
                + _topology_hint(exc, cfg),
            ) from exc

    async def _declare_dead_letters(
        self, conn: AbstractConnection, channel: AbstractChannel
    ) -> None:
        from aiormq.exceptions import ChannelNotFoundEntity

        cfg = self.config
        name = cfg.dead_letter_exchange
        assert name
        # A passive declare of a missing exchange closes its channel: probe on a spare one.
        probe = await conn.channel(publisher_confirms=False)
        try:
            await probe.get_exchange(name, ensure=True)
            exists = True
        except ChannelNotFoundEntity:
            exists = False
        finally:
            if not probe.is_closed:
                await probe.close()
        if not exists:
            if cfg.declare is None:
                raise RabbitTopologyError(
                    f"Listener {self.name!r}: the dead-letter exchange {name!r} does not "
                    "exist, and declare=None tells the listener not to create anything. "
                    "Declare the exchange, or give the listener a `declare=`."
                )
            await channel.declare_exchange(name, "fanout", durable=True)
        if cfg.dead_letter_queue:
            dlq = await channel.declare_queue(cfg.dead_letter_queue, durable=True)
            await dlq.bind(name, "#")

    # ------------------------------------------------------------------ consuming

    async def _on_delivery(self, message: DeliveredMessage) -> None:
        lanes, acker = self._lanes, self._acker
        if lanes is None or acker is None:
            return  # the listener is stopping: unacknowledged, so delivered again
        acker.track(_tag(message))
        try:
            event = event_from_delivery(
                message, artifact=self.name, queue=self.config.queue, source=self._source,
                handler=HANDLER_KEY, event_id=f"{self._id_prefix}{next(self._ids):012x}",
            )
            if self.config.ordered:
                await lanes.submit(None, event, (message, None))
            else:
                slot = await self._slots.get()
                await lanes.submit(slot, event, (message, slot))
        except Exception as exc:
            self._fail(exc)

    async def _settle(self, event: Event, outcome: Outcome, token: Token) -> None:
        message, slot = token
        try:
            await self._finish(event, outcome, message)
        except Exception as exc:
            # The message stays unacknowledged; the listener reconnects and the broker
            # delivers it again.
            self._fail(exc)
        finally:
            if slot is not None:
                self._slots.put_nowait(slot)

    async def _finish(self, event: Event, outcome: Outcome, message: DeliveredMessage) -> None:
        acker = self._acker
        if acker is None:
            raise RabbitConnectionLostError(f"listener {self.name!r} has no open channel")
        mark = event.extensions.get("iwbinject")
        sandbox = mark is not None and mark in self._sandbox_marks
        if sandbox:
            self._sandbox_marks.discard(mark)
        props = message.header.properties
        if outcome.disposition == "ack":
            if props.reply_to:
                body, content_type = encode_body(outcome.value)
                await self._reply(outcome, message, body, content_type, {}, sandbox=sandbox)
            acker.ack(_tag(message))
            return
        if sandbox:
            # A sandboxed inject is an experiment: nothing is requeued or dead-lettered.
            acker.ack(_tag(message))
            return
        retries = retries_of(props.headers)
        if not is_permanent(outcome) and retries < self.config.max_redeliveries:
            await self._requeue(outcome, message, retries + 1)
            acker.ack(_tag(message))
            return
        await self._dead_letter(outcome, message, acker, retries)

    async def _publish(
        self, exchange: str, routing_key: str, body: bytes, properties: Basic.Properties
    ) -> None:
        """Publish on the consumer's channel and wait for the broker's confirm."""
        raw = self._raw
        if raw is None or raw.is_closed:
            raise RabbitConnectionLostError(f"listener {self.name!r} has no open channel")
        try:
            await raw.basic_publish(
                body, exchange=exchange, routing_key=routing_key, properties=properties,
                timeout=CONFIRM_SECONDS,
            )
        except TimeoutError:
            raise RabbitPublishError(
                f"Listener {self.name!r}: the broker did not confirm a message for exchange "
                f"{exchange!r}, routing key {routing_key!r} within {CONFIRM_SECONDS:g} s."
            ) from None

    def _copy(self, message: DeliveredMessage, headers: dict[str, Any]) -> Basic.Properties:
        from pamqp.commands import Basic

        props = message.header.properties
        return Basic.Properties(
            content_type=props.content_type,
            content_encoding=props.content_encoding,
            headers=headers,
            delivery_mode=props.delivery_mode,
            priority=props.priority,
            correlation_id=props.correlation_id,
            reply_to=props.reply_to,
            expiration=props.expiration,
            message_id=props.message_id,
            timestamp=props.timestamp,
            message_type=props.message_type,
            user_id=props.user_id if props.user_id == self._login else None,
            app_id=props.app_id,
        )

    def _error_headers(
        self, outcome: Outcome, message: DeliveredMessage, retries: int
    ) -> dict[str, Any]:
        headers = dict(message.header.properties.headers or {})
        headers[RETRIES_HEADER] = retries
        headers.setdefault(EXCHANGE_HEADER, getattr(message.delivery, "exchange", "") or "")
        headers.setdefault(
            ROUTING_KEY_HEADER, getattr(message.delivery, "routing_key", "") or ""
        )
        error = outcome.error
        headers["x-iwb-error-type"] = error.type if error else outcome.status
        headers["x-iwb-error-message"] = (error.message if error else "")[:ERROR_TEXT_LIMIT]
        headers["x-iwb-error-where"] = error.where if error else ""
        headers["x-iwb-event-id"] = outcome.event_id
        headers["x-iwb-handler"] = outcome.handler
        headers["x-iwb-queue"] = self.config.queue
        return headers

    async def _requeue(self, outcome: Outcome, message: DeliveredMessage, retries: int) -> None:
        headers = self._error_headers(outcome, message, retries)
        await self._publish("", self.config.queue, message.body, self._copy(message, headers))
        outcome.record_sent(
            "rabbitmq.requeue", queue=self.config.queue, retries=retries,
            max_redeliveries=self.config.max_redeliveries,
        )

    async def _dead_letter(
        self, outcome: Outcome, message: DeliveredMessage, acker: Acker, retries: int
    ) -> None:
        cfg = self.config
        if message.header.properties.reply_to:
            error = outcome.error
            kind = error.type if error else outcome.status
            body, content_type = encode_body({"error": {
                "type": kind, "message": error.message if error else "",
                "event_id": outcome.event_id,
            }})
            await self._reply(
                outcome, message, body, content_type, {"x-iwb-error-type": kind},
                sandbox=False,
            )
        if not cfg.dead_letter_exchange:
            await acker.reject(_tag(message), requeue=False)
            outcome.record_sent("rabbitmq.reject", queue=cfg.queue, requeue=False)
            return
        headers = self._error_headers(outcome, message, retries)
        routing_key = cfg.dead_letter_routing_key
        if routing_key is None:
            routing_key = str(headers.get(ROUTING_KEY_HEADER) or "")
        await self._publish(
            cfg.dead_letter_exchange, routing_key, message.body, self._copy(message, headers)
        )
        acker.ack(_tag(message))
        outcome.record_sent(
            "rabbitmq.dead_letter", exchange=cfg.dead_letter_exchange, routing_key=routing_key,
            retries=retries, error_type=headers["x-iwb-error-type"],
        )

    async def _reply(
        self,
        outcome: Outcome,
        message: DeliveredMessage,
        body: bytes,
        content_type: str | None,
        headers: dict[str, Any],
        *,
        sandbox: bool,
    ) -> None:
        from pamqp.commands import Basic

        props = message.header.properties
        reply_to = props.reply_to or ""
        details: dict[str, Any] = {
            "routing_key": reply_to,
            "correlation_id": props.correlation_id,
            "content_type": content_type,
            "headers": headers,
            "body": body[:BODY_RECORD_LIMIT].decode("utf-8", errors="replace"),
            "size": len(body),
        }
        if sandbox:
            outcome.record_sent("rabbitmq.reply", **details, sandboxed=True)
            return
        reply = Basic.Properties(
            content_type=content_type,
            headers=headers or None,
            correlation_id=props.correlation_id,
            delivery_mode=props.delivery_mode or 1,
        )
        await self._publish("", reply_to, body, reply)
        outcome.record_sent("rabbitmq.reply", **details)

    # ------------------------------------------------------------------ inject

    async def inject(self, event: Event) -> None:
        """Publish `event` through the broker as a client would (see the module docstring).

        Raises:
            RabbitPublishError: the broker refused the message, or no queue is bound for
                its exchange and routing key.
        """
        cfg = self.config
        t = event.transport or {}
        exchange = str(t.get("exchange") or "")
        routing_key = str(t.get("routing_key") or "")
        if not exchange and not routing_key:
            routing_key = cfg.queue
        props = dict(t.get("properties") or {})
        headers = {
            k: v for k, v in (props.get("headers") or {}).items() if k not in BOOKKEEPING_HEADERS
        }
        mark = event.extensions.get("iwbinject")
        if mark is not None:
            headers[INJECT_HEADER] = str(mark)
            if sandboxed():
                self._sandbox_marks.add(str(mark))
        props["headers"] = headers
        if not props.get("content_type") and event.datacontenttype:
            props["content_type"] = event.datacontenttype
        props.setdefault("delivery_mode", 2)
        rabbit = self._rabbit()
        properties = outgoing_properties(props, login=rabbit.endpoint.username)
        # A channel of its own: a channel error (a reply_to the broker refuses, say) must
        # not close the consumer's channel.
        conn = self._conn
        owned = conn is None or conn.is_closed
        if owned:
            conn = await rabbit.connect(f"inject {self.name}")
        assert conn is not None
        try:
            channel = await conn.channel(publisher_confirms=True)
            try:
                await self._publish_injected(
                    await channel.get_underlay_channel(), exchange, routing_key, event.data,
                    properties,
                )
            finally:
                if not channel.is_closed:
                    await channel.close()
        finally:
            if owned:
                await conn.close()

    async def _publish_injected(
        self, raw: RawChannel, exchange: str, routing_key: str, body: bytes,
        properties: Basic.Properties,
    ) -> None:
        from aiormq.abc import DeliveredMessage

        try:
            result = await raw.basic_publish(
                body, exchange=exchange, routing_key=routing_key, properties=properties,
                mandatory=True, timeout=CONFIRM_SECONDS,
            )
        except Exception as exc:
            raise RabbitPublishError(
                f"Could not inject into {self.name!r}: publishing to exchange {exchange!r} "
                f"with routing key {routing_key!r} failed: {_describe(exc)}."
            ) from exc
        if isinstance(result, DeliveredMessage):
            raise RabbitPublishError(
                f"Could not inject into {self.name!r}: no queue is bound to exchange "
                f"{exchange!r} for routing key {routing_key!r}, so the broker returned the "
                "message. Check the event's transport exchange and routing_key."
            )

    # ------------------------------------------------------------------ console

    def samples(self) -> list[Sample]:
        rabbit: RabbitConnection | None = None
        with contextlib.suppress(Exception):
            rabbit = self._rabbit()
        endpoint = rabbit.endpoint if rabbit is not None else None
        source = source_of(
            endpoint.host if endpoint else "localhost",
            endpoint.port if endpoint else 5672,
            endpoint.virtual_host if endpoint else "/",
            self.config.queue,
        )
        return build_samples(self.name, self.config, self.artifact.handlers, source, type(self))


async def _shielded(coro: Any) -> None:
    """Run a clean-up to the end even when the surrounding task is being cancelled."""
    task = asyncio.ensure_future(coro)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await task
        raise


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "closed"
    text = str(exc) or "no detail"
    return f"{type(exc).__name__}: {text}"


def _topology_hint(exc: BaseException, cfg: ListenerConfig) -> str:
    from aiormq.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed

    if isinstance(exc, ChannelPreconditionFailed):
        return (
            "The broker already has it with other settings (durability, arguments, type); "
            "match them in the listener, or delete the old one."
        )
    if isinstance(exc, ChannelNotFoundEntity):
        if cfg.declare is None:
            return "declare=None uses an existing queue: create it, or give a `declare=`."
        return "An exchange a binding names does not exist: give the binding an exchange_type."
    return "Check the broker and the listener's settings."
