"""Orders dropped as CSV files into inbox/ are placed through the orders API.

    customer,sku,quantity,unit_price
    ada@example.com,TEA-01,2,4.5

Processed files move to inbox/done/, files that fail to inbox/failed/.
"""

from __future__ import annotations

import csv
import io

import iwb_files as files
from workbench.config import connection

from project.types.orders import Item, Order

shop = connection("shop")

inbox = files.Directory(
    path="inbox", pattern="*.csv", stable_for=0.2,
    on_success=files.MoveTo("done"), on_error=files.MoveTo("failed"),
)


@inbox.on_create
async def import_orders(file: files.File) -> dict:
    by_customer: dict[str, list[Item]] = {}
    for row in csv.DictReader(io.StringIO(file.text())):
        item = Item(sku=row["sku"], quantity=int(row["quantity"]), unit_price=float(row["unit_price"]))
        by_customer.setdefault(row["customer"], []).append(item)
    placed = []
    for customer, items in by_customer.items():
        order = Order(customer=customer, items=items)
        response = await shop.post("/orders/", json=order.model_dump())
        response.raise_for_status()
        placed.append(response.json()["order_id"])
    return {"file": file.name, "orders": placed}
