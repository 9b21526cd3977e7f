"""Warehouse routing rules: which warehouse ships an order, and the sentences that say why."""

from decimal import Decimal
from pathlib import Path

import pytest

from oms.domain.allocation import DemandLine
from oms.domain.errors import ShortLine
from oms.domain.geography import CAPITALS, parcel_zone, province_distance_km
from oms.domain.normalize import PROVINCES
from oms.domain.routing import (
    OrderToRoute,
    RateCard,
    RoutingRules,
    RuleSpec,
    WarehouseSite,
    route_batch,
)
from oms.routing_rules import WarehouseSettings, load_routing_rules, sites_from

ROUTING_YAML = Path(__file__).resolve().parents[2] / "config" / "routing.yaml"
RULES = RoutingRules.default()

SHANGHAI, GUANGDONG, BEIJING = "上海市", "广东省", "北京市"


def site(code, province, priority=10, capacity=None, booked=0, rate_card=None):
    return WarehouseSite(code, province, priority, capacity, booked, rate_card)


def order(order_id, *lines, province=SHANGHAI, **details):
    demand = tuple(DemandLine(order_id * 10 + i, sku, quantity) for i, (sku, quantity) in enumerate(lines))
    return OrderToRoute(order_id, demand, province, **details)


def card(**first_kg):
    prices = {zone: Decimal(str(price)) for zone, price in first_kg.items()}
    return RateCard(first_kg=prices, extra_kg=dict.fromkeys(prices, Decimal(2)))


def rules(*names, **settings):
    specs = tuple(name if isinstance(name, RuleSpec) else RuleSpec(name) for name in names)
    return RoutingRules(rules=specs or RULES.rules, **settings)


def shipped_from(plan, order_id):
    return [parcel.warehouse for parcel in plan.decisions[order_id].parcels]


SH = site("WH-SH", SHANGHAI, priority=10)
GZ = site("WH-GZ", GUANGDONG, priority=20)
BJ = site("WH-BJ", BEIJING, priority=30)


# --- choosing one warehouse ---------------------------------------------------------


def test_the_nearest_warehouse_ships_an_order_every_warehouse_can_fill():
    stock = {("WH-SH", "A"): 5, ("WH-GZ", "A"): 5}
    plan = route_batch([order(1, ("A", 1), province="湖南省")], stock, [SH, GZ], rules())
    assert shipped_from(plan, 1) == ["WH-GZ"]  # Changsha is nearer Guangzhou than Shanghai


def test_a_warehouse_that_ships_the_whole_order_beats_a_nearer_one_that_lacks_a_line():
    stock = {("WH-SH", "A"): 5, ("WH-GZ", "A"): 5, ("WH-GZ", "B"): 1}
    plan = route_batch([order(1, ("A", 1), ("B", 1))], stock, [SH, GZ], rules())
    assert shipped_from(plan, 1) == ["WH-GZ"]
    assert not plan.decisions[1].split


def test_a_warehouse_whose_parcels_for_today_are_all_booked_is_passed_over():
    full = site("WH-SH", SHANGHAI, capacity=100, booked=100)
    stock = {("WH-SH", "A"): 5, ("WH-GZ", "A"): 5}
    plan = route_batch([order(1, ("A", 1))], stock, [full, GZ], rules())
    assert shipped_from(plan, 1) == ["WH-GZ"]
    assert "capacity: drops WH-SH (100 of 100 parcels booked)" in plan.decisions[1].explanation[0]


def test_parcels_booked_earlier_in_the_batch_use_up_capacity():
    small = site("WH-SH", SHANGHAI, capacity=3, booked=1)
    stock = {("WH-SH", "A"): 9, ("WH-GZ", "A"): 9}
    plan = route_batch([order(n, ("A", 1)) for n in range(1, 5)], stock, [small, GZ], rules())
    assert [shipped_from(plan, n) for n in range(1, 5)] == [["WH-SH"], ["WH-SH"], ["WH-GZ"], ["WH-GZ"]]
    assert plan.parcels == {"WH-SH": 2, "WH-GZ": 2}


def test_warehouses_within_the_distance_tolerance_are_equally_near_and_the_cheapest_wins():
    # Hangzhou is 165 km from Shanghai: with 300 km of tolerance both count as near.
    dear = site("WH-SH", SHANGHAI, priority=10, rate_card=card(local=9, near=9))
    cheap = site("WH-HZ", "浙江省", priority=20, rate_card=card(local=5, near=7))
    stock = {("WH-SH", "A"): 5, ("WH-HZ", "A"): 5}
    plan = route_batch([order(1, ("A", 1))], stock, [dear, cheap], RULES)
    decision = plan.decisions[1]
    assert shipped_from(plan, 1) == ["WH-HZ"]
    assert "cheapest: WH-HZ (¥7.00, near) is cheapest for a 0.5 kg parcel" in decision.explanation[4]


