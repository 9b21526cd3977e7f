"""Douyin payload mapping (placeholder until the connector lands)."""

from __future__ import annotations

PLATFORM = "douyin"


def map_order(payload: dict, shop_code: str):
    raise NotImplementedError("the douyin mapping is not built yet")
