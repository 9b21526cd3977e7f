"""The internal order: what every platform payload becomes, and the rules of its status.

A platform tells us where an order stands (paid, shipped, cancelled); our own pipeline
moves it further (allocated, backordered). Both kinds of change go through
`apply_transition`, so the transition table below is the only place that says which
moves are allowed, and every applied move yields a `StatusChange` for the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from oms.domain.errors import IllegalTransition


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"  # ready for allocation
    ALLOCATED = "allocated"  # stock reserved in one warehouse
    BACKORDERED = "backordered"  # paid, but no warehouse had the stock
    PACKING = "packing"  # waybill issued; in the warehouse until the carrier collects it
    SHIPPED = "shipped"  # the carrier collected the parcel (or the platform says it left)
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"  # after-sales paid the buyer the whole order back


S = OrderStatus

# Which status may follow which. An order with a waybill is cancelled only while its
# parcel is still in the warehouse (the pipeline voids the waybill then); a platform
# saying "cancelled" about a parcel on its way is an interception or an after-sales
# matter, never a status flip (see platform_status_change).
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED}),
    # PAID -> SHIPPED covers a seller who shipped from the platform back-office by hand.
    S.PAID: frozenset({S.ALLOCATED, S.BACKORDERED, S.SHIPPED, S.CANCELLED}),
    S.BACKORDERED: frozenset({S.ALLOCATED, S.SHIPPED, S.CANCELLED}),
    S.ALLOCATED: frozenset({S.PACKING, S.SHIPPED, S.PAID, S.CANCELLED}),
    S.PACKING: frozenset({S.SHIPPED, S.DELIVERED, S.CANCELLED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.CANCELLED, S.REFUNDED}),
    # A delivered order is done for fulfilment, but after-sales may still refund it.
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

# No fulfilment step follows these (a delivered order may still be refunded).
TERMINAL = frozenset({S.DELIVERED, S.CANCELLED, S.REFUNDED})


@dataclass(frozen=True)
class StatusChange:
    """One applied transition; stored as an `order_status_history` row."""

    from_status: OrderStatus | None
    to_status: OrderStatus
    at: datetime
    actor: str
    reason: str


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


def apply_transition(
    current: OrderStatus | None,
    target: OrderStatus,
    *,
    at: datetime,
    actor: str,
    reason: str,
) -> StatusChange:
    """Check a move against the table and describe it; raise on a forbidden move.

    `current` is None for an order we have never seen: any first status is allowed,
    because the platform may hand us an order that is already shipped or cancelled.
    """
    if current is not None and not can_transition(current, target):
        raise IllegalTransition(current, target)
    return StatusChange(current, target, at, actor, reason)


def platform_status_change(
    current: OrderStatus | None, reported: OrderStatus
) -> OrderStatus | None:
    """The status a platform report should move a stored order to, or None to keep it.

    A platform saying "paid" about an order we already allocated is not news: our own
    progress is ahead of the platform's view, so it is kept. A report that is neither
    the same nor an allowed move (say "paid" for a delivered order) is ignored too.
    """
    if current is None:
        return reported
    if current == reported or not can_transition(current, reported):
        return None
    if current in (S.ALLOCATED, S.BACKORDERED) and reported == S.PAID:
        return None
    if current == S.PACKING and reported == S.SHIPPED:
        # The platform has our tracking number and calls that shipped; the parcel is
        # still in the warehouse until the carrier's scan says otherwise.
        return None
    if current in (S.PACKING, S.SHIPPED) and reported == S.CANCELLED:
        # Whether the parcel can still be stopped is for the shipping records to say
        # (oms.db.shipping.cancel_after_waybill), not for a status report.
        return None
    return reported


@dataclass
class Receiver:
    """Where the parcel goes. `masked` is set when the platform hid the real values."""

    name: str | None = None
    phone: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    address: str | None = None
    postal_code: str | None = None
    country_code: str = "CN"
    masked: bool = False
    # ciphertexts the platform gave instead of plaintext (PDD, Taobao, Douyin), by field
    encrypted: dict[str, str] = field(default_factory=dict)


@dataclass
class OrderLine:
    sku: str | None
    quantity: int
    unit_price: Decimal
    title: str = ""
    platform_line_id: str = ""


@dataclass
class Order:
    platform: str
    shop_code: str
    platform_order_id: str
    platform_status: str
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    currency: str
    total_amount: Decimal
    receiver: Receiver
    lines: list[OrderLine]
    shipping_fee: Decimal = Decimal("0")
    paid_at: datetime | None = None
    ship_by: datetime | None = None
    buyer_ref: str | None = None
    buyer_note: str = ""

    @property
    def global_key(self) -> tuple[str, str, str]:
        return (self.platform, self.shop_code, self.platform_order_id)
