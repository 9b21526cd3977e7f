"""The suites in expectations/: each loads, a broken one is refused, and each flags
exactly its bad rows (Great Expectations runs for real)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from connectors.base import RawOrder
from expectations.raw_records import raw_records
from expectations.runner import (
    SUITES,
    SuiteError,
    UnknownExpectation,
    load_suite,
    load_suite_definition,
    validate_records,
)
from oms.domain.cleaning import batch_facts, clean_order
from oms.domain.order import OrderStatus
from tests.factories import BASE_TIME, make_order

NOW = BASE_TIME + timedelta(hours=1)
RAW_PLATFORMS = ("taobao", "pdd", "jd", "douyin", "shopify", "shopee", "lazada", "amazon", "spreadsheet")


def reasons(outcome, row: int) -> list[str]:
    return outcome.reasons_by_row.get(row, [])


@pytest.mark.parametrize("name", ["orders", "shipments", "tracking_pushes"] + [f"raw_{p}" for p in RAW_PLATFORMS])
def test_every_suite_in_the_folder_loads_with_a_reason_for_each_expectation(name):
    suite = load_suite(name)
    assert len(suite.expectations) == len(load_suite_definition(name)["expectations"])


def test_a_suite_with_an_unknown_expectation_is_an_error_naming_the_file_and_the_type(tmp_path):
    definition = json.loads((SUITES / "orders.json").read_text(encoding="utf-8"))
    definition["expectations"].append({"type": "expect_column_values_to_be_wonderful",
                                       "kwargs": {"column": "currency"}, "meta": {"reason": "x"}})
    (tmp_path / "broken.json").write_text(json.dumps(definition), encoding="utf-8")
    with pytest.raises(UnknownExpectation, match=r"broken\.json.*expect_column_values_to_be_wonderful"):
        validate_records("broken", [{"currency": "CNY"}], directory=tmp_path)


def test_an_expectation_missing_its_arguments_or_reason_is_an_error_too(tmp_path):
    (tmp_path / "no_column.json").write_text(json.dumps({"name": "no_column", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {}, "meta": {"reason": "x"}}]}))
    (tmp_path / "no_reason.json").write_text(json.dumps({"name": "no_reason", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}]}))
    with pytest.raises(SuiteError, match="no_column.json"):
        load_suite("no_column", tmp_path)
    with pytest.raises(SuiteError, match="meta.reason"):
        load_suite("no_reason", tmp_path)


def test_the_orders_suite_knows_every_order_status_of_ours():
    [rule] = [e for e in load_suite_definition("orders")["expectations"] if e["kwargs"]["column"] == "status"]
    assert set(rule["kwargs"]["value_set"]) == {s.value for s in OrderStatus}


def test_the_orders_suite_flags_exactly_the_bad_orders_each_with_its_reasons():
    good = make_order(1)
    orders = [
        good,
        make_order(2, total_amount=Decimal("80.00")),  # charged more than lines plus shipping
        make_order(3, paid_at=BASE_TIME - timedelta(hours=1)),  # paid before it was placed
        make_order(4, updated_at=NOW + timedelta(hours=2)),  # updated in the future
        make_order(5, receiver=replace(good.receiver, postal_code="2000")),  # CN postcodes have 6 digits
        make_order(6, total_amount=Decimal("50.00"), shipping_fee=Decimal("5.00")),  # a discount: fine
        make_order(7, receiver=replace(good.receiver, postal_code="200120")),
    ]
    cleaned = [clean_order(order, NOW) for order in orders]
    outcome = validate_records("orders", batch_facts(cleaned, [{"n": n} for n in range(len(cleaned))]))
    assert sorted(outcome.reasons_by_row) == [1, 2, 3, 4]
    assert reasons(outcome, 1) == ["order total is more than its lines plus shipping"]
    assert reasons(outcome, 2) == reasons(outcome, 3) == [
        "order times are out of order (created, paid, updated) or in the future"]
    assert reasons(outcome, 4) == ["receiver postcode is not in its country's form"]


def test_two_different_payloads_of_one_version_conflict_but_a_verbatim_repeat_and_a_newer_version_do_not():
    first, changed = make_order(1), make_order(1, total_amount=Decimal("10.00"))
    newer = make_order(1, minutes_later=5)
    other = make_order(2)
    cleaned = [clean_order(o, NOW) for o in (first, first, changed, newer, other)]
    payloads = [{"v": "a"}, {"v": "a"}, {"v": "b"}, {"v": "c"}, {"v": "d"}]
    outcome = validate_records("orders", batch_facts(cleaned, payloads))
    conflict = "two different payloads of this order carry the same update time; which one is true cannot be told"
    assert {row for row, why in outcome.reasons_by_row.items() if conflict in why} == {0, 2}


def raw(payload: dict, order_id: str | None = "1", minutes: int = 0) -> RawOrder:
    return RawOrder(order_id, BASE_TIME + timedelta(minutes=minutes), payload)


def test_a_raw_pdd_payload_with_an_unknown_status_or_a_bad_amount_is_flagged_with_every_reason():
    good = {"order_status": 1, "confirm_status": 1, "refund_status": 1, "pay_amount": 12.5, "item_list": [{}]}
    raws = [raw(good), raw(good | {"order_status": 9, "pay_amount": -1}), raw(good | {"pay_amount": "twelve"}),
            raw(good | {"item_list": []}), raw(good, minutes=600)]
    spec = load_suite_definition("raw_pdd")["record"]
    outcome = validate_records("raw_pdd", raw_records(spec, raws, NOW))
    assert sorted(outcome.reasons_by_row) == [1, 2, 3, 4]
    assert reasons(outcome, 1) == ["status is not in Pinduoduo's status list",
                                   "order amount is missing, unreadable or negative", "order amount is out of range"]
    assert reasons(outcome, 2) == ["order amount is missing, unreadable or negative"]
    assert reasons(outcome, 3) == ["Pinduoduo payload lists no order lines"]
    assert reasons(outcome, 4) == ["Pinduoduo update time is missing or in the future"]


def test_raw_suites_read_list_statuses_and_nested_amounts_and_allow_amounts_the_platform_leaves_out():
    lazada = [raw({"statuses": ["pending", "packed"], "price": "10.00", "order_items": [{}]}),
              raw({"statuses": ["pending", "teleported"], "price": "10.00", "order_items": [{}]})]
    spec = load_suite_definition("raw_lazada")["record"]
    assert sorted(validate_records("raw_lazada", raw_records(spec, lazada, NOW)).reasons_by_row) == [1]
    amazon = [raw({"OrderStatus": "Pending", "OrderItems": [{}]}),  # no OrderTotal until priced
              raw({"OrderStatus": "Shipped", "OrderTotal": {"Amount": "x"}, "OrderItems": [{}]})]
    spec = load_suite_definition("raw_amazon")["record"]
    assert sorted(validate_records("raw_amazon", raw_records(spec, amazon, NOW)).reasons_by_row) == [1]


def test_the_shipments_suite_stops_parcels_no_carrier_could_label():
    good = {"order_ref": "pdd-s-1", "carrier": "SF", "weight_grams": 300, "item_count": 1, "receiver_state": "plain"}
    records = [good, good | {"order_ref": "pdd-s-2", "carrier": "PIGEON"},
               good | {"order_ref": "pdd-s-3", "weight_grams": 0},
               good | {"order_ref": "pdd-s-4", "receiver_state": "missing"},
               good | {"order_ref": "pdd-s-5", "receiver_state": "encrypted"}]
    outcome = validate_records("shipments", records)
    assert sorted(outcome.reasons_by_row) == [1, 2, 3]
    assert reasons(outcome, 3) == ["receiver address is missing and no encrypted reference stands for it"]


def test_the_tracking_suite_checks_each_number_against_its_carriers_form():
    records = [{"platform_order_id": "1", "carrier": "SF", "tracking_number": "SF1234567890"},
               {"platform_order_id": "2", "carrier": "SF", "tracking_number": "YT1234567890"},
               {"platform_order_id": "3", "carrier": "ZTO", "tracking_number": "73123456789012"},
               {"platform_order_id": "4", "carrier": "JT", "tracking_number": "no"},
               {"platform_order_id": "5", "carrier": "JD", "tracking_number": None}]
    outcome = validate_records("tracking_pushes", records)
    assert sorted(outcome.reasons_by_row) == [1, 3, 4]
    assert reasons(outcome, 1) == ["tracking number is not in SF's form"]
    assert reasons(outcome, 4) == ["shipment has no tracking number"]
