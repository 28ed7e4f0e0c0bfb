"""Authoring: `Listener`, a set of MQTT subscriptions with one handler.

    import iwb_mqtt as mqtt

    sensors = mqtt.Listener(
        connection="main", topics=["sensors/+/temp", "alerts/#"], qos=1,
        client_id="iwb-sensors", clean_session=False,        # a persistent session
        shared_group=None, dead_letter_topic="dead/{topic}",
    )

    @sensors.on_message
    async def record(reading: Reading, message: mqtt.Message) -> None: ...

A bad value raises `TriggerConfigError` when the module is imported, naming the field.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from iwb_mqtt.topics import check_filter, check_group, check_topic, example_topic, matches
from workbench.plugin import Artifact, HandlerFunc

__all__ = ["HANDLER_KEY", "Listener", "ListenerConfig"]

HANDLER_KEY = "message"
"""The handler key of a listener's one handler (`Event.handler` of its events)."""

NEVER_EXPIRES = 0xFFFFFFFF
"""The MQTT 5 session expiry interval that means "never"."""


class ListenerConfig(BaseModel):
    """The configuration of an MQTT listener (`mqtt.Listener(...)` keywords)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = Field(min_length=1)
    """The name of a `kind = "mqtt"` connection in connections.toml (broker address,
    credentials, protocol version, TLS)."""
    topics: list[str] = Field(min_length=1)
    """Topic filters to subscribe to; `+` matches one level, `#` (last) any number."""
    qos: Literal[0, 1, 2] = 1
    """The maximum QoS of the subscriptions. With 1 or 2 a message is acknowledged only
    once its outcome is known, so a crash before that leads to redelivery."""
    client_id: str | None = None
    """The client identifier of the listener's session. Required (and must be stable, and
    unique among the broker's clients) when `clean_session` is False."""
    clean_session: bool = True
    """True: the broker forgets the session when the listener disconnects (messages
    published meanwhile are lost to it). False: a persistent session — the subscriptions
    and the QoS 1/2 messages that arrive while the runtime is down are kept for it
    (MQTT 5: clean start off, with `session_expiry`)."""
    session_expiry: int = Field(default=86_400, ge=0, le=NEVER_EXPIRES)
    """MQTT 5, persistent sessions: seconds the broker keeps the session after the listener
    disconnects (4294967295: never). MQTT 3.1.1 has no expiry; the broker decides."""
    shared_group: str | None = None
    """Subscribe as a member of this shared-subscription group (`$share/<group>/<filter>`):
    the broker spreads the messages over the group's members, e.g. replicas of the
    project."""
    ignore_retained: bool = False
    """Skip retained messages, which the broker sends when a subscription is made (MQTT 5:
    asked of the broker with retain handling 2; MQTT 3.1.1: dropped on arrival)."""
    dead_letter_topic: str | None = None
    """Publish messages whose handling ended in `reject` (retries exhausted, payload that
    does not bind) to this topic, with the error, before acknowledging them; `{topic}` is
    replaced by the original topic. None: such messages are recorded and dropped."""
    max_inflight: int = Field(default=256, ge=1, le=65535)
    """Messages received and not yet settled; when reached, the listener stops reading
    from the socket (TCP backpressure). MQTT 5 also tells the broker (Receive Maximum)."""
    ack_order: Literal["received", "settled"] = "received"
    """`received` (the default): acknowledgements go out in the order the messages arrived,
    as the MQTT specification asks of a client (section 4.6), so a slow message holds back
    the acknowledgements (not the handling) of later ones. `settled`: each message is
    acknowledged as soon as its outcome is known, for brokers that accept acknowledgements
    out of order (Mosquitto does)."""

    @field_validator("topics")
    @classmethod
    def _check_topics(cls, topics: list[str]) -> list[str]:
        seen: set[str] = set()
        for topic_filter in topics:
            check_filter(topic_filter)
            if topic_filter in seen:
                raise ValueError(f"topic filter {topic_filter!r} is listed twice")
            seen.add(topic_filter)
        return topics

    @field_validator("shared_group")
    @classmethod
    def _check_group(cls, group: str | None) -> str | None:
        return None if group is None else check_group(group)

    @field_validator("dead_letter_topic")
    @classmethod
    def _check_dead_letter(cls, topic: str | None) -> str | None:
        if topic is not None:
            check_topic(topic.replace("{topic}", "example"))
        return topic

    @model_validator(mode="after")
    def _check(self) -> ListenerConfig:
        if not self.clean_session and not self.client_id:
            raise ValueError(
                "clean_session=False (a persistent session) needs a stable client_id= "
                "naming the session, unique among the broker's clients"
            )
        if self.dead_letter_topic is not None and any(
            _could_loop(f, self.dead_letter_topic) for f in self.topics
        ):
            raise ValueError(
                f"dead_letter_topic={self.dead_letter_topic!r} is matched by the listener's "
                "own topics, so dead letters would come back to it; pick a topic outside "
                f"{self.topics!r}"
            )
        return self


def _could_loop(topic_filter: str, dead_letter_topic: str) -> bool:
    probe = dead_letter_topic.replace("{topic}", example_topic(topic_filter))
    return matches(topic_filter, probe)


class Listener(Artifact[ListenerConfig]):
    """Subscribe to MQTT topics; each message is one event for the `on_message` handler.

    Keywords: the fields of `ListenerConfig`, plus the artifact policies (`timeout`,
    `retries`, `concurrency`, `policy`).
    """

    kind: ClassVar[str] = "mqtt"
    config_model: ClassVar[type[BaseModel]] = ListenerConfig

    def on_message(self, func: HandlerFunc) -> HandlerFunc:
        """Register the handler of every message of the subscriptions (decorator).

        The handler's parameters are bound by type: a pydantic model (or dict, list, ...)
        receives the JSON payload, `mqtt.Message` the message with its topic, QoS, retain
        flag and MQTT 5 properties, `Event` the event.
        """
        return self.add_handler(HANDLER_KEY, func)

    def address(self) -> str:
        cfg = self.config
        group = f" (shared group {cfg.shared_group})" if cfg.shared_group else ""
        return f"mqtt {', '.join(cfg.topics)}{group}"
