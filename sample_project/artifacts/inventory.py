"""Stock levels, served on the same port as the orders API (another base path)."""

from __future__ import annotations

import zlib

import iwb_http as http

from project.artifacts.orders_api import PORT

inventory = http.Service(port=PORT, base_path="/inventory", title="Inventory API")


@inventory.get("/{sku}")
async def stock(sku: str) -> dict:
    # A stand-in for a warehouse system: a stable number per SKU.
    return {"sku": sku, "in_stock": zlib.crc32(sku.encode()) % 20}
