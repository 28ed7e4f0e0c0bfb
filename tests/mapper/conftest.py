"""Projects with types, functions and mapping files, and their loaded mappings."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from workbench.mapper.registry import MappingRegistry, set_current
from workbench.project.config import ConfigResolver
from workbench.project.loader import ProjectLoader
from workbench.project.settings import load_settings

ORDERS = """
    from __future__ import annotations

    from enum import Enum

    from pydantic import BaseModel, Field


    class Item(BaseModel):
        sku: str
        quantity: int
        unit_price: float
        tags: list[str] = []


    class Address(BaseModel):
        street: str
        city: str
        zip: str | None = None


    class Order(BaseModel):
        id: str
        customer: str
        email: str | None = None
        items: list[Item] = Field(default_factory=list)
        address: Address | None = None
        placed: str = "01/05/2024"
        status: str = "open"
        amount_text: str = "0"
        note: str | None = None


    class Customer(BaseModel):
        name: str
        vip: bool = False
"""

BILLING = """
    from __future__ import annotations

    from datetime import date
    from decimal import Decimal
    from enum import Enum

    from pydantic import BaseModel, Field


    class State(str, Enum):
        OPEN = "open"
        PAID = "paid"


    class Line(BaseModel):
        sku: str
        amount: float


    class Place(BaseModel):
        street: str
        town: str


    class Invoice(BaseModel):
        number: str
        customer: str
        lines: list[Line] = []
        total: float = 0.0
        count: int = 0
        place: Place | None = None
        issued: date | None = None
        state: State = State.OPEN
        amount: Decimal | None = None
        note: str = ""
        tags: list[str] = []
        first_sku: str | None = None
"""

PRICING = """
    from __future__ import annotations

    from project.types.orders import Order


    def order_total(order: Order) -> float:
        return round(sum(i.quantity * i.unit_price for i in order.items), 2)


    def shout(text: str) -> str:
        return text.upper() + "!"
"""

BASE_FILES = {
    "types/orders.py": ORDERS,
    "types/billing.py": BILLING,
    "functions/pricing.py": PRICING,
}

IWB = str(Path(sys.executable).parent / "iwb")
"""The installed `iwb` console script of this environment."""


def write_files(root: Path, files: dict[str, str]) -> None:
    """Write {relative path: source} under root (sources are dedented)."""
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")


HEAD = """
    [mapping]
    source = "project.types.orders:Order"
    target = "project.types.billing:Invoice"
"""


def load_registry(root: Path, profile: str | None = None) -> MappingRegistry:
    """Load a project's types and functions as the runtime does, then its mappings."""
    settings = load_settings(root)
    resolver = ConfigResolver(root, profile)
    loader = ProjectLoader(root, settings)
    result = loader.load(
        resolver, [(f, p) for f, p in loader.all_python_files() if f != "artifacts"], kinds=()
    )
    assert not result.errors, [e.message for e in result.errors]
    registry = MappingRegistry(settings.folder("mappings"), root)
    registry.load(resolver)
    set_current(registry)
    return registry


Project = Callable[..., tuple[Path, MappingRegistry]]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """`project({"mappings/x.toml": "..."})` → (root, registry) over the shared types."""
    counter = [0]

    def make(files: dict[str, str], *, profile: str | None = None) -> tuple[Path, MappingRegistry]:
        counter[0] += 1
        root = tmp_path / f"p{counter[0]}"
        root.mkdir()
        write_files(root, {**BASE_FILES, **files})
        return root, load_registry(root, profile)

    return make


@pytest.fixture(autouse=True)
def _no_current_registry() -> Iterator[None]:
    yield
    set_current(None)
