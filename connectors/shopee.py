"""Shopee connector (placeholder until the connector lands)."""

from __future__ import annotations

from connectors.shopee_mapping import PLATFORM


class ShopeeConnector:
    platform = PLATFORM

    def __init__(self, access, http=None) -> None:
        raise NotImplementedError("the shopee connector is not built yet")
