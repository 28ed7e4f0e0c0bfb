"""One Mosquitto broker for the whole test session (plus private ones for restart tests).

`IWB_TEST_MQTT=host:port` names an existing broker instead; tests that stop and start a
broker then still start a private one (they need mosquitto installed, and are skipped
without it). Otherwise the Debian package is installed when missing (as root), and a broker
runs in a temporary directory on a loopback port of its own until the session ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mqtt_support import Endpoint, Mosquitto, ensure_installed
from procs import port_open


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    external = os.environ.get("IWB_TEST_MQTT")
    if external:
        host, _, port = external.rpartition(":")
        if not port_open(host or "127.0.0.1", int(port)):
            pytest.fail(f"IWB_TEST_MQTT={external!r} does not answer")
        yield Endpoint(host or "127.0.0.1", int(port))
        return
    missing = ensure_installed()
    if missing:
        pytest.skip(missing)
    broker = Mosquitto(Path(tmp_path_factory.mktemp("mosquitto")), tls=True)
    broker.start()
    try:
        yield Endpoint(broker.host, broker.port, broker)
    finally:
        broker.stop()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Start a broker of the test's own (for tests that stop and start it, or that need
    `users=` with passwords)."""
    brokers: list[Mosquitto] = []

    def start(users: dict[str, str] | None = None) -> Mosquitto:
        missing = ensure_installed()
        if missing:
            pytest.skip(missing)
        broker = Mosquitto(tmp_path / f"mosquitto{len(brokers)}", users=users)
        broker.start()
        brokers.append(broker)
        return broker

    yield start
    for broker in brokers:
        broker.stop()
