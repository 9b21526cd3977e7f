"""Shopee payload mapping (placeholder until the connector lands)."""

from __future__ import annotations

PLATFORM = "shopee"


def map_order(payload: dict, shop_code: str):
    raise NotImplementedError("the shopee mapping is not built yet")
