"""Jd payload mapping (placeholder until the connector lands)."""

from __future__ import annotations

PLATFORM = "jd"


def map_order(payload: dict, shop_code: str):
    raise NotImplementedError("the jd mapping is not built yet")
