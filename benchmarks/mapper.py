"""bench-mapper: a compiled data mapping against the same mapping written by hand.

The mapping has 20 target fields: 19 values (copies, text operations, arithmetic, an
f-string, a conditional, a `default`) and one list of 10 elements with 4 fields each. It is
loaded the way the runtime loads it (project loader, then the mapping registry), and called
three ways: the compiled function, through `workbench.mapper.mapping(name)` (what handlers
call), and its unvalidated `raw` variant. The baselines, in the same process and the same
rounds, are two hand-written functions giving the same result: one building the nested
pydantic models with their constructors, one building the dict and validating it once
(what the compiled code does).

Each round times N calls of every variant, interleaved; a variant's rate is N over its best
round. Targets: the compiled mapping at least 0.8x the faster hand-written function, and at
least 100,000 records/s.

Prints a human summary on stderr and one JSON line on stdout; exits 1 on a missed target.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import Report, say

TYPES = '''
from __future__ import annotations

from pydantic import BaseModel


class Item(BaseModel):
    sku: str
    quantity: int
    unit_price: float
    discount: float = 0.0


class Order(BaseModel):
    id: str
    customer: str
    email: str
    phone: str
    street: str
    city: str
    zip: str
    country: str
    currency: str
    channel: str
    priority: int
    weight_g: int
    shipping: float
    tax_rate: float
    coupon: str | None = None
    gift: bool
    note: str
    region: str
    created: str
    items: list[Item]


class Line(BaseModel):
    sku: str
    quantity: int
    amount: float
    discounted: float


class Invoice(BaseModel):
    number: str
    customer: str
    email: str
    phone: str
    address: str
    city: str
    postcode: str
    country: str
    currency: str
    channel: str
    urgent: bool
    weight_kg: float
    shipping: float
    tax_rate: float
    coupon: str
    gift: bool
    note: str
    region: str
    created: str
    lines: list[Line]
'''

MAPPING = '''
# The benchmark mapping: 19 values and one list of 10 elements.
[mapping]
source = "project.types.shop:Order"
target = "project.types.shop:Invoice"

[fields]
number = "'INV-' + src.id"
customer = "src.customer.title()"
email = "src.email.lower()"
phone = "src.phone"
address = "f'{src.street}, {src.zip} {src.city}'"
city = "src.city.upper()"
postcode = "src.zip"
country = "src.country"
currency = "src.currency"
channel = "src.channel"
urgent = "src.priority > 2"
weight_kg = "src.weight_g / 1000"
shipping = "src.shipping"
tax_rate = "src.tax_rate"
coupon = { expr = "src.coupon", default = "" }
gift = "src.gift"
note = "src.note.strip()"
region = "src.region"
created = "src.created"

[fields.lines]
each = "src.items"
[fields.lines.fields]
sku = "item.sku"
quantity = "item.quantity"
amount = "item.quantity * item.unit_price"
discounted = "item.quantity * item.unit_price * (1 - item.discount)"
'''

ITEMS = 10
ORDER: dict[str, Any] = {
    "id": "A-1001", "customer": "ada lovelace", "email": "Ada@Example.com",
    "phone": "+47 555 0100", "street": "1 Analytical Way", "city": "London",
    "zip": "N1 9GU", "country": "GB", "currency": "GBP", "channel": "web", "priority": 3,
    "weight_g": 2350, "shipping": 4.95, "tax_rate": 0.2, "coupon": None, "gift": False,
    "note": "  leave at the door ", "region": "EU", "created": "2024-05-01T10:00:00Z",
    "items": [
        {"sku": f"SKU-{i:03d}", "quantity": i % 4 + 1, "unit_price": 2.5 + i, "discount": 0.1}
        for i in range(ITEMS)
    ],
}


def hand_written(shop: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The same mapping by hand: with model constructors, and as a dict validated once."""
    invoice, line = shop.Invoice, shop.Line
    validate = invoice.__pydantic_validator__.validate_python

    def with_constructors(src: Any) -> Any:
        return invoice(
            number="INV-" + src.id,
            customer=src.customer.title(),
            email=src.email.lower(),
            phone=src.phone,
            address=f"{src.street}, {src.zip} {src.city}",
            city=src.city.upper(),
            postcode=src.zip,
            country=src.country,
            currency=src.currency,
            channel=src.channel,
            urgent=src.priority > 2,
            weight_kg=src.weight_g / 1000,
            shipping=src.shipping,
            tax_rate=src.tax_rate,
            coupon=src.coupon if src.coupon is not None else "",
            gift=src.gift,
            note=src.note.strip(),
            region=src.region,
            created=src.created,
            lines=[
                line(
                    sku=item.sku,
                    quantity=item.quantity,
                    amount=item.quantity * item.unit_price,
                    discounted=item.quantity * item.unit_price * (1 - item.discount),
                )
                for item in src.items
            ],
        )

    def as_dict(src: Any) -> Any:
        return validate({
            "number": "INV-" + src.id,
            "customer": src.customer.title(),
            "email": src.email.lower(),
            "phone": src.phone,
            "address": f"{src.street}, {src.zip} {src.city}",
            "city": src.city.upper(),
            "postcode": src.zip,
            "country": src.country,
            "currency": src.currency,
            "channel": src.channel,
            "urgent": src.priority > 2,
            "weight_kg": src.weight_g / 1000,
            "shipping": src.shipping,
            "tax_rate": src.tax_rate,
            "coupon": src.coupon if src.coupon is not None else "",
            "gift": src.gift,
            "note": src.note.strip(),
            "region": src.region,
            "created": src.created,
            "lines": [
                {
                    "sku": item.sku,
                    "quantity": item.quantity,
                    "amount": item.quantity * item.unit_price,
                    "discounted": item.quantity * item.unit_price * (1 - item.discount),
                }
                for item in src.items
            ],
        })

    return with_constructors, as_dict