def test_prices_within_the_price_tolerance_tie_and_priority_decides():
    first = site("WH-SH", SHANGHAI, priority=10, rate_card=card(far=10.40))
    second = site("WH-BJ", BEIJING, priority=20, rate_card=card(far=10))
    stock = {("WH-SH", "A"): 5, ("WH-BJ", "A"): 5}
    tolerant = rules("capacity", "whole_order", RuleSpec("cheapest", tolerance=Decimal("0.50")), "priority")
    strict = rules("capacity", "whole_order", "cheapest", "priority")
    an_order = order(1, ("A", 1), province="陕西省")
    assert shipped_from(route_batch([an_order], stock, [first, second], tolerant), 1) == ["WH-SH"]
    assert shipped_from(route_batch([an_order], stock, [first, second], strict), 1) == ["WH-BJ"]


def test_a_tie_left_after_every_rule_goes_to_the_lowest_priority_then_the_code_and_says_so():
    twin_a = site("WH-B", SHANGHAI, priority=5)
    twin_b = site("WH-A", SHANGHAI, priority=5)
    stock = {("WH-A", "A"): 1, ("WH-B", "A"): 1}
    plan = route_batch([order(1, ("A", 1))], stock, [twin_a, twin_b], rules("capacity", "whole_order"))
    assert shipped_from(plan, 1) == ["WH-A"]
    assert "still tied; the lowest priority number, then the code, picks WH-A" in plan.decisions[1].explanation[-1]


def test_a_masked_province_lets_neither_distance_nor_price_decide_and_says_so():
    stock = {("WH-SH", "A"): 5, ("WH-GZ", "A"): 5}
    plan = route_batch([order(1, ("A", 1), province=None)], stock, [GZ, SH], RULES)
    nearest, cheapest = plan.decisions[1].explanation[3:5]
    assert nearest.startswith("nearest: the receiver's province is unknown or masked")
    assert cheapest.startswith("cheapest: the receiver's province is unknown or masked")
    assert shipped_from(plan, 1) == ["WH-SH"]  # priority 10 before 20


def test_a_receiver_abroad_has_no_distance_and_is_priced_in_the_abroad_zone():
    sh = site("WH-SH", SHANGHAI, priority=10, rate_card=card(abroad=90))
    gz = site("WH-GZ", GUANGDONG, priority=20, rate_card=card(abroad=70))
    stock = {("WH-SH", "A"): 5, ("WH-GZ", "A"): 5}
    plan = route_batch([order(1, ("A", 1), province=None, country="SG")], stock, [sh, gz], RULES)
    explanation = plan.decisions[1].explanation
    assert "abroad (SG) and has no distance" in explanation[3]
    assert shipped_from(plan, 1) == ["WH-GZ"]
    assert "¥70.00, abroad" in explanation[4]


def test_a_warehouse_not_among_the_sites_is_never_used_and_negative_stock_counts_as_none():
    stock = {("WH-XX", "A"): 50, ("WH-SH", "A"): -3, ("WH-GZ", "A"): 1}
    plan = route_batch([order(1, ("A", 1)), order(2, ("A", 1))], stock, [SH, GZ], rules())
    assert shipped_from(plan, 1) == ["WH-GZ"]
    assert plan.decisions[2].short == [ShortLine("A", 1, 0)]
    assert set(plan.taken) == {("WH-GZ", "A")}


# --- splits and backorders ------------------------------------------------------------


def test_an_order_is_split_only_when_no_single_warehouse_can_ship_it_whole():
    stock = {("WH-SH", "A"): 2, ("WH-GZ", "B"): 1, ("WH-BJ", "A"): 2, ("WH-BJ", "B"): 1}
    whole = route_batch([order(1, ("A", 2), ("B", 1))], stock, [SH, GZ, BJ], rules())
    assert shipped_from(whole, 1) == ["WH-BJ"]  # far, but whole
    scattered = {("WH-SH", "A"): 2, ("WH-GZ", "B"): 1}
    split = route_batch([order(1, ("A", 2), ("B", 1))], scattered, [SH, GZ, BJ], rules())
    assert split.decisions[1].split
    assert {parcel.warehouse: parcel.lines for parcel in split.decisions[1].parcels} == {
        "WH-SH": ((10, "A", 2),), "WH-GZ": ((11, "B", 1),)}
    assert split.parcels == {"WH-SH": 1, "WH-GZ": 1}


