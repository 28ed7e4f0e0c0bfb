"""Pricing rules, shared by every artifact that needs a total."""

from __future__ import annotations

from project.types.orders import Order


def order_total(order: Order) -> float:
    """Sum of quantity × unit price, rounded to cents."""
    return round(sum(item.quantity * item.unit_price for item in order.items), 2)
