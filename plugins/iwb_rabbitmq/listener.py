"""Authoring: `Listener`, with the `Queue` and `Binding` it declares.

    import iwb_rabbitmq as rabbitmq

    orders = rabbitmq.Listener(
        connection="main", queue="orders",
        declare=rabbitmq.Queue(durable=True),        # None: the queue must already exist
        bindings=[rabbitmq.Binding(exchange="shop", routing_key="order.*",
                                   exchange_type="topic")],
        prefetch=32, max_redeliveries=3, dead_letter_exchange="shop.dlx",
    )

    @orders.on_message
    async def bill(order: Order, message: rabbitmq.Message) -> Receipt | None: ...

A bad value raises `TriggerConfigError` when the module is imported, naming the field.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.plugin import Artifact, HandlerFunc

__all__ = ["HANDLER_KEY", "Binding", "ExchangeType", "Listener", "ListenerConfig", "Queue"]

HANDLER_KEY = "message"
"""The handler key of a listener's one handler (`Event.handler` of its events)."""

ExchangeType = Literal["direct", "fanout", "topic", "headers"]


class Queue(BaseModel):
    """How the listener declares its queue (`declare=rabbitmq.Queue(...)`).

    Declaring is idempotent: an existing queue with the same settings is used as it is; one
    with different settings makes the broker refuse the declaration (PRECONDITION_FAILED),
    reported on the listener.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    durable: bool = True
    """The queue survives a broker restart (its persistent messages too)."""
    exclusive: bool = False
    """Only this connection may use the queue; it is deleted when the connection closes."""
    auto_delete: bool = False
    """The broker deletes the queue when its last consumer goes away."""
    arguments: dict[str, Any] = Field(default_factory=dict)
    """Optional queue arguments, e.g. `{"x-queue-type": "quorum"}`,
    `{"x-message-ttl": 60000}`, `{"x-dead-letter-exchange": "shop.dlx"}`."""


class Binding(BaseModel):
    """A binding of the listener's queue to an exchange.

    With `exchange_type` set the exchange is declared (idempotently) with that type; without
    it, the exchange must already exist.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    exchange: str = Field(min_length=1)
    """The exchange to bind to (the default exchange `""` cannot be bound)."""
    routing_key: str = ""
    """The binding key: a routing key for direct exchanges, a pattern (`order.*`,
    `order.#`) for topic exchanges; ignored by fanout exchanges."""
    exchange_type: ExchangeType | None = None
    """Declare the exchange with this type; None to use an existing exchange."""
    durable: bool = True
    """Durability of the exchange, when it is declared."""
    arguments: dict[str, Any] = Field(default_factory=dict)
    """Binding arguments (for headers exchanges: `{"x-match": "all", "region": "eu"}`)."""


class ListenerConfig(BaseModel):
    """The configuration of a RabbitMQ listener (`rabbitmq.Listener(...)` keywords)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = Field(min_length=1)
    """The name of a `kind = "rabbitmq"` connection in connections.toml."""
    queue: str = Field(min_length=1)
    """The queue to consume."""
    declare: Queue | None = Field(default_factory=Queue)
    """Declare the queue with these settings (the default: a durable queue), or None to
    consume an existing queue (a missing one is reported, not created)."""
    bindings: list[Binding] = Field(default_factory=list)
    """Bindings of the queue, made on every (re)connect."""
    prefetch: int = Field(default=32, ge=1, le=65535)
    """How many unacknowledged messages the broker may send ahead (basic.qos)."""
    ordered: bool = False
    """Handle one message at a time, in delivery order (a failed message is put back at the
    end of the queue, so it comes later). When false (the default), up to `prefetch`
    messages are handled at once (within the artifact's `concurrency` policy)."""
    max_redeliveries: int = Field(default=3, ge=0)
    """How many times a message whose handler failed (after the artifact's in-process
    retries) is put back on the queue before it is dead-lettered."""
    dead_letter_exchange: str | None = None
    """Where failed and unbindable messages go, with the error in their headers. None: they
    are rejected without requeue (the queue's own `x-dead-letter-exchange`, if it has one,
    then applies; otherwise the broker drops them)."""
    dead_letter_routing_key: str | None = None
    """Routing key of dead letters; by default the message's original routing key."""
    dead_letter_queue: str | None = None
    """Also declare this durable queue and bind it to the dead-letter exchange (every
    routing key), so dead letters are kept until someone looks at them."""

    @model_validator(mode="after")
    def _check(self) -> ListenerConfig:
        if self.dead_letter_queue is not None and not self.dead_letter_exchange:
            raise ValueError(
                f"dead_letter_queue={self.dead_letter_queue!r} needs a dead_letter_exchange "
                "to bind it to"
            )
        if self.dead_letter_exchange == "":
            raise ValueError(
                "dead_letter_exchange='' (the default exchange) cannot take dead letters; "
                "name an exchange or leave it out"
            )
        if self.declare is not None and self.queue.startswith("amq."):
            raise ValueError(
                f"queue={self.queue!r}: names starting with 'amq.' are reserved by the "
                "broker and cannot be declared; pick another name or set declare=None"
            )
        return self


class Listener(Artifact[ListenerConfig]):
    """Consume a RabbitMQ queue; each message is one event for the `on_message` handler.

    Keywords: the fields of `ListenerConfig`, plus the artifact policies (`timeout`,
    `retries`, `concurrency`, `policy`).
    """

    kind: ClassVar[str] = "rabbitmq"
    config_model: ClassVar[type[BaseModel]] = ListenerConfig

    def on_message(self, func: HandlerFunc) -> HandlerFunc:
        """Register the handler of every message of the queue (decorator).

        The handler's parameters are bound by type: a pydantic model (or dict, list, ...)
        receives the JSON body, `rabbitmq.Message` the delivery and its properties,
        `Event` the event. Its return value is the reply when the message has `reply_to`.
        """
        return self.add_handler(HANDLER_KEY, func)

    def address(self) -> str:
        return f"queue {self.config.queue}"