def test_a_split_uses_the_fewest_parcels_and_may_split_one_line():
    stock = {("WH-SH", "A"): 3, ("WH-GZ", "A"): 1, ("WH-BJ", "A"): 4}
    plan = route_batch([order(1, ("A", 5), province=SHANGHAI)], stock, [SH, GZ, BJ], rules())
    parcels = plan.decisions[1].parcels
    assert [(p.warehouse, p.lines) for p in parcels] == [("WH-SH", ((10, "A", 3),)), ("WH-BJ", ((10, "A", 2),))]
    assert "splits into 2 parcels, the fewest that can ship it" in plan.decisions[1].explanation[-1]


def test_with_splitting_switched_off_the_order_waits_and_the_reason_names_the_missing_units():
    stock = {("WH-SH", "A"): 2, ("WH-GZ", "A"): 1}
    plan = route_batch([order(1, ("A", 3))], stock, [SH, GZ], rules(allow_split=False))
    decision = plan.decisions[1]
    assert decision.parcels == () and not plan.taken
    assert decision.short == [ShortLine("A", wanted=3, available=2)]
    assert decision.backorder_reason == (
        "No single warehouse can ship the whole order and splitting is switched off: "
        "A is 1 unit short (3 wanted, 2 free in any one warehouse).")


def test_an_order_that_needs_more_parcels_than_allowed_waits():
    stock = {("WH-SH", "A"): 1, ("WH-GZ", "A"): 1, ("WH-BJ", "A"): 1}
    plan = route_batch([order(1, ("A", 3))], stock, [SH, GZ, BJ], rules(max_parcels=2))
    assert plan.decisions[1].backorder_reason.startswith("The order would need more than 2 parcels")


def test_an_order_no_warehouse_can_fill_takes_nothing_and_does_not_block_a_smaller_later_one():
    stock = {("WH-SH", "A"): 2}
    plan = route_batch([order(1, ("A", 3)), order(2, ("A", 2))], stock, [SH], rules())
    assert plan.decisions[1].parcels == ()
    assert plan.decisions[1].backorder_reason == (
        "Not enough stock: A is 1 unit short (3 wanted, 2 free across the warehouses that can ship today).")
    assert shipped_from(plan, 2) == ["WH-SH"]
    assert plan.taken == {("WH-SH", "A"): 2}


def test_five_units_for_seven_orders_ship_exactly_five_oldest_first():
    plan = route_batch([order(n, ("A", 1)) for n in range(1, 8)], {("WH-SH", "A"): 5}, [SH], rules())
    assert [n for n, d in plan.decisions.items() if d.parcels] == [1, 2, 3, 4, 5]
    assert plan.taken == {("WH-SH", "A"): 5}


def test_two_lines_of_the_same_sku_are_counted_together():
    plan = route_batch([order(1, ("A", 1), ("A", 1))], {("WH-SH", "A"): 1}, [SH], rules(allow_split=False))
    assert plan.decisions[1].short == [ShortLine("A", wanted=2, available=1)]


def test_when_every_warehouse_with_stock_is_at_capacity_the_reason_says_so():
    full = site("WH-SH", SHANGHAI, capacity=10, booked=10)
    plan = route_batch([order(1, ("A", 1))], {("WH-SH", "A"): 5}, [full], rules())
    decision = plan.decisions[1]
    assert decision.backorder_reason == (
        "Every warehouse with stock for it is at today's parcel capacity: WH-SH (10 of 10 parcels booked).")
    assert decision.short == []


def test_stock_only_in_a_full_warehouse_is_named_in_the_reason():
    full = site("WH-GZ", GUANGDONG, capacity=10, booked=10)
    plan = route_batch([order(1, ("A", 1))], {("WH-GZ", "A"): 5}, [SH, full], rules())
    assert "WH-GZ (10 of 10 parcels booked) holds more of it but can book no parcel today" in (
        plan.decisions[1].backorder_reason)


# --- merging into open parcels ---------------------------------------------------------


