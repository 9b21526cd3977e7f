"""Jd connector (placeholder until the connector lands)."""

from __future__ import annotations

from connectors.jd_mapping import PLATFORM


class JdConnector:
    platform = PLATFORM

    def __init__(self, access, http=None) -> None:
        raise NotImplementedError("the jd connector is not built yet")
