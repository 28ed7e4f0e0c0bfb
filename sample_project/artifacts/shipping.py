"""Shipment notices from the warehouse arrive on a RabbitMQ queue."""

from __future__ import annotations

import iwb_rabbitmq as rabbitmq
from workbench.config import configurable

from project.types.events import Shipment

shipments = rabbitmq.Listener(
    connection="rabbit", queue="shipments", declare=rabbitmq.Queue(durable=True),
    prefetch=16, max_redeliveries=3, dead_letter_exchange="shipments.dlx",
    enabled=configurable("enabled", bool, default=True),
)


@shipments.on_message
async def shipped(shipment: Shipment) -> dict:
    return {"order_id": shipment.order_id, "status": f"shipped with {shipment.carrier}"}