def test_an_order_joins_the_open_parcel_of_the_same_buyer_and_address_even_if_farther():
    stock = {("WH-SH", "A"): 5, ("WH-GZ", "A"): 5}
    plan = route_batch([order(1, ("A", 1), merge_key="k1")], stock, [SH, GZ], rules(),
                       open_parcels={"k1": {"WH-GZ"}})
    decision = plan.decisions[1]
    assert shipped_from(plan, 1) == ["WH-GZ"]
    assert decision.parcels[0].joins_open_parcel
    assert decision.explanation[1] == "merge: joins the open parcel of the same buyer and address in WH-GZ."
    assert plan.parcels == {}  # riding along books no new parcel


def test_a_second_order_of_the_buyer_in_the_batch_joins_the_parcel_the_first_one_opened():
    stock = {("WH-SH", "A"): 1, ("WH-GZ", "A"): 5}
    batch = [order(1, ("A", 1), province="湖南省", merge_key="k1"),
             order(2, ("A", 1), province="湖南省", merge_key="k1")]
    plan = route_batch(batch, stock, [SH, GZ], rules())
    assert shipped_from(plan, 1) == shipped_from(plan, 2) == ["WH-GZ"]
    assert plan.parcels == {"WH-GZ": 1}


def test_an_open_parcel_in_a_warehouse_that_lacks_stock_is_not_joined():
    stock = {("WH-SH", "A"): 5}
    plan = route_batch([order(1, ("A", 1), merge_key="k1")], stock, [SH, GZ], rules(),
                       open_parcels={"k1": {"WH-GZ"}})
    assert shipped_from(plan, 1) == ["WH-SH"]
    assert "cannot take the whole order (WH-GZ is short of A by 1)" in plan.decisions[1].explanation[1]


def test_with_merging_switched_off_an_open_parcel_changes_nothing():
    stock = {("WH-SH", "A"): 5, ("WH-GZ", "A"): 5}
    plan = route_batch([order(1, ("A", 1), merge_key="k1")], stock, [SH, GZ], rules(merge_enabled=False),
                       open_parcels={"k1": {"WH-GZ"}})
    assert shipped_from(plan, 1) == ["WH-SH"]
    assert plan.decisions[1].explanation[1] == "merge: merging parcels is switched off."


# --- explanations ------------------------------------------------------------------------


def test_the_explanation_has_a_sentence_per_rule_naming_it_then_the_choice():
    stock = {("WH-SH", "A"): 5, ("WH-GZ", "A"): 5, ("WH-GZ", "B"): 2}
    plan = route_batch([order(1, ("A", 1), ("B", 1), province="江苏省")], stock, [SH, GZ], RULES)
    explanation = plan.decisions[1].explanation
    assert [sentence.split(":")[0] for sentence in explanation] == [
        "capacity", "merge", "whole_order", "nearest", "cheapest", "priority", "choice"]
    assert explanation[2] == "whole_order: only WH-GZ can ship every line; drops WH-SH (short of B by 1)."
    assert explanation[-1] == "choice: WH-GZ ships the whole order in one parcel."


def test_the_nearest_rule_names_the_distances_it_compared():
    stock = {("WH-SH", "A"): 5, ("WH-GZ", "A"): 5}
    plan = route_batch([order(1, ("A", 1), province="江苏省")], stock, [SH, GZ], RULES)
    assert plan.decisions[1].explanation[3] == (
        "nearest: WH-SH (270 km) is nearest to 江苏省; drops WH-GZ (1,132 km), "
        "more than 300 km farther than the nearest.")


# --- rate cards and geography -----------------------------------------------------------------


def test_a_parcel_costs_the_first_kg_plus_each_further_started_kg():
    rates = RateCard(first_kg={"near": Decimal(8)}, extra_kg={"near": Decimal(2)})
    assert rates.price("near", 500) == Decimal(8)
    assert rates.price("near", 1000) == Decimal(8)
    assert rates.price("near", 1001) == Decimal(10)
    assert rates.price("near", 3200) == Decimal(14)


def test_every_province_has_a_capital_and_distances_are_symmetric():
    assert set(CAPITALS) == set(PROVINCES)
    assert province_distance_km(SHANGHAI, SHANGHAI) == 0
    assert province_distance_km(SHANGHAI, BEIJING) == province_distance_km(BEIJING, SHANGHAI)
    assert 1000 < province_distance_km(SHANGHAI, BEIJING) < 1150
    assert province_distance_km(None, BEIJING) is None


def test_a_distance_override_wins_in_either_direction():
    overrides = {(SHANGHAI, "浙江省"): 400}
    assert province_distance_km("浙江省", SHANGHAI, overrides) == 400


