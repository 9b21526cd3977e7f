"""Taobao payload mapping (placeholder until the connector lands)."""

from __future__ import annotations

PLATFORM = "taobao"


def map_order(payload: dict, shop_code: str):
    raise NotImplementedError("the taobao mapping is not built yet")
