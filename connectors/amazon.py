"""Amazon connector (placeholder until the connector lands)."""

from __future__ import annotations

from connectors.amazon_mapping import PLATFORM


class AmazonConnector:
    platform = PLATFORM

    def __init__(self, access, http=None) -> None:
        raise NotImplementedError("the amazon connector is not built yet")