def test_zones_follow_express_pricing():
    assert parcel_zone(SHANGHAI, SHANGHAI) == "local"
    assert parcel_zone(SHANGHAI, "江苏省") == "near"
    assert parcel_zone(SHANGHAI, GUANGDONG) == "far"
    assert parcel_zone(SHANGHAI, "新疆维吾尔自治区") == "remote"
    assert parcel_zone(GUANGDONG, "海南省") == "remote"
    assert parcel_zone(GUANGDONG, "香港特别行政区") == "abroad"
    assert parcel_zone(SHANGHAI, None, country="US") == "abroad"
    assert parcel_zone(SHANGHAI, None) is None


# --- the YAML file -----------------------------------------------------------------------------


def test_the_default_routing_file_loads_with_the_demo_warehouses():
    loaded, warehouses = load_routing_rules(ROUTING_YAML)
    assert loaded == RoutingRules.default()
    assert set(warehouses) == {"WH-SH", "WH-GZ"}
    assert warehouses["WH-SH"].daily_capacity == 800
    assert warehouses["WH-GZ"].rate_card.price("local", 400) == Decimal(5)


@pytest.mark.parametrize(("document", "key"), [
    ({"rules": ["capacity", "whole_order", {"nearest": {"tolerance_km": "far"}}]}, "rules[2].nearest.tolerance_km"),
    ({"rules": ["capacity", "whole_order", {"cheapest": {"tolerance": "cheap"}}]}, "rules[2].cheapest.tolerance"),
    ({"rules": ["capacity", "whole_order", {"nearest": {"tolerance": 3}}]}, "rules[2].nearest.tolerance"),
    ({"rules": ["capacity", "whole_order", "fastest"]}, "rules[2]"),
    ({"rules": ["capacity", "nearest", "whole_order"]}, "rules: nearest must come after whole_order"),
    ({"rules": ["capacity", "nearest"]}, "rules: whole_order is required"),
    ({"max_parcels": 0}, "max_parcels"),
    ({"allow_split": "sometimes"}, "allow_split"),
    ({"merge_window_hour": 72}, "merge_window_hour"),
    ({"distance_overrides": [{"between": ["上海", "Atlantis"], "km": 5}]}, "distance_overrides[0].between"),
])
def test_a_bad_routing_setting_is_refused_naming_the_key_and_the_source(document, key):
    with pytest.raises(ValueError, match="my-rules.yaml") as refused:
        RoutingRules.from_mapping(document, source="my-rules.yaml")
    assert key in str(refused.value)


@pytest.mark.parametrize(("text", "key"), [
    ("warehouses:\n  WH-SH:\n    daily_capacity: -1\n", "warehouses.WH-SH.daily_capacity"),
    ("warehouses:\n  WH-SH:\n    capacity: 5\n", "warehouses.WH-SH.capacity"),
    ("warehouses:\n  WH-SH:\n    rate_card:\n      first_kg: {moon: 5}\n      extra_kg: {moon: 1}\n",
     "warehouses.WH-SH.rate_card.first_kg.moon"),
    ("warehouses:\n  WH-SH:\n    rate_card:\n      first_kg: {near: 5}\n      extra_kg: {far: 1}\n",
     "warehouses.WH-SH.rate_card"),
    ("rules: [capacity, whole_order\n", "not valid YAML"),
])
def test_a_bad_routing_file_is_refused_naming_the_file_and_the_key(tmp_path, text, key):
    path = tmp_path / "routing.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=str(path)) as refused:
        load_routing_rules(path)
    assert key in str(refused.value)


def test_a_missing_routing_file_is_refused_naming_it(tmp_path):
    with pytest.raises(ValueError, match="nowhere.yaml"):
        load_routing_rules(tmp_path / "nowhere.yaml")


def test_sites_combine_database_rows_with_the_file_settings_and_todays_bookings():
    settings = {"WH-SH": WarehouseSettings(daily_capacity=800, rate_card=card(local=6))}
    rows = [{"code": "WH-SH", "province": "上海", "priority": 10},
            {"code": "WH-GZ", "province": "广东省", "priority": 20}]
    sh, gz = sites_from(rows, settings, {"WH-SH": 12})
    assert (sh.province, sh.daily_capacity, sh.booked_today) == (SHANGHAI, 800, 12)
    assert sh.rate_card is settings["WH-SH"].rate_card
    assert (gz.province, gz.daily_capacity, gz.booked_today, gz.rate_card) == (GUANGDONG, None, 0, None)
