"""The HTTP benchmark's handler: a JSON order in, a small computed reply out.

The same handler is written for bare Quart (quart_orders.py), Starlette
(starlette_orders.py) and Node-RED (nodered/flows.json).
"""

from __future__ import annotations

from pydantic import BaseModel

import iwb_http as http
from workbench.config import configurable

PORT = configurable("port", int, default=8080)

api = http.Service(port=PORT)


class Order(BaseModel):
    name: str
    qty: int


@api.post("/")
async def place(order: Order) -> dict[str, object]:
    return {
        "name": order.name,
        "qty": order.qty,
        "total": round(order.qty * 4.5, 2),
        "greeting": f"Hello, {order.name}!",
    }
