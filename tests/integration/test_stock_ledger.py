"""The stock ledger on both databases: reservations and totals move together, the audit
repairs drift, a tracking push freezes stock until the carrier collects the parcel, and a
late cancellation stops a parcel still in the warehouse but intercepts one handed over."""

from __future__ import annotations

from datetime import timedelta

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select, update

from oms.db.allocation import AllocationPolicy, allocate_batch
from oms.db.orders import store_orders
from oms.db.review import open_entries
from oms.db.schema import interceptions, orders, reservations, shipments, stock, stock_audits, warehouses
from oms.db.shipping import (
    ShipmentDraft,
    cancel_after_waybill,
    record_pickups,
    record_shipments,
    waybills_to_cancel,
)
from oms.db.tracking import due_pushes, record_attempt
from oms.db.stock import (
    audit_stock,
    consume_reservations,
    receive_stock,
    release_lapsed_holds,
    release_reservations,
    stocked_sku_ids,
)
from oms.domain.order import OrderStatus
from tests.factories import make_order
from tests.stockworld import NOW, build_world, default_policy, ledger_problems, place_orders, statuses, units

SKUS = ("SKU-A", "SKU-B", "SKU-C")


def _allocate(conn, policy: AllocationPolicy | None = None, now=NOW):
    return allocate_batch(conn, limit=500, now=now, actor="test", policy=policy or default_policy())


