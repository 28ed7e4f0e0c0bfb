"""Errors of the MQTT plugin.

    WorkbenchError
    └── MqttError                 anything the MQTT plugin reports
        ├── MqttConnectError      the broker could not be reached or refused the connection
        ├── MqttDisconnectedError the connection dropped while serving (the runtime retries)
        ├── MqttSubscribeError    the broker refused a subscription
        └── MqttPublishError      a publish could not be sent or was not confirmed

Each message names the broker (`host:port`), the bad value and what to do next.
"""

from __future__ import annotations

from workbench.errors import WorkbenchError

__all__ = [
    "MqttConnectError",
    "MqttDisconnectedError",
    "MqttError",
    "MqttPublishError",
    "MqttSubscribeError",
]


class MqttError(WorkbenchError):
    """Base of the MQTT plugin's errors."""

    title = "MQTT error"


class MqttConnectError(MqttError):
    """The broker could not be reached, or it refused the connection (CONNACK)."""

    title = "MQTT connection failed"


class MqttDisconnectedError(MqttError):
    """The connection to the broker dropped while a listener was serving."""

    title = "MQTT connection lost"


class MqttSubscribeError(MqttError):
    """The broker refused one of the listener's subscriptions (SUBACK failure)."""

    title = "MQTT subscription refused"


class MqttPublishError(MqttError):
    """A message could not be published, or the broker did not confirm it in time."""

    title = "MQTT publish failed"
