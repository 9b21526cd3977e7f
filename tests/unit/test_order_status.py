"""The order state machine: one table, checked moves, history-ready changes."""

from datetime import datetime, timezone

import pytest

from oms.domain.errors import IllegalTransition
from oms.domain.order import (
    TERMINAL,
    TRANSITIONS,
    OrderStatus,
    apply_transition,
    platform_status_change,
)

AT = datetime(2026, 11, 1, tzinfo=timezone.utc)
S = OrderStatus


def test_every_status_has_a_row_in_the_transition_table():
    assert set(TRANSITIONS) == set(OrderStatus)


def test_an_allowed_move_yields_a_change_with_who_when_and_why():
    change = apply_transition(S.PAID, S.ALLOCATED, at=AT, actor="fulfil", reason="reserved in WH-SH")
    assert (change.from_status, change.to_status, change.at, change.actor, change.reason) == (
        S.PAID, S.ALLOCATED, AT, "fulfil", "reserved in WH-SH")


@pytest.mark.parametrize("current, target", [
    (S.SHIPPED, S.PAID),
    (S.CANCELLED, S.PAID),
    (S.DELIVERED, S.SHIPPED),
    (S.PENDING_PAYMENT, S.SHIPPED),
    (S.PAID, S.DELIVERED),
])
def test_a_forbidden_move_raises(current, target):
    with pytest.raises(IllegalTransition) as raised:
        apply_transition(current, target, at=AT, actor="test", reason="")
    assert raised.value.current == current and raised.value.target == target


def test_terminal_statuses_are_cancelled_delivered_and_refunded():
    assert TERMINAL == {S.CANCELLED, S.DELIVERED, S.REFUNDED}


def test_only_a_parcel_on_its_way_or_delivered_can_be_refunded():
    assert apply_transition(S.DELIVERED, S.REFUNDED, at=AT, actor="after-sales", reason="").to_status == S.REFUNDED
    with pytest.raises(IllegalTransition):
        apply_transition(S.PAID, S.REFUNDED, at=AT, actor="after-sales", reason="")


def test_an_order_seen_for_the_first_time_may_start_anywhere():
    assert apply_transition(None, S.SHIPPED, at=AT, actor="ingest", reason="").from_status is None


def test_platform_saying_paid_does_not_undo_our_allocation():
    assert platform_status_change(S.ALLOCATED, S.PAID) is None


def test_platform_cancelling_an_allocated_order_cancels_it():
    assert platform_status_change(S.ALLOCATED, S.CANCELLED) == S.CANCELLED


def test_platform_report_that_would_go_backwards_is_ignored():
    assert platform_status_change(S.DELIVERED, S.PAID) is None
    assert platform_status_change(S.SHIPPED, S.SHIPPED) is None


def test_a_platform_cancelling_a_shipped_order_is_left_to_the_shipping_records():
    # Only the shipping records know whether the parcel can still be stopped.
    assert platform_status_change(S.SHIPPED, S.CANCELLED) is None
