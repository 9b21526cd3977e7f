"""Platform-neutral orders the simulators serve, and the switchable faults.

The generator fills a `SandboxState` with `SimOrder`s; each platform's simulator renders
them in its own wire format. Keeping one neutral model means the same seeded orders can
be served by any platform, and a test can reach into the state to check what a
simulator received (tracking numbers, waybills).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass
class SimLine:
    sku: str | None
    title: str
    quantity: int
    unit_price: Decimal
    line_id: int = 0


@dataclass
class SimOrder:
    """One order of one simulated shop, in neutral form.

    `status` is one of: unpaid, paid, shipped, delivered, cancelled.
    Receiver fields hold the raw, possibly dirty strings a buyer typed.
    `defects` names the dirt the generator put in, so tests can find such orders.
    """

    order_id: int
    shop: str
    created_at: datetime
    updated_at: datetime
    status: str
    currency: str
    lines: list[SimLine]
    shipping_fee: Decimal
    receiver_name: str | None
    phone: str | None
    province: str | None
    city: str | None
    district: str | None
    address: str | None
    postal_code: str | None = None
    buyer_id: str = ""
    note: str = ""
    defects: set[str] = field(default_factory=set)
    tracking: list[dict] = field(default_factory=list)  # write-backs the platform accepted

    @property
    def total(self) -> Decimal:
        return sum((l.unit_price * l.quantity for l in self.lines), Decimal("0")) + self.shipping_fee


FAULT_KINDS = ("latency", "server_error", "rate_limit", "expired_token", "malformed")


@dataclass
class Fault:
    kind: str
    remaining: int  # how many requests it still hits; -1 = until cleared
    delay_seconds: float = 0.0
    retry_after: int = 2


class FaultSwitches:
    """Faults armed per platform ("shopify", "pdd", "carrier"); each request takes one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, list[Fault]] = defaultdict(list)

    def arm(self, platform: str, kind: str, times: int = 1, **options) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose from {FAULT_KINDS}")
        with self._lock:
            self._armed[platform].append(Fault(kind, times, **options))

    def clear(self, platform: str | None = None) -> None:
        with self._lock:
            if platform is None:
                self._armed.clear()
            else:
                self._armed.pop(platform, None)

    def take(self, platform: str) -> Fault | None:
        with self._lock:
            queue = self._armed.get(platform)
            if not queue:
                return None
            fault = queue[0]
            if fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    queue.pop(0)
            return fault


@dataclass
class SimToken:
    shop: str
    expires_at: datetime


@dataclass
class SandboxState:
    """Everything the simulators know. Shared by all routers of one sandbox app."""

    orders: dict[str, list[SimOrder]] = field(default_factory=lambda: defaultdict(list))
    tokens: dict[str, SimToken] = field(default_factory=dict)  # access token -> shop
    app_secrets: dict[str, str] = field(default_factory=dict)  # app key / client_id -> secret
    faults: FaultSwitches = field(default_factory=FaultSwitches)
    waybills: dict[str, dict] = field(default_factory=dict)  # tracking number -> request
    lock: threading.Lock = field(default_factory=threading.Lock)

    def shop_orders(self, shop: str) -> list[SimOrder]:
        return self.orders[shop]
