"""Payments arrive on Kafka; each one is turned into an invoice with the data mapping
mappings/order_to_invoice.toml (a record whose order is unknown goes to payments.dlq)."""

from __future__ import annotations

import iwb_kafka as kafka
from workbench.config import configurable
from workbench.mapper import mapping

from project.functions.store import find_order
from project.types.events import Payment
from project.types.orders import Order

to_invoice = mapping("order_to_invoice")

payments = kafka.Listener(
    connection="events", topics=["payments"], group_id="billing",
    offset_reset="earliest", dead_letter_topic="payments.dlq", retries=1,
    enabled=configurable("enabled", bool, default=True),
)


@payments.on_record
async def settle(payment: Payment, record: kafka.Record) -> dict:
    order = find_order(payment.order_id)
    if order is None:
        raise LookupError(f"payment for unknown order {payment.order_id!r}")
    invoice = to_invoice(Order.model_validate(order))
    return {"invoice": invoice.model_dump(), "paid": payment.amount,
            "offset": record.offset}
