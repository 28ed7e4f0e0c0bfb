"""Errors of the Kafka plugin.

    WorkbenchError
    └── KafkaError                  base of this plugin's errors
        ├── KafkaConnectionLostError  the cluster stopped answering while consuming
        ├── KafkaPublishError       a record could not be produced (publish, inject,
        │                           dead letter)
        └── DevBrokerError          the development broker could not be started
"""

from __future__ import annotations

from workbench.errors import WorkbenchError

__all__ = [
    "DevBrokerError",
    "KafkaConnectionLostError",
    "KafkaError",
    "KafkaPublishError",
    "describe",
]


def describe(exc: BaseException) -> str:
    """`Type: message` of a client error, without repeating the type (aiokafka's errors
    already start with it), or the type alone when there is no message."""
    name = type(exc).__name__
    text = str(exc)
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


class KafkaError(WorkbenchError):
    """Base of the Kafka plugin's errors."""

    title = "Kafka error"


class KafkaConnectionLostError(KafkaError):
    """The cluster stopped answering while a listener consumed from it."""

    title = "Kafka connection lost"


class KafkaPublishError(KafkaError):
    """A record could not be produced."""

    title = "Kafka publish failed"


class DevBrokerError(KafkaError):
    """The development broker (`dev_broker = true`) could not be started."""

    title = "Kafka development broker"
