"""A scheduled report of SKUs running low, also runnable by hand:

    iwb inject sample_project restock --via direct
"""

from __future__ import annotations

import iwb_automation as automation
from pydantic import BaseModel
from workbench.config import configurable

from project.functions.store import all_orders

SCHEDULE = configurable("schedule", str, default="*/5 * * * *")
THRESHOLD = configurable("threshold", int, default=5)


class RestockParams(BaseModel):
    threshold: int = THRESHOLD
    top: int = 10


restock = automation.Automation(schedule=SCHEDULE, params={"top": 10})


@restock.run
async def report(params: RestockParams, run: automation.Run) -> dict:
    ordered: dict[str, int] = {}
    for order in all_orders():
        for item in order["items"]:
            ordered[item["sku"]] = ordered.get(item["sku"], 0) + item["quantity"]
    busiest = sorted(ordered.items(), key=lambda kv: kv[1], reverse=True)[: params.top]
    return {
        "trigger": run.trigger,
        "reorder": [sku for sku, qty in busiest if qty >= params.threshold],
        "ordered": dict(busiest),
    }
