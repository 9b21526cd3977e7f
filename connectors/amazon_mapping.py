"""Amazon payload mapping (placeholder until the connector lands)."""

from __future__ import annotations

PLATFORM = "amazon"


def map_order(payload: dict, shop_code: str):
    raise NotImplementedError("the amazon mapping is not built yet")
