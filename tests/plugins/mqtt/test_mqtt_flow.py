"""Flow control against a real Mosquitto, on asyncio's loop and on uvloop (which `iwb run`
uses): a QoS 0 flood never fills memory past `max_inflight`; acknowledgements leave in
arrival order or as settled; Mosquitto accepts them out of order."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop
from mqtt_support import Endpoint, async_wait_for, client, publish_many

from iwb_mqtt.trigger import MqttTrigger
from workbench.runtime import Runtime
from workbench.runtime.bus import EventHandled

pytestmark = pytest.mark.broker


LOOPS = ["asyncio", "uvloop"]


def run(loop: str, scenario: Coroutine[Any, Any, None]) -> None:
    """Run a scenario on a fresh loop of the given kind (pytest-asyncio's is asyncio's)."""
    (uvloop.run if loop == "uvloop" else asyncio.run)(scenario)


LISTENER = """
    import asyncio
    import iwb_mqtt as mqtt

    flood = mqtt.Listener(connection="main", topics=["{root}/+"], {options})

    @flood.on_message
    async def handle(data: dict, message: mqtt.Message) -> int:
        if message.topic.endswith("/slow"):
            await asyncio.sleep(1.0)
        else:
            await asyncio.sleep({delay})
        return data["n"]
"""


async def run_project(make_project: Callable[[dict[str, str]], Path], endpoint: Endpoint,
                      root: str, options: str, delay: float = 0.0,
                      protocol: str = "3.1.1") -> tuple[Runtime, list[Any]]:
    project = make_project({
        "connections.toml": endpoint.connections_toml(protocol=protocol),
        "artifacts/flood.py": LISTENER.replace("{root}", root).replace("{options}", options)
        .replace("{delay}", str(delay)),
    })
    runtime = Runtime(project, capture=False)
    handled: list[Any] = []
    runtime.bus.subscribe(
        lambda m: handled.append(m.outcome) if isinstance(m, EventHandled) else None
    )
    await runtime.start()
    await runtime.wait_ready(15)
    return runtime, handled


def trigger_of(runtime: Runtime) -> MqttTrigger:
    trigger = runtime.artifacts["flood"].trigger
    assert isinstance(trigger, MqttTrigger)
    return trigger


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("qos", [0, 1])
def test_a_flood_pauses_reading_instead_of_filling_memory(
    mqtt_broker: Endpoint, make_project: Callable[[dict[str, str]], Path], qos: int, loop: str
) -> None:
    run(loop, flood(mqtt_broker, make_project, qos))


async def flood(mqtt_broker: Endpoint, make_project: Callable[[dict[str, str]], Path],
                qos: int) -> None:
    root = f"flood-{uuid.uuid4().hex[:8]}"
    runtime, handled = await run_project(
        make_project, mqtt_broker, root, f"qos={qos}, max_inflight=8", delay=0.002,
        protocol="5")
    try:
        total = 600
        await publish_many(
            mqtt_broker, ((f"{root}/{n % 3}", json.dumps({"n": n}).encode())
                          for n in range(total)), qos=qos)
        await async_wait_for(lambda: len(handled) >= total, 60, f"{total} handled")
        inbound = trigger_of(runtime)._inbound
        assert inbound is not None
        assert sorted(o.result for o in handled) == list(range(total))
        # the buffer never held more than max_inflight messages: reading paused instead
        assert 1 <= inbound.max_buffered <= 8, inbound.max_buffered
        assert inbound.unacked == 0
    finally:
        await runtime.stop(2)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("ack_order", ["received", "settled"])
def test_acknowledgements_wait_for_earlier_messages_unless_settled_order(
    mqtt_broker: Endpoint, make_project: Callable[[dict[str, str]], Path], ack_order: str,
    loop: str,
) -> None:
    run(loop, ack_orders(mqtt_broker, make_project, ack_order))


async def ack_orders(mqtt_broker: Endpoint, make_project: Callable[[dict[str, str]], Path],
                     ack_order: str) -> None:
    root = f"ackorder-{uuid.uuid4().hex[:8]}"
    runtime, handled = await run_project(
        make_project, mqtt_broker, root, f'qos=1, ack_order="{ack_order}"')
    try:
        sent = [(f"{root}/slow", b'{"n": 0}')]
        sent += [(f"{root}/fast", json.dumps({"n": n}).encode()) for n in range(1, 11)]
        await publish_many(mqtt_broker, sent, qos=1)
        await async_wait_for(lambda: len(handled) >= 10, 10, "the fast topic handled")
        inbound = trigger_of(runtime)._inbound
        assert inbound is not None
        assert [o.result for o in handled] == list(range(1, 11))  # the slow one still runs
        if ack_order == "received":
            assert inbound.acked == 0 and inbound.unacked == 11
        else:
            assert inbound.acked == 10 and inbound.unacked == 1
        await async_wait_for(lambda: len(handled) == 11, 10, "the slow one handled")
        await async_wait_for(lambda: inbound.unacked == 0, 5, "everything acknowledged")
        assert inbound.acked == 11
    finally:
        await runtime.stop(2)


async def test_mosquitto_accepts_acknowledgements_out_of_order(mqtt_broker: Endpoint) -> None:
    """The reason `ack_order="settled"` is safe on Mosquitto: PUBACKs sent in reverse
    order are all taken; the resumed session delivers nothing again."""
    root = f"reverse-{uuid.uuid4().hex[:8]}"
    session = f"iwb-{root}"
    async with client(mqtt_broker, identifier=session, clean_session=False) as sub:
        await sub.subscribe(f"{root}/#", qos=1)
    await publish_many(mqtt_broker, [(f"{root}/{n % 2}", b"%d" % n) for n in range(6)], qos=1)
    sub = client(mqtt_broker, identifier=session, clean_session=False)
    paho: Any = sub._client
    held: list[int] = []
    send_puback = paho._send_puback

    def hold(mid: int) -> int:
        held.append(mid)
        return 0

    paho._send_puback = hold
    async with sub:
        got = []
        async with asyncio.timeout(10):
            async for message in sub.messages:
                got.append(message.payload)
                if len(got) == 6:
                    break
        assert got == [b"%d" % n for n in range(6)] and len(held) == 6
        for mid in reversed(held):
            send_puback(mid)
        await asyncio.sleep(0.2)  # the acknowledgements reach the broker
    again = client(mqtt_broker, identifier=session, clean_session=False)
    redelivered: list[bytes] = []
    async with again:
        await publish_many(mqtt_broker, [(f"{root}/end", b"end")], qos=1)
        async with asyncio.timeout(10):
            async for message in again.messages:
                redelivered.append(message.payload)
                if message.payload == b"end":
                    break
    assert redelivered == [b"end"]
    async with client(mqtt_broker, identifier=session, clean_session=True):
        pass  # drop the session
