"""Amazon status table, payload mapping and the connector's pure helpers, without any I/O.

Payloads come from the simulator's renderer (with the items attached as the connector
attaches them), so these tests also pin both sides of the wire to one reading of §2.
Amazon signs nothing since SigV4 was dropped and the reference gives no Appendix A vector
for it; the tests of `package_reference` and the token URL stand where a signer's would.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.amazon import (
    ITEMS_KEY,
    LWA_TOKEN_URL,
    STATUS_TABLE,
    iso_seconds,
    lwa_token_url,
    package_reference,
    parse_time,
    raw_order,
)
from connectors.amazon_mapping import map_order
from oms.domain.errors import MappingError
from oms.domain.order import OrderStatus
from sandbox import amazon_render as wire
from sandbox.model import SimLine, SimOrder

UTC = timezone.utc
NOW = datetime(2024, 3, 10, 12, 0, 0, tzinfo=UTC)
# Every OrderStatus value of the official ordersV0 model.
MODEL_STATUSES = ("PendingAvailability", "Pending", "Unshipped", "PartiallyShipped", "Shipped",
                  "InvoiceUnconfirmed", "Canceled", "Unfulfillable")


def sim_order(status: str = "paid", **changes) -> SimOrder:
    values = dict(
        order_id=100_123, shop="amazon-shop", status=status, currency="USD",
        created_at=datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC),
        updated_at=datetime(2024, 3, 1, 16, 31, 0, tzinfo=UTC),
        lines=[SimLine("SKU-TEA-1", "Green tea 250 g", 3, Decimal("8.35"), 1),
               SimLine(None, "Gift card", 1, Decimal("0"), 2)],
        shipping_fee=Decimal("5.99"), receiver_name="Jordan Example", phone="+1 202-555-0143",
        province="WA", city="Seattle", district=None, address="100 Example Ave",
        postal_code="98101", country_code="US", buyer_id="buyer-7",
    )
    values.update(changes)
    return SimOrder(**values)


def payload(order: SimOrder, restricted: frozenset[str] = frozenset()) -> dict:
    rendered = wire.render_order(order, restricted, NOW)
    rendered[ITEMS_KEY] = wire.render_items(order)
    return rendered


def mapped(order: SimOrder, restricted: frozenset[str] = frozenset()):
    return map_order(payload(order, restricted), "amazon-shop")


# ---- the status table, both ways ------------------------------------------------------


@pytest.mark.parametrize("value", MODEL_STATUSES)
def test_every_order_status_of_the_model_has_a_row(value):
    assert isinstance(STATUS_TABLE[value], OrderStatus)


def test_the_table_has_no_status_the_model_lacks():
    assert set(STATUS_TABLE) == set(MODEL_STATUSES)


def test_every_status_amazon_can_express_is_reached():
    # v0 reports no delivery, and allocation is our own pipeline's business.
    reachable = set(OrderStatus) - {OrderStatus.DELIVERED, OrderStatus.ALLOCATED,
                                    OrderStatus.BACKORDERED, OrderStatus.PACKING,
                                    OrderStatus.REFUNDED}  # after-sales sets refunded
    assert set(STATUS_TABLE.values()) == reachable


@pytest.mark.parametrize(
    "sim_status, platform_status, expected",
    [
        ("unpaid", "Pending", OrderStatus.PENDING_PAYMENT),
        ("paid", "Unshipped", OrderStatus.PAID),
        ("shipped", "Shipped", OrderStatus.SHIPPED),
        ("delivered", "Shipped", OrderStatus.SHIPPED),
        ("cancelled", "Canceled", OrderStatus.CANCELLED),
    ],
)
def test_each_simulated_status_comes_back_as_the_matching_order_status(
    sim_status, platform_status, expected
):
    order = mapped(sim_order(sim_status))
    assert (order.platform_status, order.status) == (platform_status, expected)


@pytest.mark.parametrize("value", ["Delivered", "shipped", None, 3])
def test_an_unknown_status_is_a_mapping_error(value):
    with pytest.raises(MappingError, match="unknown OrderStatus"):
        map_order(payload(sim_order()) | {"OrderStatus": value}, "amazon-shop")


# ---- mapping a rendered payload ---------------------------------------------------------


def test_a_typical_unshipped_order_maps_amounts_times_lines_and_a_masked_receiver():
    order = mapped(sim_order("paid"))

    assert order.platform == "amazon" and order.shop_code == "amazon-shop"
    assert order.platform_order_id == wire.amazon_order_id(sim_order())
    assert order.created_at == datetime(2024, 3, 1, 16, 30, 5, tzinfo=UTC)
    assert order.updated_at == datetime(2024, 3, 1, 16, 31, 0, tzinfo=UTC)
    assert order.ship_by == order.created_at + timedelta(days=2)
    assert (order.currency, order.total_amount, order.shipping_fee) == (
        "USD", Decimal("31.04"), Decimal("5.99"))
    assert [(l.sku, l.quantity, l.unit_price, l.title) for l in order.lines] == [
        ("SKU-TEA-1", 3, Decimal("8.35"), "Green tea 250 g"),
        (None, 1, Decimal("0.00"), "Gift card"),
    ]
    assert order.lines[0].platform_line_id == wire.order_item_id(sim_order(), 0)
    receiver = order.receiver
    assert receiver.masked and receiver.encrypted == {}
    assert (receiver.name, receiver.phone, receiver.address) == (None, None, None)
    assert (receiver.city, receiver.province, receiver.postal_code, receiver.country_code) == (
        "Seattle", "WA", "98101", "US")
    assert order.buyer_ref is None


def test_without_a_restricted_data_token_no_receiver_data_is_on_the_wire():
    text = json.dumps(payload(sim_order("paid")))
    for secret in ("Jordan Example", "202-555-0143", "100 Example Ave"):
        assert secret not in text


def test_with_a_restricted_data_token_the_receiver_and_buyer_come_in_full():
    order = mapped(sim_order("paid"), frozenset({"shippingAddress", "buyerInfo"}))
    receiver = order.receiver
    assert not receiver.masked
    assert (receiver.name, receiver.phone, receiver.address) == (
        "Jordan Example", "+1 202-555-0143", "100 Example Ave")
    assert order.buyer_ref and order.buyer_ref.endswith("@marketplace.amazon.com")


def test_the_phone_is_suppressed_once_a_shipped_order_is_past_its_latest_delivery():
    month_ago = NOW - timedelta(days=30)
    shipped = sim_order("shipped", created_at=month_ago, updated_at=month_ago + timedelta(days=1))
    receiver = mapped(shipped, frozenset({"shippingAddress"})).receiver
    assert receiver.phone is None and receiver.name == "Jordan Example"


def test_a_pending_order_has_no_prices_and_takes_its_marketplaces_currency():
    rendered = payload(sim_order("unpaid"))
    assert "OrderTotal" not in rendered and "ShippingAddress" not in rendered
    assert all("ItemPrice" not in item for item in rendered[ITEMS_KEY])
    order = map_order(rendered, "amazon-shop")
    assert (order.currency, order.total_amount) == ("USD", Decimal("0"))
    assert order.receiver.masked and order.receiver.country_code == "US"


def test_a_japanese_order_keeps_its_yen():
    order = mapped(sim_order(currency="JPY", country_code="JP"))
    assert order.currency == "JPY" and order.receiver.country_code == "JP"


def test_item_price_is_the_price_of_the_whole_quantity():
    rendered = payload(sim_order())
    rendered[ITEMS_KEY][0]["ItemPrice"] = {"CurrencyCode": "USD", "Amount": "10.00"}
    assert map_order(rendered, "s").lines[0].unit_price == Decimal("3.33")  # 10.00 / 3


def test_a_mapping_error_lists_every_reason_at_once():
    broken = payload(sim_order()) | {
        "AmazonOrderId": "",
        "OrderStatus": "Lost",
        "PurchaseDate": "01/03/2024",
        "OrderTotal": {"CurrencyCode": "USD", "Amount": "lots"},
    }
    broken.pop("LastUpdateDate")
    broken[ITEMS_KEY] = [
        {"OrderItemId": "1", "QuantityOrdered": 0,
         "ItemPrice": {"CurrencyCode": "EUR", "Amount": "1"}},
        "junk",
    ]

    with pytest.raises(MappingError) as caught:
        map_order(broken, "amazon-shop")

    reasons = "\n".join(caught.value.reasons)
    assert len(caught.value.reasons) == 8, reasons
    for fragment in ("AmazonOrderId", "unknown OrderStatus", "PurchaseDate",
                     "LastUpdateDate is missing", "OrderTotal.Amount", "QuantityOrdered 0",
                     "in 'EUR', the order in USD",
                     "OrderItems[1] is not an object"):
        assert fragment in reasons


def test_an_order_without_its_items_is_a_reason_and_a_priced_one_without_total_another():
    bare = payload(sim_order())
    bare.pop(ITEMS_KEY)
    bare.pop("OrderTotal")
    with pytest.raises(MappingError) as caught:
        map_order(bare, "s")
    assert any("OrderItems is missing" in r for r in caught.value.reasons)
    assert any("OrderTotal is missing" in r for r in caught.value.reasons)


def test_a_payload_too_broken_to_key_still_becomes_a_raw_order():
    raw = raw_order({"LastUpdateDate": "yesterday"})
    assert (raw.platform_order_id, raw.platform_updated_at) == (None, None)
    assert raw_order("junk").payload == {"unreadable_item": "junk"}


# ---- times and the connector's pure helpers ---------------------------------------------


def test_times_are_read_as_iso_8601_and_kept_in_utc():
    assert parse_time("2017-01-20T19:49:35Z") == datetime(2017, 1, 20, 19, 49, 35, tzinfo=UTC)
    assert parse_time("2022-02-11T01:00:00.000Z") == datetime(2022, 2, 11, 1, 0, tzinfo=UTC)
    assert parse_time("2024-03-02T08:30:05+08:00") == datetime(2024, 3, 2, 0, 30, 5, tzinfo=UTC)
    assert parse_time("02/21/2022") is None and parse_time("") is None and parse_time(5) is None
    china = timezone(timedelta(hours=8))
    assert iso_seconds(datetime(2024, 3, 2, 8, 30, 5, 999, tzinfo=china)) == "2024-03-02T00:30:05Z"


def test_a_package_reference_is_a_positive_number_that_a_resend_repeats():
    first = package_reference("9400100000000000000001")
    assert first.isdigit() and int(first) >= 1
    assert first == package_reference("9400100000000000000001")
    assert first != package_reference("9400100000000000000002")


def test_lwa_is_amazons_own_host_for_real_hosts_and_under_the_base_url_elsewhere():
    assert lwa_token_url("https://sellingpartnerapi-eu.amazon.com") == LWA_TOKEN_URL
    sandbox = "http://127.0.0.1:8000/amazon"
    assert lwa_token_url(sandbox + "/") == sandbox + "/auth/o2/token"
