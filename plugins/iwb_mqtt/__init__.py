"""MQTT for iwb: the `mqtt` trigger kind (aiomqtt) and the `mqtt` connection kind.

    import iwb_mqtt as mqtt

    sensors = mqtt.Listener(
        connection="main", topics=["sensors/+/temp", "alerts/#"], qos=1,
        client_id="iwb-sensors", clean_session=False, shared_group=None,
    )

    @sensors.on_message
    async def record(reading: Reading, message: mqtt.Message) -> None: ...

connections.toml:

    [main]
    kind = "mqtt"
    host = "127.0.0.1"
    port = 1883
    protocol = "5"          # or "3.1.1" (the default)

What it guarantees:

- QoS 1 and 2 messages are acknowledged only once their outcome is known (`session`); with
  a persistent session (`clean_session=False` and a stable `client_id`) a message whose
  handling was cut short — `kill -9`, a dropped connection, a broker restart — is delivered
  again: at least once. Duplicates are possible (a message handled, the process killed
  before the acknowledgement left); `Message.dup` marks a redelivery.
- Messages of one topic are handled in arrival order; different topics at once
  (`workbench.lanes`, one lane per topic).
- Messages published while the runtime is down are kept by the broker for a persistent
  session — within its limits: Mosquitto keeps at most `max_queued_messages` (default
  1000) per session; set it to 0 (no limit) or high enough in mosquitto.conf.
- Failed and unbindable messages go to `dead_letter_topic` with the error (or are dropped),
  recorded either way; the listener keeps going.
- A lost connection ends `serve()`; the runtime shows `disconnected-retrying` and
  reconnects with backoff, resuming the session and subscribing again.
- Shared subscriptions (`shared_group`) spread messages over replicas. Measured with
  Mosquitto 2.0: the broker keeps handing a share of new messages to a member whose
  persistent session is offline (and keeps the messages it had not acknowledged), so a
  replica that was killed must come back with the same `client_id` to receive them; the
  other members do not take them over. With clean sessions a departed member stops
  receiving at once, and what it had not acknowledged is lost.

Throughput (`scripts/bench-mqtt`: a publisher sends 10,000 small JSON messages as fast as
aiomqtt can while the consumer takes them in; two cores shared with other work, so figures
move from run to run; medians of 5 rounds):

| QoS | raw aiomqtt loop | iwb, capture on     | CPU per message: raw / iwb (of it capture) |
| --- | ---------------- | ------------------- | ------------------------------------------ |
| 0   | 7,900 msg/s      | 8,540 (0.98 of raw) | 45 µs / 90 µs (22 µs)                      |
| 1   | 4,350 msg/s      | 5,515 (1.27 of raw) | 84 µs / 130 µs (16 µs)                     |

The publisher sets the pace for both, and the listener keeps up with it; the CPU column is
what the runtime costs (event, lanes, dispatch, binding, metrics, capture) over a bare loop.
When other processes load the machine, both rates drop and the ratio scatters (a run under
a load average near 4 gave 0.78 for QoS 0 and 0.98 for QoS 1).

Modules: `listener` (authoring: `Listener`), `message` (`Message`, transport fields, MQTT 5
properties, event building), `topics` (filters, matching, shared names), `session`
(acknowledgement after the outcome, backpressure), `connection` (`MqttConnection`,
`MqttClient.publish`), `trigger` (`MqttTrigger`: serve, dead letters, inject, samples),
`errors`.

This package imports neither aiomqtt nor paho-mqtt at import time; they are imported when
a listener starts, a connection publishes or checks its health. It never imports the
runtime or the TUI.
"""

from __future__ import annotations

from iwb_mqtt.connection import MqttClient, MqttConnection, MqttConnectionConfig
from iwb_mqtt.errors import (
    MqttConnectError,
    MqttDisconnectedError,
    MqttError,
    MqttPublishError,
    MqttSubscribeError,
)
from iwb_mqtt.listener import Listener, ListenerConfig
from iwb_mqtt.message import Message, MqttProperties, MqttTransport
from iwb_mqtt.topics import matches
from iwb_mqtt.trigger import MqttTrigger

__all__ = [
    "Listener",
    "ListenerConfig",
    "Message",
    "MqttClient",
    "MqttConnectError",
    "MqttConnection",
    "MqttConnectionConfig",
    "MqttDisconnectedError",
    "MqttError",
    "MqttProperties",
    "MqttPublishError",
    "MqttSubscribeError",
    "MqttTransport",
    "MqttTrigger",
    "matches",
]
