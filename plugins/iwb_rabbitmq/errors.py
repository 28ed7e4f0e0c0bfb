"""Errors of the RabbitMQ plugin.

    WorkbenchError
    └── RabbitError                 anything the RabbitMQ plugin reports
        ├── RabbitConnectError      the broker could not be reached or refused the login
        ├── RabbitConnectionLostError
        │                           a listener's connection or channel closed while serving
        ├── RabbitTopologyError     a queue, exchange or binding could not be declared or found
        └── RabbitPublishError      the broker did not confirm a message, or returned it
"""

from __future__ import annotations

from workbench.errors import WorkbenchError

__all__ = [
    "RabbitConnectError",
    "RabbitConnectionLostError",
    "RabbitError",
    "RabbitPublishError",
    "RabbitTopologyError",
]


class RabbitError(WorkbenchError):
    """Anything the RabbitMQ plugin reports."""

    title = "RabbitMQ error"


class RabbitConnectError(RabbitError):
    """The broker could not be reached, or refused the login or virtual host."""

    title = "Cannot connect to RabbitMQ"


class RabbitConnectionLostError(RabbitError):
    """A listener's connection or channel closed while it was serving; the runtime starts
    the listener again with backoff, which reconnects and declares the topology again."""

    title = "RabbitMQ connection lost"


class RabbitTopologyError(RabbitError):
    """A queue, exchange or binding could not be declared, or does not exist."""

    title = "RabbitMQ topology error"


class RabbitPublishError(RabbitError):
    """The broker did not confirm a published message, or returned it as unroutable."""

    title = "RabbitMQ publish failed"
