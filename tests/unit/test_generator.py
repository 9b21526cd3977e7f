"""The order generator: reproducible, realistically dirty, and honest about its dirt."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import phonenumbers
import pytest

from sandbox.generator import DIRT_RATES, advance, populate
from sandbox.geography import GEOGRAPHY, UNKNOWN_PROVINCE, is_known_province
from sandbox.model import SandboxState

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
STANDARD_PROVINCES = {standard for standard, *_ in GEOGRAPHY}


def fresh_orders(seed: int = 7, count: int = 300, **options):
    state = SandboxState()
    populate(state, "shop", count=count, seed=seed, now=NOW, **options)
    return state.orders["shop"]


@pytest.fixture(scope="module")
def many_orders():
    """2000 orders once each (repeats removed), shared by the dirt tests."""
    return list({id(order): order for order in fresh_orders(seed=11, count=2000)}.values())


def with_defect(orders, defect):
    return [order for order in orders if defect in order.defects]


def test_the_same_seed_and_time_give_the_same_orders_on_fresh_states():
    assert fresh_orders(seed=3) == fresh_orders(seed=3)


def test_a_different_seed_gives_different_orders():
    first, second = fresh_orders(seed=3), fresh_orders(seed=4)
    assert [o.receiver_name for o in first] != [o.receiver_name for o in second]
    assert [o.created_at for o in first] != [o.created_at for o in second]


def test_populate_adds_exactly_the_requested_orders_and_returns_each_once():
    state = SandboxState()
    returned = populate(state, "shop", count=500, seed=5, now=NOW)
    listed = state.orders["shop"]
    assert len(returned) == 500
    assert len({id(order) for order in listed}) == 500
    assert len(listed) == 500 + len(with_defect(returned, "repeated"))


def test_every_kind_of_dirt_appears_in_two_thousand_orders(many_orders):
    seen = Counter(defect for order in many_orders for defect in order.defects)
    assert set(DIRT_RATES) <= set(seen), f"never generated: {set(DIRT_RATES) - set(seen)}"


def test_dirt_names_match_what_the_order_really_holds(many_orders):
    assert all(o.phone is None for o in with_defect(many_orders, "missing_phone"))
    assert all(o.address is None for o in with_defect(many_orders, "missing_address"))
    assert all(o.province is None for o in with_defect(many_orders, "missing_province"))
    assert all(
        o.province == UNKNOWN_PROVINCE for o in with_defect(many_orders, "unknown_province")
    )
    for order in with_defect(many_orders, "province_alias"):
        assert order.province not in STANDARD_PROVINCES and is_known_province(order.province)
    for order in with_defect(many_orders, "phone_fullwidth"):
        assert "１" in order.phone or "８" in order.phone or "３" in order.phone
    assert all(
        any(line.sku is None for line in o.lines)
        for o in with_defect(many_orders, "line_without_sku")
    )
    assert all(
        any(line.quantity == 0 for line in o.lines)
        for o in with_defect(many_orders, "zero_quantity")
    )


def test_an_order_without_province_dirt_carries_a_standard_province(many_orders):
    province_dirt = {"province_alias", "unknown_province", "missing_province"}
    clean = [o for o in many_orders if not o.defects & province_dirt]
    assert clean and all(o.province in STANDARD_PROVINCES for o in clean)


def test_every_phone_spelling_except_the_broken_ones_is_a_valid_chinese_number(many_orders):
    broken = {"phone_too_short", "missing_phone"}
    for order in many_orders:
        if order.defects & broken:
            continue
        number = phonenumbers.parse(order.phone, "CN")
        assert phonenumbers.is_valid_number(number), order.phone


def test_too_short_phones_are_invalid(many_orders):
    for order in with_defect(many_orders, "phone_too_short"):
        assert not phonenumbers.is_valid_number(phonenumbers.parse(order.phone, "CN"))


def test_a_repeated_order_is_the_same_object_right_after_itself():
    listed = fresh_orders(seed=11, count=2000)
    repeats = [i for i in range(1, len(listed)) if listed[i] is listed[i - 1]]
    assert repeats, "expected some repeated orders in 2000"
    assert all("repeated" in listed[i].defects for i in repeats)
    assert len(repeats) == len(with_defect(listed, "repeated")) // 2


def test_repeat_buyers_come_back_with_the_same_name_phone_and_place(many_orders):
    def who_and_where(order):
        return (order.buyer_id, order.receiver_name, order.phone, order.city, order.district)

    repeaters = with_defect(many_orders, "repeat_buyer")
    seen = Counter(who_and_where(order) for order in many_orders)
    assert repeaters
    assert all(seen[who_and_where(order)] >= 2 for order in repeaters)
    # unless one of the two orders had its address edited later, the address matches too
    same_address = Counter((o.buyer_id, o.address) for o in many_orders)
    assert sum(same_address[(o.buyer_id, o.address)] >= 2 for o in repeaters) > len(repeaters) / 2


def test_times_stay_in_the_span_and_no_update_precedes_its_order(many_orders):
    for order in many_orders:
        assert NOW - timedelta(hours=48) <= order.created_at <= NOW - timedelta(minutes=5)
        assert order.created_at <= order.updated_at <= NOW - timedelta(minutes=1)
        assert order.created_at.tzinfo is not None


def test_about_a_fifth_of_orders_were_touched_again_later(many_orders):
    late_kinds = {"address_edited", "paid_later", "cancelled_later"}
    late = [o for o in many_orders if o.defects & late_kinds]
    assert 0.14 < len(late) / len(many_orders) < 0.26


def test_most_orders_are_paid_and_every_status_occurs(many_orders):
    statuses = Counter(order.status for order in many_orders)
    assert set(statuses) == {"paid", "unpaid", "cancelled", "shipped", "delivered"}
    assert 0.72 < statuses["paid"] / len(many_orders) < 0.88


def test_orders_have_one_to_three_lines_with_two_place_prices(many_orders):
    for order in many_orders:
        assert 1 <= len(order.lines) <= 3
        for line in order.lines:
            assert 0 <= line.quantity <= 3
            assert line.unit_price == line.unit_price.quantize(Decimal("0.01"))


def test_order_and_line_ids_are_unique_across_the_shops_of_one_state():
    state = SandboxState()
    populate(state, "north", count=200, seed=1, now=NOW)
    populate(state, "south", count=200, seed=1, now=NOW)
    orders = {id(o): o for shop in state.orders.values() for o in shop}.values()
    assert len({o.order_id for o in orders}) == 400
    assert len({line.line_id for o in orders for line in o.lines}) == sum(
        len(o.lines) for o in orders
    )


def test_a_callers_sku_list_is_the_only_source_of_skus():
    orders = fresh_orders(count=200, skus=["A-1", "B-2"])
    assert {line.sku for o in orders for line in o.lines} <= {"A-1", "B-2", None}


def test_advance_moves_changed_orders_to_just_before_now():
    state = SandboxState()
    populate(state, "shop", count=300, seed=2, now=NOW)
    later = NOW + timedelta(hours=2)
    changed = advance(state, "shop", seed=9, now=later, fraction=0.2)
    paid_before = 300 * 0.8
    assert 0.5 * paid_before * 0.2 < len(changed) < 1.5 * paid_before * 0.2
    for order in changed:
        assert later - timedelta(minutes=10) <= order.updated_at <= later
        assert order.defects & {"cancelled_later", "address_edited"}
    assert any(order.status == "cancelled" for order in changed)


def test_advance_is_seeded():
    def changes(seed):
        state = SandboxState()
        populate(state, "shop", count=200, seed=2, now=NOW)
        changed = advance(state, "shop", seed=seed, now=NOW + timedelta(hours=1))
        return [(o.order_id, o.status, o.address, o.updated_at) for o in changed]

    assert changes(9) == changes(9)
    assert changes(9) != changes(10)
