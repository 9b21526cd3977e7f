"""Lazada payload mapping (placeholder until the connector lands)."""

from __future__ import annotations

PLATFORM = "lazada"


def map_order(payload: dict, shop_code: str):
    raise NotImplementedError("the lazada mapping is not built yet")
