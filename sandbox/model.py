"""Platform-neutral orders the simulators serve, and the switchable faults.

The generator fills a `SandboxState` with `SimOrder`s; each platform's simulator renders
them in its own wire format. Keeping one neutral model means the same seeded orders can
be served by any platform, and a test can reach into the state to check what a
simulator received (tracking numbers, waybills).
"""

from __future__ import annotations

import secrets
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
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
    country_code: str = "CN"  # ISO 3166 alpha-2 of the receiver; set by the shop's market
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
    kind: str = "access"  # or e.g. "rdt" for Amazon's restricted-data tokens


@dataclass
class SimRefreshToken:
    shop: str
    expires_at: datetime
    single_use: bool = False  # Shopee: a refresh token works once, the answer brings a new one
    used: bool = False


@dataclass
class SandboxState:
    """Everything the simulators know. Shared by all routers of one sandbox app."""

    orders: dict[str, list[SimOrder]] = field(default_factory=lambda: defaultdict(list))
    tokens: dict[str, SimToken] = field(default_factory=dict)  # access token -> shop
    refresh_tokens: dict[str, SimRefreshToken] = field(default_factory=dict)
    app_secrets: dict[str, str] = field(default_factory=dict)  # app key / client_id -> secret
    faults: FaultSwitches = field(default_factory=FaultSwitches)
    waybills: dict[str, dict] = field(default_factory=dict)  # tracking number -> request
    # Per shop, the seller SKU codes it lists (from the generator's catalogue) and the
    # sellable quantity each listing shows now, as the last stock push set it.
    catalogs: dict[str, list[str]] = field(default_factory=dict)
    stock_levels: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    # Per shop, every stock push the platform accepted, oldest first: (sku, quantity).
    stock_pushes: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def shop_orders(self, shop: str) -> list[SimOrder]:
        return self.orders[shop]

    def grant(
        self,
        shop: str,
        now: datetime,
        access_lifetime: timedelta,
        refresh_lifetime: timedelta | None = None,
        *,
        single_use_refresh: bool = False,
        prefix: str = "",
    ) -> dict:
        """Issue an access token (and a refresh token when a lifetime is given) for a shop.

        Returns the tokens and their expiry times as the simulators hand them out; the
        caller holds no lock, this takes `lock` itself.
        """
        access = prefix + secrets.token_hex(16)
        granted = {"access_token": access, "access_expires_at": now + access_lifetime}
        with self.lock:
            self.tokens[access] = SimToken(shop=shop, expires_at=now + access_lifetime)
            if refresh_lifetime is not None:
                refresh = prefix + secrets.token_hex(20)
                self.refresh_tokens[refresh] = SimRefreshToken(
                    shop, now + refresh_lifetime, single_use=single_use_refresh)
                granted.update(refresh_token=refresh,
                               refresh_expires_at=now + refresh_lifetime)
        return granted

    def redeem(self, refresh_token: str, now: datetime) -> SimRefreshToken | None:
        """The refresh token's record if it may be used now (and spend it if single-use)."""
        with self.lock:
            known = self.refresh_tokens.get(refresh_token)
            if known is None or known.used or known.expires_at <= now:
                return None
            if known.single_use:
                known.used = True
            return known

    def expire(self, access_token: str) -> None:
        """Let an access token lapse now, as tests of expiry need."""
        with self.lock:
            if access_token in self.tokens:
                self.tokens[access_token].expires_at = datetime.min.replace(tzinfo=timezone.utc)

    def listed_skus(self, shop: str) -> list[str]:
        """The seller SKU codes a shop lists, in catalogue order."""
        with self.lock:
            return list(self.catalogs.get(shop, ()))

    def set_stock(self, shop: str, sku: str, quantity: int) -> None:
        """Record an accepted stock push (the simulators call this)."""
        with self.lock:
            self.stock_levels[shop][sku] = quantity
            self.stock_pushes[shop].append((sku, quantity))
