"""Status drift rules: which differences between our status and a platform's are drifts,
what each is called, and which repair it gets; and when a cancelled parcel is stopped
rather than intercepted."""

from datetime import UTC, datetime, timedelta

import pytest

from oms.domain.drift import (
    TRACKING_GRACE,
    OrderFacts,
    Parcel,
    ParcelFate,
    Repair,
    classify,
    parcel_fate,
)
from oms.domain.order import OrderStatus as S

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ON_SHELF = Parcel(scanned=True)  # label printed and scanned, nothing pushed
PUSHED_ON_SHELF = Parcel(tracking_pushed=True, scanned=True, pushed_at=NOW - timedelta(hours=1))
PUSHED_UNSCANNED = Parcel(tracking_pushed=True, pushed_at=NOW - timedelta(hours=1))
HANDED_OVER = Parcel(tracking_pushed=True, scanned=True, handed_over=True, pushed_at=NOW - timedelta(hours=1))
COLLECTED = Parcel(tracking_pushed=True, scanned=True, picked_up=True, pushed_at=NOW - timedelta(hours=1))


def drift_of(status, platform, *parcels, now=NOW):
    drift = classify(OrderFacts(status, tuple(parcels)), platform, now)
    return None if drift is None else (drift.kind, drift.repair)


@pytest.mark.parametrize("ours, platform, parcels, expected", [
    (S.ALLOCATED, S.CANCELLED, (), ("platform_cancelled_before_waybill", Repair.RELEASE_AND_STOP)),
    (S.PAID, S.CANCELLED, (), ("platform_cancelled_before_waybill", Repair.RELEASE_AND_STOP)),
    (S.PENDING_PAYMENT, S.CANCELLED, (), ("platform_cancelled_before_waybill", Repair.RELEASE_AND_STOP)),
    (S.PACKING, S.CANCELLED, (ON_SHELF,), ("platform_cancelled_in_warehouse", Repair.RELEASE_AND_STOP)),
    (S.PACKING, S.CANCELLED, (PUSHED_ON_SHELF,), ("platform_cancelled_in_warehouse", Repair.RELEASE_AND_STOP)),
    (S.PACKING, S.CANCELLED, (HANDED_OVER,), ("platform_cancelled_after_handover", Repair.INTERCEPTION)),
    (S.PACKING, S.CANCELLED, (PUSHED_UNSCANNED,), ("platform_cancelled_after_handover", Repair.INTERCEPTION)),
    (S.SHIPPED, S.CANCELLED, (COLLECTED,), ("platform_cancelled_after_handover", Repair.INTERCEPTION)),
    (S.DELIVERED, S.CANCELLED, (COLLECTED,), ("platform_cancelled_after_delivery", Repair.REVIEW)),
    (S.SHIPPED, S.DELIVERED, (COLLECTED,), ("delivered_we_shipped", Repair.ADOPT_STATUS)),
    (S.PACKING, S.DELIVERED, (PUSHED_ON_SHELF,), ("platform_delivered_we_packing", Repair.REVIEW)),
    (S.ALLOCATED, S.DELIVERED, (), ("platform_delivered_not_by_us", Repair.REVIEW)),
    (S.ALLOCATED, S.SHIPPED, (), ("platform_shipped_not_by_us", Repair.REVIEW)),
    (S.PACKING, S.SHIPPED, (ON_SHELF,), ("platform_shipped_not_by_us", Repair.REVIEW)),
    (S.CANCELLED, S.SHIPPED, (), ("platform_shipped_we_cancelled", Repair.REVIEW)),
    (S.PENDING_PAYMENT, S.PAID, (), ("platform_paid_we_pending", Repair.ADOPT_STATUS)),
    (S.CANCELLED, S.PAID, (), ("cancelled_here_paid_on_platform", Repair.REVIEW)),
    (S.ALLOCATED, S.PENDING_PAYMENT, (), ("platform_unpaid_we_paid", Repair.REVIEW)),
])
def test_each_difference_has_its_kind_and_repair(ours, platform, parcels, expected):
    assert drift_of(ours, platform, *parcels) == expected


@pytest.mark.parametrize("ours, platform, parcels", [
    (S.CANCELLED, S.CANCELLED, ()),
    (S.PACKING, S.SHIPPED, (PUSHED_ON_SHELF,)),  # the platform calls our pushed number shipped
    (S.SHIPPED, S.SHIPPED, (COLLECTED,)),
    (S.DELIVERED, S.SHIPPED, (COLLECTED,)),  # the platform is behind the carrier
    (S.ALLOCATED, S.PAID, ()),  # we are ahead of the platform
    (S.BACKORDERED, S.PAID, ()),
    (S.PACKING, S.PAID, (ON_SHELF,)),  # not pushed yet: write-back's and sla-watch's business
    (S.PACKING, S.PAID, (PUSHED_ON_SHELF,)),  # pushed an hour ago: within the grace
    (S.DELIVERED, S.DELIVERED, (COLLECTED,)),
])
def test_expected_lags_and_agreement_are_no_drift(ours, platform, parcels):
    assert drift_of(ours, platform, *parcels) is None


def test_a_pushed_number_the_platform_ignores_past_the_grace_is_a_drift():
    pushed = Parcel(tracking_pushed=True, scanned=True, pushed_at=NOW - TRACKING_GRACE - timedelta(minutes=1))
    assert drift_of(S.PACKING, S.PAID, pushed) == ("tracking_not_on_platform", Repair.REVIEW)
    assert drift_of(S.PACKING, S.PAID, pushed, now=NOW - timedelta(minutes=2)) is None


def test_a_voided_parcel_does_not_count_as_on_its_way():
    voided = Parcel(tracking_pushed=True, voided=True, pushed_at=NOW - timedelta(hours=1))
    assert drift_of(S.ALLOCATED, S.CANCELLED, voided) == ("platform_cancelled_before_waybill",
                                                          Repair.RELEASE_AND_STOP)


def test_one_parcel_on_its_way_makes_the_whole_cancellation_an_interception():
    assert drift_of(S.PACKING, S.CANCELLED, ON_SHELF, HANDED_OVER) == ("platform_cancelled_after_handover",
                                                                     Repair.INTERCEPTION)


@pytest.mark.parametrize("parcel, fate", [
    (Parcel(), ParcelFate.STOP),  # label only: nobody was told, nothing left
    (ON_SHELF, ParcelFate.STOP),
    (PUSHED_ON_SHELF, ParcelFate.STOP),  # the handover decides, not the push
    (PUSHED_UNSCANNED, ParcelFate.INTERCEPT),  # may have left unscanned: the safe side
    (HANDED_OVER, ParcelFate.INTERCEPT),
    (Parcel(handed_over=True), ParcelFate.INTERCEPT),
    (COLLECTED, ParcelFate.INTERCEPT),
])
def test_the_handover_decides_whether_a_cancelled_parcel_is_stopped_or_intercepted(parcel, fate):
    assert parcel_fate(parcel) == fate
