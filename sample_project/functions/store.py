"""A tiny order store: one JSON line per order in a data folder.

Kept in a file rather than in module state, so a hot reload of this module keeps the data.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from workbench.config import configurable, project_path

DATA_DIR = project_path(configurable("data_dir", str, default=".iwb/data"))


def _file() -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return DATA_DIR / "orders.jsonl"


def save_order(order: dict[str, Any]) -> str:
    order_id = uuid.uuid4().hex[:8]
    with _file().open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"order_id": order_id, **order}) + "\n")
    return order_id


def all_orders() -> list[dict[str, Any]]:
    path = _file()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def find_order(order_id: str) -> dict[str, Any] | None:
    return next((o for o in all_orders() if o["order_id"] == order_id), None)
