"""Status drift: where our view of an order and its platform's part, and what to do about it.

The `check-status-drift` flow hands this module what we know of an order (our status and
its parcels) and the status the platform reports, mapped to ours. `classify` names the
difference (its kind) and the repair; the table below is the whole of the rules. Rows are
read top to bottom, the first that matches wins; "-" matches anything.

    platform    our status                        parcels                 kind                               repair
    ----------  --------------------------------  ----------------------  ---------------------------------  ----------------
    cancelled   cancelled                         -                       (agree)                            none
    cancelled   pending, paid, backordered,       no parcel on its way    platform_cancelled_before_waybill  release_and_stop
                allocated (no waybill)
    cancelled   allocated, packing, shipped       every parcel stoppable  platform_cancelled_in_warehouse    release_and_stop
    cancelled   allocated, packing, shipped       a parcel on its way     platform_cancelled_after_handover  interception
    cancelled   delivered                         -                       platform_cancelled_after_delivery  review
    delivered   shipped                           -                       delivered_we_shipped               adopt_status
    delivered   delivered                         -                       (agree)                            none
    delivered   packing                           -                       platform_delivered_we_packing      review
    delivered   anything else                     -                       platform_delivered_not_by_us       review
    shipped     packing, tracking pushed          -                       (expected lag)                     none
    shipped     shipped, delivered                -                       (agree / platform behind)          none
    shipped     cancelled                         -                       platform_shipped_we_cancelled      review
    shipped     anything else                     -                       platform_shipped_not_by_us         review
    paid        pending                           -                       platform_paid_we_pending           adopt_status
    paid        packing, shipped, delivered       pushed > grace ago      tracking_not_on_platform           review
    paid        paid ... delivered                -                       (we are ahead)                     none
    paid        cancelled                         -                       cancelled_here_paid_on_platform    review
    pending     pending                           -                       (agree)                            none
    pending     anything else                     -                       platform_unpaid_we_paid            review
    -           -                                 -                       status_mismatch                    review

"Shipped" on the platform while our parcel is still packing is what a platform says once
it has our tracking number: the carrier's pickup scan moves us on. "Paid" while we are
ahead (allocated, packing) is the platform's normal lag; only a pushed number that the
platform still shows nothing for after `TRACKING_GRACE` is a drift.

A parcel's fate when its order is cancelled (`parcel_fate`) is decided by the handover,
not by the tracking push: a parcel still in the warehouse is stopped (waybill voided,
stock released) even if the platform has its number; one handed over or collected can
only be intercepted on its way. A parcel with no warehouse scan at all whose number was
pushed may have left without anyone scanning it: it counts as on its way (the safe side:
an interception asked for a parcel still on the shelf costs a phone call, a released unit
sold twice costs a customer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from oms.domain.order import OrderStatus

S = OrderStatus

# How long a platform may take to show a tracking number we pushed before it is a drift.
TRACKING_GRACE = timedelta(hours=2)


class Repair(StrEnum):
    NONE = "none"
    RELEASE_AND_STOP = "release_and_stop"  # cancel here: stock back, waybills voided
    INTERCEPTION = "interception"  # a parcel is on its way: ask the carrier to stop it
    ADOPT_STATUS = "adopt_status"  # the platform is right and moving there is harmless
    REVIEW = "review"  # a person decides


class ParcelFate(StrEnum):
    STOP = "stop"  # still in the warehouse: void the waybill, release the stock
    INTERCEPT = "intercept"  # handed over, collected, or perhaps gone: stop it on its way


@dataclass(frozen=True)
class Parcel:
    """One shipment of the order, as the warehouse and the carrier last reported it."""

    tracking_pushed: bool = False
    scanned: bool = False  # any warehouse step recorded (printed, packed, weighed, ...)
    handed_over: bool = False
    picked_up: bool = False
    pushed_at: datetime | None = None
    voided: bool = False


@dataclass(frozen=True)
class OrderFacts:
    status: OrderStatus
    parcels: tuple[Parcel, ...] = field(default_factory=tuple)

    @property
    def live_parcels(self) -> tuple[Parcel, ...]:
        return tuple(p for p in self.parcels if not p.voided)


@dataclass(frozen=True)
class Drift:
    kind: str
    repair: Repair
    adopt: OrderStatus | None = None  # the status to move to, for ADOPT_STATUS


def parcel_fate(parcel: Parcel) -> ParcelFate:
    """Stop it in the warehouse, or intercept it on its way (see the module docstring)."""
    if parcel.handed_over or parcel.picked_up:
        return ParcelFate.INTERCEPT
    if not parcel.scanned and parcel.tracking_pushed:
        return ParcelFate.INTERCEPT
    return ParcelFate.STOP


def classify(ours: OrderFacts, platform: OrderStatus, now: datetime,
             grace: timedelta = TRACKING_GRACE) -> Drift | None:
    """The drift between our order and the platform's status, or None when they agree
    (or differ only by an expected lag)."""
    for rule in _RULES:
        drift = rule(ours, platform, now, grace)
        if drift is not _NO_MATCH:
            return drift
    return Drift("status_mismatch", Repair.REVIEW)


_NO_MATCH = Drift("", Repair.NONE)
_BEFORE_WAYBILL = {S.PENDING_PAYMENT, S.PAID, S.BACKORDERED, S.ALLOCATED}
_WITH_WAYBILL = {S.ALLOCATED, S.PACKING, S.SHIPPED}


def _cancelled(ours: OrderFacts, platform, now, grace):
    if platform != S.CANCELLED:
        return _NO_MATCH
    if ours.status == S.CANCELLED:
        return None
    if ours.status == S.DELIVERED:
        return Drift("platform_cancelled_after_delivery", Repair.REVIEW)
    if ours.status in _BEFORE_WAYBILL and not ours.live_parcels:
        return Drift("platform_cancelled_before_waybill", Repair.RELEASE_AND_STOP)
    if ours.status in _WITH_WAYBILL:
        if any(parcel_fate(p) == ParcelFate.INTERCEPT for p in ours.live_parcels):
            return Drift("platform_cancelled_after_handover", Repair.INTERCEPTION)
        return Drift("platform_cancelled_in_warehouse", Repair.RELEASE_AND_STOP)
    return _NO_MATCH


def _delivered(ours: OrderFacts, platform, now, grace):
    if platform != S.DELIVERED:
        return _NO_MATCH
    if ours.status == S.DELIVERED:
        return None
    if ours.status == S.SHIPPED:
        return Drift("delivered_we_shipped", Repair.ADOPT_STATUS, adopt=S.DELIVERED)
    if ours.status == S.PACKING:
        # Delivered before the carrier's pickup reached us: the stock is still reserved,
        # and only the pickup settles it; moving the status alone would hide that.
        return Drift("platform_delivered_we_packing", Repair.REVIEW)
    return Drift("platform_delivered_not_by_us", Repair.REVIEW)


def _shipped(ours: OrderFacts, platform, now, grace):
    if platform != S.SHIPPED:
        return _NO_MATCH
    if ours.status in (S.SHIPPED, S.DELIVERED):
        return None
    if ours.status == S.PACKING and any(p.tracking_pushed for p in ours.live_parcels):
        return None
    if ours.status == S.CANCELLED:
        return Drift("platform_shipped_we_cancelled", Repair.REVIEW)
    return Drift("platform_shipped_not_by_us", Repair.REVIEW)


def _paid(ours: OrderFacts, platform, now, grace):
    if platform != S.PAID:
        return _NO_MATCH
    if ours.status == S.PENDING_PAYMENT:
        return Drift("platform_paid_we_pending", Repair.ADOPT_STATUS, adopt=S.PAID)
    if ours.status == S.CANCELLED:
        return Drift("cancelled_here_paid_on_platform", Repair.REVIEW)
    pushed = [p.pushed_at for p in ours.live_parcels if p.tracking_pushed and p.pushed_at is not None]
    if ours.status in (S.PACKING, S.SHIPPED, S.DELIVERED) and pushed and now - min(pushed) > grace:
        return Drift("tracking_not_on_platform", Repair.REVIEW)
    return None


def _unpaid(ours: OrderFacts, platform, now, grace):
    if platform != S.PENDING_PAYMENT:
        return _NO_MATCH
    if ours.status == S.PENDING_PAYMENT:
        return None
    return Drift("platform_unpaid_we_paid", Repair.REVIEW)


def _same(ours: OrderFacts, platform, now, grace):
    return None if ours.status == platform else _NO_MATCH


def _refunded(ours: OrderFacts, platform, now, grace):
    # After a full refund platforms show the order as closed, shipped or delivered as
    # they please; the refund is ours to know and nothing is left to repair.
    return None if ours.status == S.REFUNDED else _NO_MATCH


_RULES = (_refunded, _cancelled, _delivered, _shipped, _paid, _unpaid, _same)
