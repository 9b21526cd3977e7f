"""Lazada connector (placeholder until the connector lands)."""

from __future__ import annotations

from connectors.lazada_mapping import PLATFORM


class LazadaConnector:
    platform = PLATFORM

    def __init__(self, access, http=None) -> None:
        raise NotImplementedError("the lazada connector is not built yet")
