"""Order tags and risk holds as pure rules: each tag and each hold fires at its edge and
not just below it, and a rules file with a mistake is refused with the key named."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from oms.domain.tagging import (
    AmountStatistics,
    OrderContext,
    OrderFacts,
    TaggingRules,
    amount_statistics,
    evaluate,
)
from oms.tagging_rules import load_tagging_rules

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)

RULES = TaggingRules.from_mapping({
    "tags": {
        "channel": True,
        "amount_bands": {"CNY": {"small": 0, "medium": 100, "large": 500}},
        "region": {"abroad": "abroad", "provinces": {"east_china": ["上海", "浙江"], "northwest": ["新疆"]}},
        "remote_area": {"provinces": ["新疆", "西藏"], "postcodes": {"US": ["995", "967"]}},
        "urgent": {"ship_by_within_hours": 12},
        "repeat_customer": {"min_earlier_orders": 2, "days": 90},
        "high_value_customer": {"days": 90, "min_spend": {"CNY": 3000}},
    },
    "default_priority": 50,
    "priorities": {"urgent": 10, "high_value_customer": 20, "region:northwest": 40},
    "holds": {
        "invalid_phone": True,
        "vague_address": {"min_length": 5, "number_markers": ["号", "室"], "phrases": ["见备注", "call me"]},
        "buyer_velocity": {"max_orders": 4, "window_minutes": 60},
        "address_velocity": {"max_orders": 4, "window_minutes": 60},
        "unusual_amount": {"max_robust_z": 5, "min_history": 30, "days": 30, "min_spread": 0.25},
    },
}, source="test rules")

ORDER = OrderFacts(order_id=1, platform="taobao", shop_code="tb-1", currency="CNY", total_amount=Decimal("88.00"),
                   country="CN", province="上海市", city="上海市", district="浦东新区", address="世纪大道 100 号 2 室",
                   phone="+8613800138000")
# Totals around 100 whose logarithms spread by 0.25 (a MAD of roughly 28 %).
USUAL = AmountStatistics(median=Decimal("100.00"), mad=Decimal("20.00"), count=40,
                         log_median=math.log(100), log_mad=0.25)


def verdict(order: OrderFacts = ORDER, context: OrderContext | None = None, rules: TaggingRules = RULES):
    return evaluate(order, context or OrderContext(), rules, NOW)


def rules_of(verdict_) -> list[str]:
    return [hold.rule for hold in verdict_.holds]


# ------------------------------------------------------------------ tags


def test_an_ordinary_order_gets_its_channel_band_region_and_the_default_priority():
    result = verdict()
    assert result.tags == ("channel:taobao", "amount:small", "region:east_china")
    assert result.priority == 50 and result.holds == ()
    assert result.stored_tags[-1] == "priority:50"


@pytest.mark.parametrize(("amount", "band"), [("99.99", "small"), ("100.00", "medium"), ("499.99", "medium"),
                                              ("500", "large")])
def test_an_amount_band_starts_at_its_lower_edge(amount, band):
    assert f"amount:{band}" in verdict(replace(ORDER, total_amount=Decimal(amount))).tags


def test_a_currency_without_bands_gets_no_band():
    assert not any(tag.startswith("amount:") for tag in verdict(replace(ORDER, currency="USD")).tags)


def test_a_receiver_abroad_is_in_the_abroad_region_and_an_unknown_province_in_none():
    assert "region:abroad" in verdict(replace(ORDER, country="US", province="CA")).tags
    assert not any(tag.startswith("region:") for tag in verdict(replace(ORDER, province=None)).tags)


def test_remote_provinces_and_remote_postcodes_abroad_are_tagged_remote():
    assert "remote_area" in verdict(replace(ORDER, province="新疆")).tags
    assert "remote_area" in verdict(replace(ORDER, country="US", province="AK", postal_code="99501")).tags
    assert "remote_area" not in verdict(replace(ORDER, country="US", province="NY", postal_code="10001")).tags
    assert "remote_area" not in verdict().tags


def test_urgent_at_the_ship_by_edge_and_not_an_hour_before():
    assert "urgent" in verdict(replace(ORDER, ship_by=NOW + timedelta(hours=12))).tags
    assert "urgent" in verdict(replace(ORDER, ship_by=NOW - timedelta(hours=1))).tags  # overdue is urgent too
    assert "urgent" not in verdict(replace(ORDER, ship_by=NOW + timedelta(hours=12, minutes=1))).tags
    assert "urgent" not in verdict().tags  # no ship-by: not judged


def test_a_repeat_customer_needs_the_configured_earlier_orders():
    assert "repeat_customer" in verdict(context=OrderContext(earlier_customer_orders=2)).tags
    assert "repeat_customer" not in verdict(context=OrderContext(earlier_customer_orders=1)).tags


def test_a_high_value_customer_reaches_the_spend_in_that_currency():
    assert "high_value_customer" in verdict(context=OrderContext(customer_spend={"CNY": Decimal("3000")})).tags
    assert "high_value_customer" not in verdict(context=OrderContext(customer_spend={"CNY": Decimal("2999.99")})).tags
    assert "high_value_customer" not in verdict(context=OrderContext(customer_spend={"USD": Decimal("9000")})).tags


def test_the_picking_priority_is_the_smallest_number_of_the_orders_tags():
    urgent_remote = replace(ORDER, province="新疆", ship_by=NOW + timedelta(hours=1))
    assert verdict(urgent_remote).priority == 10
    assert verdict(replace(ORDER, province="新疆")).priority == 40
    assert verdict(urgent_remote).stored_tags[-1] == "priority:10"


# ------------------------------------------------------------------ holds


@pytest.mark.parametrize("phone", [None, "", "1380013", "not a phone"])
def test_an_invalid_phone_is_held_with_the_number_masked(phone):
    result = verdict(replace(ORDER, phone=phone))
    assert rules_of(result) == ["invalid_phone"]
    assert "1380013" not in result.holds[0].detail


def test_a_valid_or_platform_masked_phone_is_not_held():
    assert verdict(replace(ORDER, phone="13800138000")).holds == ()
    assert verdict(replace(ORDER, phone="138****8000")).holds == ()
    assert verdict(replace(ORDER, phone=None, address=None, receiver_masked=True)).holds == ()


@pytest.mark.parametrize(("address", "says"), [
    (None, "no street address"),
    ("上海市浦东新区", "only the province, city or district"),
    ("浦东新区 见备注", "见备注"),
    ("Call me when here", "call me"),
    ("中山路8", "too short"),
    ("世纪大道旁边的小区", "no street number"),
])
def test_a_vague_address_is_held_and_the_detail_says_why_without_the_address(address, says):
    result = verdict(replace(ORDER, address=address))
    assert rules_of(result) == ["vague_address"]
    assert says in result.holds[0].detail
    assert "世纪大道" not in result.holds[0].detail and "中山路" not in result.holds[0].detail


@pytest.mark.parametrize("address", ["中山路8号", "世纪大道旁边的小区3室", "12 Main Street"])
def test_an_address_of_the_minimum_length_with_a_number_or_marker_passes(address):
    assert verdict(replace(ORDER, address=address)).holds == ()


def test_more_orders_than_allowed_from_one_buyer_within_the_window_are_held():
    held = verdict(context=OrderContext(buyer_orders_nearby=5))
    assert rules_of(held) == ["buyer_velocity"]
    assert held.holds[0].detail.startswith("5 orders from one customer within 60 minutes")
    assert verdict(context=OrderContext(buyer_orders_nearby=4)).holds == ()
    assert verdict(context=OrderContext(buyer_orders_nearby=None)).holds == ()


def test_more_orders_than_allowed_to_one_address_within_the_window_are_held():
    assert rules_of(verdict(context=OrderContext(address_orders_nearby=5))) == ["address_velocity"]
    assert verdict(context=OrderContext(address_orders_nearby=4)).holds == ()


def test_an_amount_far_from_the_shops_median_is_held_at_its_edge():
    # robust z = 0.6745 * ln(amount / 100) / 0.25; the edge (5) is at 100 * e^(5 * 0.25 / 0.6745)
    edge = 100 * math.exp(5 * 0.25 / 0.6745)  # about 638
    held = verdict(replace(ORDER, total_amount=Decimal(f"{edge + 0.02:.2f}")), OrderContext(shop_amounts=USUAL))
    assert rules_of(held) == ["unusual_amount"]
    assert "6.4× and 5.0 robust deviations (log scale) above the shop's median of CNY 100.00" in held.holds[0].detail
    assert verdict(replace(ORDER, total_amount=Decimal(f"{edge - 0.02:.2f}")),
                   OrderContext(shop_amounts=USUAL)).holds == ()


def test_a_tenth_of_the_usual_is_as_suspicious_as_ten_times_it():
    low = verdict(replace(ORDER, total_amount=Decimal("10.00")), OrderContext(shop_amounts=USUAL))
    high = verdict(replace(ORDER, total_amount=Decimal("1000.00")), OrderContext(shop_amounts=USUAL))
    assert rules_of(low) == rules_of(high) == ["unusual_amount"]
    assert "1/10.0" in low.holds[0].detail and "below" in low.holds[0].detail


def test_a_big_basket_of_the_usual_kind_is_not_held():
    basket = verdict(replace(ORDER, total_amount=Decimal("450.00")), OrderContext(shop_amounts=USUAL))
    assert basket.holds == ()


def test_an_amount_is_not_judged_without_enough_history():
    few = replace(USUAL, count=29)
    assert verdict(replace(ORDER, total_amount=Decimal("5000")), OrderContext(shop_amounts=few)).holds == ()
    assert verdict(replace(ORDER, total_amount=Decimal("5000")), OrderContext(shop_amounts=None)).holds == ()


def test_a_shop_with_one_price_does_not_hold_every_order_of_another_price():
    one_price = amount_statistics([Decimal("10.00")] * 40)
    assert one_price.mad == 0
    assert verdict(replace(ORDER, total_amount=Decimal("12.00")), OrderContext(shop_amounts=one_price)).holds == ()
    assert rules_of(verdict(replace(ORDER, total_amount=Decimal("500.00")),
                            OrderContext(shop_amounts=one_price))) == ["unusual_amount"]


def test_median_and_mad_of_some_amounts():
    stats = amount_statistics([Decimal(n) for n in (1, 2, 3, 4, 100)])
    assert (stats.median, stats.mad, stats.count) == (Decimal(3), Decimal(1), 5)
    assert math.isclose(stats.log_median, math.log(3))
    assert amount_statistics([]) is None


# ------------------------------------------------------------------ the rules file


def test_the_shipped_rules_file_loads():
    rules = load_tagging_rules(ROOT / "config" / "tagging.yaml")
    assert rules.invalid_phone and rules.unusual_amount and rules.buyer_velocity
    assert "新疆维吾尔自治区" in rules.remote_area.provinces


@pytest.mark.parametrize(("document", "key"), [
    ({"holds": {"too_many_orders": {"max_orders": 3}}}, "holds.too_many_orders"),
    ({"tags": {"vip": True}}, "tags.vip"),
    ({"holds": {"buyer_velocity": {"max_orders": 3, "minutes": 60}}}, "holds.buyer_velocity.minutes"),
    ({"priorities": {"gold_member": 1}}, "priorities.gold_member"),
    ({"priorities": {"urgent": 1}}, "priorities.urgent"),  # urgent is switched off
    ({"tags": {"region": {"provinces": {"east": ["Atlantis"]}}}}, "tags.region.provinces.east"),
    ({"tag": {}}, "tag"),
])
def test_a_rules_file_with_an_unknown_rule_or_key_is_refused_naming_it(document, key):
    with pytest.raises(ValueError, match=f"test rules: {key}:"):
        TaggingRules.from_mapping(document, source="test rules")


def test_a_yaml_file_with_an_unknown_rule_is_an_error_naming_the_file_and_rule(tmp_path):
    path = tmp_path / "tagging.yaml"
    path.write_text("holds:\n  invalid_phone: true\n  midnight_orders: {max_orders: 2}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"tagging\.yaml: holds\.midnight_orders: is not a rule"):
        load_tagging_rules(path)