def test_reserved_totals_and_rows_stay_in_step_through_any_sequence(db):
    """Hypothesis drives orders, allocation, cancellation, pushes, pickups and deliveries
    in any order; after every step the totals equal their rows, nothing reserved exceeds
    what is on hand, and every unit received is either on hand or left with a parcel."""
    engine = db

    class Ledger(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            with engine.begin() as conn:
                for table in (stock_audits, shipments, reservations, stock):
                    conn.execute(table.delete())
                conn.execute(orders.delete())
                self.ids = build_world(conn, {("WH-SH", sku): 4 for sku in SKUS} | {("WH-GZ", "SKU-A"): 3})
            self.received = 4 * len(SKUS) + 3
            self.next_number = 1

        @rule(wanted=st.lists(st.dictionaries(st.sampled_from(SKUS), st.integers(1, 4), min_size=1, max_size=3),
                              min_size=1, max_size=4))
        def orders_arrive_and_are_allocated(self, wanted):
            with engine.begin() as conn:
                place_orders(conn, wanted, first_number=self.next_number)
                _allocate(conn)
            self.next_number += len(wanted)

        @rule(pick=st.integers(0, 50))
        def an_allocated_order_is_cancelled(self, pick):
            with engine.begin() as conn:
                allocated = _orders_in(conn, OrderStatus.ALLOCATED)
                if allocated:
                    order_id = allocated[pick % len(allocated)]
                    release_reservations(conn, [order_id], NOW)
                    conn.execute(update(orders).where(orders.c.id == order_id)
                                 .values(status=OrderStatus.CANCELLED.value))

        @rule(pick=st.integers(0, 50), collect=st.booleans())
        def an_allocated_order_ships(self, pick, collect):
            with engine.begin() as conn:
                allocated = _orders_in(conn, OrderStatus.ALLOCATED)
                if not allocated:
                    return
                order_id = allocated[pick % len(allocated)]
                for warehouse_id in _parcel_houses(conn, order_id):
                    number = f"SF{order_id:06d}{warehouse_id}"
                    record_shipments(conn, [ShipmentDraft(order_id, warehouse_id, "SF", number)], NOW)
                    if collect:
                        record_pickups(conn, {number: NOW}, NOW)

        @rule(sku=st.sampled_from(SKUS), arrived=st.integers(1, 5))
        def a_delivery_arrives(self, sku, arrived):
            with engine.begin() as conn:
                receive_stock(conn, [(_house(conn, "WH-SH"), self.ids[sku], arrived)], NOW)
                _allocate(conn)
            self.received += arrived

        @invariant()
        def ledger_is_sound(self):
            with engine.connect() as conn:
                assert ledger_problems(conn) == []
                on_hand = sum(row.on_hand for row in conn.execute(select(stock.c.on_hand)))
                left = sum(conn.execute(select(reservations.c.quantity)
                                        .where(reservations.c.state == "consumed")).scalars())
            assert on_hand + left == self.received

    run_state_machine_as_test(Ledger, settings=settings(
        max_examples=12, stateful_step_count=8, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))


def _orders_in(conn, status: OrderStatus) -> list[int]:
    return list(conn.execute(select(orders.c.id).where(orders.c.status == status.value).order_by(orders.c.id)).scalars())


def _parcel_houses(conn, order_id: int) -> list[int]:
    return sorted(set(conn.execute(select(reservations.c.warehouse_id).where(
        reservations.c.order_id == order_id, reservations.c.state == "held")).scalars()))


def _house(conn, code: str) -> int:
    return conn.execute(select(warehouses.c.id).where(warehouses.c.code == code)).scalar_one()


def test_drift_injected_into_the_totals_is_found_repaired_and_recorded(db):
    with db.begin() as conn:
        build_world(conn, {("WH-SH", "SKU-A"): 10, ("WH-SH", "SKU-B"): 10, ("WH-GZ", "SKU-A"): 5})
        place_orders(conn, [{"SKU-A": 3}, {"SKU-B": 2}])
        _allocate(conn)
        # Someone wrote the totals outside the ledger: one too high, one forgotten.
        conn.execute(update(stock).values(reserved=stock.c.reserved + 4).where(stock.c.reserved == 3))
        conn.execute(update(stock).values(reserved=0).where(stock.c.reserved == 2))
    with db.begin() as conn:
        assert len(ledger_problems(conn)) == 2
        repairs = audit_stock(conn, NOW, stocked_sku_ids(conn))
    assert sorted((r.warehouse, r.sku, r.recorded_reserved, r.actual_reserved) for r in repairs) == [
        ("WH-SH", "SKU-A", 7, 3), ("WH-SH", "SKU-B", 0, 2)]
    with db.connect() as conn:
        assert ledger_problems(conn) == []
        recorded = conn.execute(select(stock_audits.c.recorded_reserved, stock_audits.c.actual_reserved)).all()
        assert sorted(tuple(row) for row in recorded) == [(0, 2), (7, 3)]
        # A second audit finds nothing more to repair.
    with db.begin() as conn:
        assert audit_stock(conn, NOW, stocked_sku_ids(conn)) == []


def _ship_and_push(conn, order_number: int = 1):
    order_id = conn.execute(select(orders.c.id).where(orders.c.platform_order_id == f"ORDER-{order_number}")).scalar_one()
    (warehouse_id,) = _parcel_houses(conn, order_id)
    record_shipments(conn, [ShipmentDraft(order_id, warehouse_id, "SF", f"SF{order_number:09d}")], NOW)
    return order_id


def _pushed_then_cancelled(db, **warehouse_facts):
    """Order 1 allocated, waybill SF000000001 issued and pushed, the warehouse facts set
    on its shipment; then the platform cancels it (through ingest)."""
    with db.begin() as conn:
        build_world(conn, {("WH-SH", "SKU-A"): 1})
        place_orders(conn, [{"SKU-A": 1}])
        _allocate(conn)
        order_id = _ship_and_push(conn)
        (pending,) = due_pushes(conn, NOW, 10)
        record_attempt(conn, pending, outcome="success", now=NOW)
        if warehouse_facts:
            conn.execute(update(shipments).where(shipments.c.order_id == order_id).values(**warehouse_facts))
    cancelled = make_order(1, status=OrderStatus.CANCELLED, minutes_later=30)
    cancelled.lines[0].sku = "SKU-A"
    with db.begin() as conn:
        store_orders(conn, [cancelled], now=NOW + timedelta(minutes=30))
    return order_id


def _order_status(conn, order_id: int) -> str:
    return conn.execute(select(orders.c.status).where(orders.c.id == order_id)).scalar_one()


def test_a_cancellation_of_a_pushed_parcel_still_in_the_warehouse_stops_it_and_releases_the_stock(db):
    order_id = _pushed_then_cancelled(db, warehouse_step="packed")
    with db.connect() as conn:
        assert units(conn)["WH-SH/SKU-A"] == (1, 0)  # the lock of the push is undone too
        assert _order_status(conn, order_id) == "cancelled"
        assert [row["tracking_number"] for row in waybills_to_cancel(conn)] == ["SF000000001"]
        assert conn.execute(select(interceptions)).all() == []
        assert ledger_problems(conn) == []
    with db.begin() as conn:
        place_orders(conn, [{"SKU-A": 1}], first_number=2)
        assert len(_allocate(conn).allocated) == 1  # the unit is sellable again


def test_a_cancellation_after_handover_raises_an_interception_and_keeps_the_stock_locked(db):
    order_id = _pushed_then_cancelled(db, warehouse_step="handed_over", handed_over_at=NOW + timedelta(minutes=5))
    with db.begin() as conn:
        # Another channel sells the same last unit: there is none to give it.
        place_orders(conn, [{"SKU-A": 1}], first_number=2)
        second = _allocate(conn)
    assert second.allocated == [] and len(second.backordered) == 1
    with db.connect() as conn:
        assert units(conn)["WH-SH/SKU-A"] == (1, 1)  # still on hand, still reserved
        assert conn.execute(select(reservations.c.state).where(reservations.c.order_id == order_id)).scalar_one() == "locked"
        assert _order_status(conn, order_id) == "packing"
        raised = conn.execute(select(interceptions.c.order_id, interceptions.c.tracking_number,
                                     interceptions.c.state)).all()
        assert [tuple(row) for row in raised] == [(order_id, "SF000000001", "open")]
        entries = [e for e in open_entries(conn) if e["stage"] == "cancel"]
        assert [e["platform_order_id"] for e in entries] == ["ORDER-1"]
        assert "intercept parcel SF000000001" in entries[0]["reasons"][0]
    with db.begin() as conn:
        back = record_pickups(conn, {"SF000000001": NOW + timedelta(hours=1)}, NOW + timedelta(hours=1))
    assert [row["order_id"] for row in back] == [order_id]  # a person turns it into a return
    with db.connect() as conn:
        assert units(conn)["WH-SH/SKU-A"] == (0, 0)  # the unit left with the parcel
        assert ledger_problems(conn) == []


def test_a_pushed_parcel_nobody_scanned_counts_as_possibly_gone_and_is_intercepted(db):
    order_id = _pushed_then_cancelled(db)
    with db.connect() as conn:
        assert units(conn)["WH-SH/SKU-A"] == (1, 1)
        assert _order_status(conn, order_id) == "packing"
        assert [row.state for row in conn.execute(select(interceptions.c.state))] == ["open"]
        assert "no warehouse scan" in conn.execute(select(interceptions.c.reason)).scalar_one()


def test_a_second_cancellation_report_changes_nothing(db):
    order_id = _pushed_then_cancelled(db, handed_over_at=NOW + timedelta(minutes=5))
    with db.begin() as conn:
        again = cancel_after_waybill(conn, [order_id], NOW + timedelta(hours=1), "test", reason="cancelled")
    assert again.intercepted == [order_id] and again.raised == []
    with db.connect() as conn:
        assert len(conn.execute(select(interceptions)).all()) == 1
        assert len([e for e in open_entries(conn) if e["stage"] == "cancel"]) == 1
        assert units(conn)["WH-SH/SKU-A"] == (1, 1)


def test_a_cancelled_order_sharing_a_box_with_a_live_one_is_unpacked_not_voided(db):
    with db.begin() as conn:
        build_world(conn, {("WH-SH", "SKU-A"): 1, ("WH-SH", "SKU-B"): 1})
        place_orders(conn, [{"SKU-A": 1}, {"SKU-B": 1}])
        _allocate(conn)
        first, second = (_ship_and_push(conn, n) for n in (1, 2))
        conn.execute(update(shipments).values(tracking_number="SF-BOX", warehouse_step="packed"))
    cancelled = make_order(1, status=OrderStatus.CANCELLED, minutes_later=30)
    cancelled.lines[0].sku = "SKU-A"
    with db.begin() as conn:
        store_orders(conn, [cancelled], now=NOW + timedelta(minutes=30))
    with db.connect() as conn:
        # Voiding the box's waybill would stop the other order's goods too.
        assert waybills_to_cancel(conn) == []
        assert _order_status(conn, second) == "packing"
        marked = dict(conn.execute(select(shipments.c.order_id, shipments.c.cancel_requested_at)).all())
        assert marked[first] is not None and marked[second] is None  # a scan of the box stops it
        (entry,) = [e for e in open_entries(conn) if e["stage"] == "cancel"]
        assert entry["platform_order_id"] == "ORDER-1" and "take this order's items out" in entry["reasons"][0]
        assert ledger_problems(conn) == []


def test_a_cancellation_before_any_push_releases_the_stock_and_voids_the_waybill(db):
    with db.begin() as conn:
        build_world(conn, {("WH-SH", "SKU-A"): 1})
        place_orders(conn, [{"SKU-A": 1}])
        _allocate(conn)
        order_id = _ship_and_push(conn)
    cancelled = make_order(1, status=OrderStatus.CANCELLED, minutes_later=30)
    cancelled.lines[0].sku = "SKU-A"
    with db.begin() as conn:
        store_orders(conn, [cancelled], now=NOW + timedelta(minutes=30))
    with db.connect() as conn:
        assert units(conn)["WH-SH/SKU-A"] == (1, 0)
        assert conn.execute(select(orders.c.status).where(orders.c.id == order_id)).scalar_one() == "cancelled"
        assert conn.execute(select(shipments.c.status).where(shipments.c.order_id == order_id)).scalar_one() == "voided"
        assert due_pushes(conn, NOW + timedelta(hours=1), 10) == []  # no platform is told about a voided parcel


def test_an_unpaid_hold_lapses_and_gives_its_stock_back_while_a_paid_one_keeps_it(db):
    policy = default_policy()
    policy = AllocationPolicy(rules=policy.rules, sites=policy.sites, timezone=policy.timezone,
                              unpaid_hold=timedelta(minutes=30))
    with db.begin() as conn:
        build_world(conn, {("WH-SH", "SKU-A"): 2})
        place_orders(conn, [{"SKU-A": 1}, {"SKU-A": 1}], status=OrderStatus.PENDING_PAYMENT)
        conn.execute(update(orders).values(created_at=NOW))
        held = _allocate(conn, policy, now=NOW + timedelta(minutes=1))
    assert len(held.held_unpaid) == 2
    paid = make_order(1, minutes_later=10)
    paid.lines[0].sku = paid.lines[0].title = "SKU-A"
    with db.begin() as conn:
        assert units(conn)["WH-SH/SKU-A"] == (2, 2)
        store_orders(conn, [paid], now=NOW + timedelta(minutes=10))
        confirmed = _allocate(conn, policy, now=NOW + timedelta(minutes=11))
        lapsed = release_lapsed_holds(conn, NOW + timedelta(minutes=31))
    assert len(confirmed.confirmed_holds) == 1 and len(lapsed) == 1
    with db.connect() as conn:
        assert units(conn)["WH-SH/SKU-A"] == (2, 1)
        assert statuses(conn) == {"allocated": 1, "pending_payment": 1}
        assert ledger_problems(conn) == []


def test_releasing_the_same_order_twice_gives_its_units_back_once(db):
    with db.begin() as conn:
        build_world(conn, {("WH-SH", "SKU-A"): 5})
        place_orders(conn, [{"SKU-A": 2}])
        _allocate(conn)
        order_id = _orders_in(conn, OrderStatus.ALLOCATED)[0]
        assert release_reservations(conn, [order_id], NOW).units == 2
        assert release_reservations(conn, [order_id], NOW).units == 0
        assert consume_reservations(conn, [order_id], NOW) == 0
        assert units(conn)["WH-SH/SKU-A"] == (5, 0)
