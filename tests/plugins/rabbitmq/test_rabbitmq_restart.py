"""The broker goes away and comes back: listeners report it, reconnect, restore their
topology and lose nothing; a listener on a queue that does not exist yet waits for it."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from rabbit_support import Broker, Outcomes, declare, listener_project, publish, unique, wait_for

import iwb_rabbitmq as rabbitmq
from workbench.runtime import Runtime

pytestmark = pytest.mark.broker

ProjectFactory = Callable[[dict[str, str]], Path]

LISTENER = """
    import asyncio

    import iwb_rabbitmq as rabbitmq

    stream = rabbitmq.Listener(
        connection="main", queue="{queue}", prefetch=10,
        bindings=[rabbitmq.Binding(exchange="{exchange}", routing_key="#",
                                   exchange_type="topic")],
    )


    @stream.on_message
    async def handle(data: dict) -> int:
        await asyncio.sleep(0.01)
        return data["id"]
"""


async def test_broker_restart_mid_stream_reconnects_and_loses_nothing(
    broker: Broker, make_project: ProjectFactory, started: list[object],
) -> None:
    node = broker.restartable()
    queue, exchange = unique("stream"), unique("events")
    root = listener_project(
        make_project, broker.url,
        {"stream": LISTENER.format(queue=queue, exchange=exchange)},
    )
    runtime = Runtime(root)
    started.append(runtime)
    seen = Outcomes("stream")
    runtime.bus.subscribe(seen)
    await runtime.start()
    await runtime.wait_ready(20)
    total = 4000
    await publish(broker.url, [json.dumps({"id": i}).encode() for i in range(total)],
                  exchange=exchange, routing_key="order.created")
    client = runtime.connections["main"].client
    assert isinstance(client, rabbitmq.RabbitClient)
    await client.publish(exchange, "warm.up", {"id": -1})  # opens the publisher connection

    await wait_for(lambda: len(seen.ok) >= 300, 20, "300 messages handled")
    restart = asyncio.create_task(asyncio.to_thread(node.restart))
    await wait_for(
        lambda: "disconnected-retrying" in seen.statuses, 30, "the listener reported the loss"
    )
    assert not restart.done(), "the status changed while the broker was down"
    handled_while_up = len(seen.ok)
    await restart
    await wait_for(lambda: runtime.artifacts["stream"].status == "listening", 60,
                   "the listener reconnected")
    # the publisher connection comes back on its own, and the binding was declared again
    await client.publish(exchange, "order.late", {"id": total})
    expected = {-1, *range(total + 1)}
    await wait_for(lambda: expected <= {o.result for _, o in seen.ok}, 60,
                   "every message handled after the restart")

    counts = Counter(o.result for _, o in seen.ok)
    duplicates = sum(n - 1 for n in counts.values())
    print(f"\nbroker restart: {len(seen.ok)} handled for {len(expected)} messages "
          f"({handled_while_up} before the restart), {duplicates} duplicate(s)")
    assert set(counts) == expected, "nothing lost"
    assert duplicates <= 10, "at most the prefetch window is delivered twice"
    assert seen.statuses[-1] == "listening"
    errors = [o for _, o in seen.seen if o.status != "ok"]
    assert errors == []


async def test_a_listener_on_a_missing_queue_waits_for_it(
    broker: Broker, make_project: ProjectFactory, started: list[object],
) -> None:
    queue = unique("later")
    root = listener_project(make_project, broker.url, {"later": f"""
        import iwb_rabbitmq as rabbitmq

        later = rabbitmq.Listener(connection="main", queue="{queue}", declare=None)


        @later.on_message
        async def handle(data: dict) -> dict:
            return data
    """})
    runtime = Runtime(root)
    started.append(runtime)
    seen = Outcomes("later")
    runtime.bus.subscribe(seen)
    await runtime.start()
    state = runtime.artifacts["later"]
    await wait_for(lambda: state.status == "disconnected-retrying", 10, "the error is shown")
    assert state.error is not None
    assert f"looking up queue {queue!r} (declare=None) failed" in state.error
    assert "create it, or give a `declare=`" in state.error
    await declare(broker.url, queue)
    await runtime.wait_ready(30)
    await publish(broker.url, [b'{"id": 1}'], routing_key=queue)
    await wait_for(lambda: len(seen.ok) == 1, 10, "handled once the queue exists")
