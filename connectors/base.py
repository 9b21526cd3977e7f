"""What every marketplace and carrier connector offers the tasks, and the shared HTTP edge.

Connectors are the only code that knows a platform's wire format. They hand the tasks
`RawOrder`s (the payload plus the keys needed to land it), turn payloads into
`oms.domain.order.Order`, and push tracking numbers back. Anything that goes wrong on
the wire leaves a connector as one of the errors in `oms.domain.errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from oms.domain.order import Order, Receiver


@dataclass(frozen=True)
class ShopAccess:
    """How to reach one shop: its platform, base URL and credentials.

    `base_url` is the platform's real host in production and the sandbox's URL in tests
    and the demo, so switching a shop to the real platform is a change of data, not code.
    """

    code: str
    platform: str
    base_url: str
    credentials: dict[str, str]


@dataclass
class RawOrder:
    """One order payload as the platform sent it.

    `platform_order_id` and `platform_updated_at` are None when the payload is too broken
    to read them; such payloads go straight to the review queue.
    """

    platform_order_id: str | None
    platform_updated_at: datetime | None
    payload: dict[str, Any]


@dataclass
class PushResult:
    """What a tracking write-back sent and what came back, for the `tracking_pushes` row."""

    request: dict[str, Any]
    response: dict[str, Any]


class MarketplaceConnector(Protocol):
    platform: str

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Yield pages of orders updated in [start, end), splitting the window as the
        platform requires."""
        ...

    def to_order(self, raw: RawOrder) -> Order:
        """Map a payload to the internal order; raise MappingError with every reason."""
        ...

    def push_tracking(
        self, platform_order_id: str, carrier: str, tracking_number: str
    ) -> PushResult:
        """Tell the platform the order shipped; `carrier` is our carrier code ("SF")."""
        ...


@dataclass
class Parcel:
    """What a carrier needs to issue an e-waybill for one order."""

    order_ref: str
    receiver: Receiver
    weight_grams: int
    items: list[tuple[str, int]] = field(default_factory=list)  # (title, count)


@dataclass(frozen=True)
class Waybill:
    carrier: str
    tracking_number: str


class HttpConnection:
    """An httpx client that a connector either borrows or owns.

    Tasks pass one client to several connectors to reuse connections; a connector built
    without one makes its own and closes it, and only it, on `close()` or on leaving a
    `with` block.
    """

    def _connect(self, http: httpx.Client | None, timeout: float) -> None:
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
