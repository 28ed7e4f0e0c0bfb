"""The HTTP benchmark's handler in bare Quart (the framework iwb's HTTP plugin can use).

    uvicorn benchmarks.apps.quart_orders:app --http httptools
"""

from __future__ import annotations

from pydantic import BaseModel
from quart import Quart, request

app = Quart(__name__)


class Order(BaseModel):
    name: str
    qty: int


@app.post("/")
async def place() -> dict[str, object]:
    order = Order.model_validate_json(await request.get_data())
    return {
        "name": order.name,
        "qty": order.qty,
        "total": round(order.qty * 4.5, 2),
        "greeting": f"Hello, {order.name}!",
    }
