"""One RabbitMQ broker for the whole test session.

`IWB_TEST_RABBITMQ=amqp://user:pass@host:port/` names an existing broker instead (tests that
restart the broker are then skipped). Otherwise a private node is started in a temporary
directory on loopback ports of its own — plain AMQP, and AMQPS with a throwaway CA when
openssl is present — (installing the Debian package when it is missing and the tests run as
root), and stopped at the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from rabbit_node import RabbitNode, ensure_installed, reachable
from rabbit_support import Broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    external = os.environ.get("IWB_TEST_RABBITMQ")
    if external:
        if not reachable(external):
            pytest.fail(f"IWB_TEST_RABBITMQ={external!r} does not answer")
        yield Broker(external, None)
        return
    missing = ensure_installed()
    if missing:
        pytest.skip(missing)
    node = RabbitNode(Path(tmp_path_factory.mktemp("rabbitmq")), tls=True)
    node.start()
    try:
        yield Broker(node.url, node)
    finally:
        node.stop()
