"""The sample project with its broker listeners on: Kafka through the development broker
its connection starts, RabbitMQ and MQTT with no broker at all."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from testkit import free_port

from workbench.events import Event
from workbench.runtime.runtime import Runtime


async def until(condition: object, timeout: float, what: str) -> None:
    ends = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > ends:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)


@pytest.mark.broker
async def test_sample_opens_without_brokers_and_pays_through_the_dev_broker(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = free_port()
    monkeypatch.setenv("IWB_ORDERS_API__PORT", str(free_port()))
    monkeypatch.setenv("IWB_PAYMENTS__ENABLED", "true")
    monkeypatch.setenv("IWB_PAYMENTS__DEV_BROKER", "true")
    monkeypatch.setenv("IWB_PAYMENTS__KAFKA", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("IWB_SHIPPING__ENABLED", "true")
    monkeypatch.setenv("IWB_SHIPPING__AMQP_URL", f"amqp://guest:guest@127.0.0.1:{closed}/%2F")
    monkeypatch.setenv("IWB_SENSORS__ENABLED", "true")
    monkeypatch.setenv("IWB_SENSORS__MQTT_PORT", str(closed))
    rt = Runtime(sample_copy)
    await rt.start()
    try:
        arts = rt.artifacts
        await until(
            lambda: arts["shipments"].status == arts["temperatures"].status
            == "disconnected-retrying",
            20, "RabbitMQ and MQTT listeners retrying",
        )
        # direct inject works while the broker is away
        sample = rt.samples("shipments")[0].event
        shipped = await rt.inject("shipments", sample)
        assert shipped.ok and shipped.result["status"].startswith("shipped with")
        reading = Event(artifact="", kind="mqtt", type="iwb.mqtt.message", source="t",
                        data=b'{"celsius": 9.5}', datacontenttype="application/json",
                        handler="message",
                        transport={"topic": "warehouse/cold-2/temperature", "qos": 1})
        alarm = await rt.inject("temperatures", reading)
        assert alarm.result == {"room": "cold-2", "celsius": 9.5, "alarm": True}

        # Kafka: the connection started a development broker; a payment for a placed
        # order goes through it and becomes an invoice by the data mapping
        await asyncio.wait_for(arts["payments"].listening.wait(), 60)
        placed = await rt.inject("orders", Event.from_cloudevent(
            json.loads((sample_copy / "events/new-order.json").read_text())))
        order_id = placed.result["order_id"]
        payment = rt.samples("payments")[0].event
        payment.data = json.dumps({"order_id": order_id, "amount": 21.0}).encode()
        paid = await rt.inject("payments", payment, via="transport", timeout=60)
        assert paid.ok, paid.error
        invoice = paid.result["invoice"]
        assert invoice["customer"] == "ada@example.com" and invoice["total"] == 21.0
        assert [line["sku"] for line in invoice["lines"]] == ["MUG-07", "TEA-01"]
        # the payment read again from the partition runs the same way
        await rt.capture.flush()
        where = rt.capture.get(paid.event_id).event.transport
        again = await rt.replay_log(
            "payments", f"{where['topic']}/{where['partition']}@{where['offset']}", 1
        )
        assert [(r.capture_id, r.same) for r in again] == [(paid.event_id, True)]
        unknown = payment.copy(data=b'{"order_id": "nope", "amount": 1.0}')
        failed = await rt.inject("payments", unknown, via="transport", timeout=60)
        assert failed.status == "error" and failed.error is not None
        assert failed.error.type == "LookupError" and failed.disposition == "reject"
    finally:
        await rt.stop(2)
