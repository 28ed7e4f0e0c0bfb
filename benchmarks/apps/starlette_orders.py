"""The HTTP benchmark's handler in Starlette (a reference for a lean ASGI framework).

    uvicorn benchmarks.apps.starlette_orders:app --http httptools
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class Order(BaseModel):
    name: str
    qty: int


async def place(request: Request) -> JSONResponse:
    order = Order.model_validate_json(await request.body())
    return JSONResponse(
        {
            "name": order.name,
            "qty": order.qty,
            "total": round(order.qty * 4.5, 2),
            "greeting": f"Hello, {order.name}!",
        }
    )


app = Starlette(routes=[Route("/", place, methods=["POST"])])
