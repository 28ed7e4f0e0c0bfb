"""The orders API: create, read and list orders over HTTP.

    curl -X POST localhost:8080/orders/ -H 'content-type: application/json' \
         -d '{"customer": "ada@example.com", "items": [{"sku": "TEA-01", "quantity": 2, "unit_price": 4.5}]}'
"""

from __future__ import annotations

import iwb_http as http
from workbench.config import configurable

from project.functions.pricing import order_total
from project.functions.store import all_orders, find_order, save_order
from project.types.orders import Order, Receipt

PORT = configurable("port", int, default=8080, description="Port of the orders and inventory APIs")
CURRENCY = configurable("currency", str, default="EUR")
MAX_ITEMS = configurable("max_items", int, default=50)

orders = http.Service(port=PORT, base_path="/orders", title="Orders API", timeout=5)


@orders.post("/", status=201, summary="Place an order")
async def create_order(order: Order) -> Receipt:
    if len(order.items) > MAX_ITEMS:
        raise http.HTTPError(422, f"at most {MAX_ITEMS} items per order")
    total = order_total(order)
    order_id = save_order(order.model_dump())
    return Receipt(
        order_id=order_id, customer=order.customer, total=total,
        currency=CURRENCY, items=len(order.items),
    )


@orders.get("/{order_id}", summary="Read one order")
async def get_order(order_id: str) -> dict:
    order = find_order(order_id)
    if order is None:
        raise http.HTTPError(404, f"no order {order_id!r}")
    return order


@orders.get("/", summary="List orders")
async def list_orders(limit: int = 20, customer: str | None = None) -> list[dict]:
    orders = [o for o in all_orders() if customer is None or o["customer"] == customer]
    return orders[-limit:]