def load(root: Path) -> Any:
    """Load the project as the runtime does; the mapping registry becomes current."""
    from workbench.mapper.registry import MappingRegistry, set_current
    from workbench.project.config import ConfigResolver
    from workbench.project.loader import ProjectLoader
    from workbench.project.settings import load_settings

    settings = load_settings(root)
    resolver = ConfigResolver(root)
    loader = ProjectLoader(root, settings)
    result = loader.load(resolver, loader.all_python_files(), kinds=())
    if result.errors:
        raise SystemExit(f"the benchmark project does not load: {result.errors[0].message}")
    registry = MappingRegistry(settings.folder("mappings"), root)
    errors = registry.load(resolver)
    if errors:
        raise SystemExit(f"the benchmark mapping does not load: {errors[0].message}")
    set_current(registry)
    return registry


def timed(func: Callable[[Any], Any], arg: Any, n: int) -> float:
    """Seconds for `n` calls, with the cyclic garbage collector off (as `timeit` does: its
    pauses land on whichever variant happens to run, not on the one that made garbage)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(n):
            func(arg)
        return time.perf_counter() - start
    finally:
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="calls per variant and round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-rate", type=float, default=100_000.0, help="records/s")
    parser.add_argument("--min-ratio", type=float, default=0.8,
                        help="compiled / fastest hand-written")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="iwb-bench-mapper-") as tmp:
        root = Path(tmp)
        (root / "types").mkdir()
        (root / "mappings").mkdir()
        (root / "types" / "shop.py").write_text(textwrap.dedent(TYPES))
        (root / "mappings" / "order_to_invoice.toml").write_text(MAPPING.lstrip())
        registry = load(root)
        from workbench.mapper import mapping

        shop = sys.modules["project.types.shop"]
        compiled = registry.get("order_to_invoice")
        order = shop.Order.model_validate(ORDER)
        by_hand, by_hand_dict = hand_written(shop)
        proxy = mapping("order_to_invoice")
        expected = by_hand(order)
        for name, func in (("compiled", compiled.func), ("proxy", proxy),
                           ("hand_dict", by_hand_dict)):
            if func(order) != expected:
                raise SystemExit(f"{name} gives another result than the hand-written function")
        if shop.Invoice.model_validate(compiled.raw(order)) != expected:
            raise SystemExit("raw gives another result than the hand-written function")
        variants: dict[str, Callable[[Any], Any]] = {
            "compiled": compiled.func,
            "hand_constructors": by_hand,
            "hand_dict": by_hand_dict,
            "proxy": proxy,
            "raw": compiled.raw,
        }
        best = {name: float("inf") for name in variants}
        for func in variants.values():  # warm up
            timed(func, order, max(args.n // 10, 1))
        say(f"bench-mapper: {args.rounds} rounds of {args.n} calls per variant "
            f"(20 fields, a list of {ITEMS})")
        for _ in range(args.rounds):
            for name, func in variants.items():
                best[name] = min(best[name], timed(func, order, args.n))
    rates = {name: args.n / seconds for name, seconds in best.items()}
    hand = max(rates["hand_constructors"], rates["hand_dict"])
    ratio = rates["compiled"] / hand
    for name, rate in rates.items():
        say(f"  {name:<18} {rate:12,.0f} records/s  {1e6 / rate:7.2f} us/record")
    report = Report("mapper")
    report.figures.update({
        "records_per_s": round(rates["compiled"]),
        "proxy_records_per_s": round(rates["proxy"]),
        "raw_records_per_s": round(rates["raw"]),
        "hand_constructors_records_per_s": round(rates["hand_constructors"]),
        "hand_dict_records_per_s": round(rates["hand_dict"]),
        "ratio_to_hand_written": round(ratio, 3),
        "fields": 20,
        "list_items": ITEMS,
    })
    report.check("ratio_to_fastest_hand_written", ratio, ">=", args.min_ratio)
    report.check("records_per_s", rates["compiled"], ">=", args.min_rate)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
