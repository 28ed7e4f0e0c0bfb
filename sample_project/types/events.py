"""Messages the broker listeners receive."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Payment(BaseModel):
    order_id: str = Field(examples=["a1b2c3d4"])
    amount: float = Field(gt=0, examples=[21.0])
    currency: str = Field(default="EUR", examples=["EUR"])


class Shipment(BaseModel):
    order_id: str = Field(examples=["a1b2c3d4"])
    carrier: str = Field(examples=["DHL"])
    tracking: str = Field(examples=["JD014600006281230823"])


class Reading(BaseModel):
    celsius: float = Field(examples=[4.2])
