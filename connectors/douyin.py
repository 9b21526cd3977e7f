"""Douyin connector (placeholder until the connector lands)."""

from __future__ import annotations

from connectors.douyin_mapping import PLATFORM


class DouyinConnector:
    platform = PLATFORM

    def __init__(self, access, http=None) -> None:
        raise NotImplementedError("the douyin connector is not built yet")
