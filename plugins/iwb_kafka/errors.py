"""Errors of the Kafka plugin.

    WorkbenchError
    └── KafkaError                  base of this plugin's errors
        ├── KafkaConnectionLostError  the cluster stopped answering while consuming
        ├── KafkaPublishError       a record could not be produced (publish, inject,
        │                           dead letter)
        ├── RereadError             records could not be read again from a partition
        └── DevBrokerError          the development broker could not be started
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

from workbench.errors import WorkbenchError

__all__ = [
    "BootstrapCause",
    "DevBrokerError",
    "KafkaConnectionLostError",
    "KafkaError",
    "KafkaPublishError",
    "RereadError",
    "describe",
]

_UNABLE = re.compile(r'^Unable connect to "[^"]*": ')


def describe(exc: BaseException) -> str:
    """`Type: message` of a client error, without repeating the type (aiokafka's errors
    already start with it), or the type alone when there is no message."""
    name = type(exc).__name__
    text = str(exc)
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


class BootstrapCause(logging.Handler):
    """Why a client could not bootstrap. aiokafka logs the cause of each failed connection
    (a certificate the CA did not sign, refused SASL credentials, ...) and then raises a
    bare "Unable to bootstrap"; this handler keeps the last cause it logged.

        with BootstrapCause.watch() as cause:
            await consumer.start()          # raises KafkaConnectionError
        ... describe(exc, cause.text)
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.text: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if _UNABLE.match(message):
            self.text = _UNABLE.sub("", message, count=1)

    @classmethod
    @contextlib.contextmanager
    def watch(cls) -> Iterator[BootstrapCause]:
        handler = cls()
        logger = logging.getLogger("aiokafka")
        logger.addHandler(handler)
        try:
            yield handler
        finally:
            logger.removeHandler(handler)

    def explain(self, exc: BaseException) -> str:
        """`describe(exc)`, with the logged cause when there is one."""
        text = describe(exc)
        if self.text and "bootstrap" in text.lower():
            return f"{text} ({self.text})"
        return text


class KafkaError(WorkbenchError):
    """Base of the Kafka plugin's errors."""

    title = "Kafka error"


class KafkaConnectionLostError(KafkaError):
    """The cluster stopped answering while a listener consumed from it."""

    title = "Kafka connection lost"


class KafkaPublishError(KafkaError):
    """A record could not be produced."""

    title = "Kafka publish failed"


class RereadError(KafkaError):
    """Records could not be read again from a partition (a bad position, a topic the
    listener does not consume, a cluster out of reach)."""

    title = "Re-read failed"


class DevBrokerError(KafkaError):
    """The development broker (`dev_broker = true`) could not be started."""

    title = "Kafka development broker"
