"""Taobao connector (placeholder until the connector lands)."""

from __future__ import annotations

from connectors.taobao_mapping import PLATFORM


class TaobaoConnector:
    platform = PLATFORM

    def __init__(self, access, http=None) -> None:
        raise NotImplementedError("the taobao connector is not built yet")
