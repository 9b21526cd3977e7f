"""The Shopify connector against the sandbox's Shopify simulator, over real HTTP."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from connectors.base import ShopAccess
from connectors.shopify import API_VERSION, ShopifyConnector
from oms.domain.errors import MappingError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import OrderStatus
from sandbox.generator import populate
from sandbox.model import SimLine, SimOrder
from sandbox.shopify import INVALID_TOKEN_BODY, LISTING_CAPACITY, register_shop, shop_base_url

NOW = datetime.now(timezone.utc).replace(microsecond=0)
WIDE_WINDOW = (NOW - timedelta(days=3), NOW + timedelta(minutes=1))


def sim_order(order_id: int, updated_at: datetime, status: str = "paid") -> SimOrder:
    return SimOrder(
        order_id=order_id, shop="", created_at=updated_at - timedelta(minutes=5),
        updated_at=updated_at, status=status, currency="CNY",
        lines=[SimLine("SKU-0001", "保温杯 白色", 2, Decimal("39.90"), order_id * 100 + 1)],
        shipping_fee=Decimal("8"), receiver_name="王伟", phone="13800138000",
        province="北京市", city="北京市", district="海淀区", address="海淀区中关村大街1号",
    )


def add_orders(sandbox, shop: str, orders: list[SimOrder]) -> None:
    with sandbox.state.lock:
        for order in orders:
            order.shop = shop
            sandbox.state.orders[shop].append(order)


def connect(sandbox, shop: str, token: str | None = None, **options) -> ShopifyConnector:
    token = token or register_shop(sandbox.state, shop, NOW)["access_token"]
    access = ShopAccess(shop, "shopify", shop_base_url(sandbox.url, shop), {"access_token": token})
    return ShopifyConnector(access, **options)


def fetched_ids(connector: ShopifyConnector, window=WIDE_WINDOW) -> list[list[str]]:
    return [[raw.platform_order_id for raw in page] for page in connector.fetch_orders(*window)]


def orders_url(sandbox, shop: str) -> str:
    return f"{shop_base_url(sandbox.url, shop)}/admin/api/{API_VERSION}/orders.json"


# ---------------------------------------------------------------- fetching


def test_paging_returns_every_order_and_a_repeated_order_twice(sandbox, shop_name):
    orders = [sim_order(9001 + n, NOW - timedelta(minutes=60 - n)) for n in range(7)]
    add_orders(sandbox, shop_name, orders + [orders[2]])  # served twice, as while paging

    pages = fetched_ids(connect(sandbox, shop_name, page_size=3))

    assert [len(page) for page in pages] == [3, 3, 2]
    ids = [order_id for page in pages for order_id in page]
    assert sorted(ids) == sorted([str(o.order_id) for o in orders] + ["9003"])
    assert ids.count("9003") == 2


def test_the_link_header_offers_next_and_previous_and_only_limit_travels_with_the_cursor(
    sandbox, shop_name
):
    orders = [sim_order(9101 + n, NOW - timedelta(minutes=n)) for n in range(3)]
    add_orders(sandbox, shop_name, orders)
    token = register_shop(sandbox.state, shop_name, NOW)["access_token"]
    headers = {"X-Shopify-Access-Token": token}
    url = orders_url(sandbox, shop_name)

    first = httpx.get(url, params={"status": "any", "limit": 2}, headers=headers)
    next_url = re.search(r'<([^>]+)>; rel="next"', first.headers["link"]).group(1)
    second = httpx.get(next_url, headers=headers)
    single = httpx.get(url, params={"status": "any", "limit": 5}, headers=headers)
    mixed = httpx.get(next_url + "&status=any", headers=headers)

    assert len(first.json()["orders"]) == 2 and 'rel="previous"' not in first.headers["link"]
    assert len(second.json()["orders"]) == 1 and 'rel="previous"' in second.headers["link"]
    assert "link" not in single.headers
    assert mixed.status_code == 400 and mixed.json() == {"errors": {"page_info": "Invalid value."}}


def test_an_order_changed_while_paging_keeps_its_place_and_shows_its_new_state(
    sandbox, shop_name
):
    orders = [sim_order(9151 + n, NOW - timedelta(minutes=30 - n)) for n in range(3)]
    add_orders(sandbox, shop_name, orders)
    connector = connect(sandbox, shop_name, page_size=2)
    pages = connector.fetch_orders(*WIDE_WINDOW)

    first = next(pages)
    with sandbox.state.lock:  # between two pages, a served order and an unserved one change
        orders[0].address, orders[0].updated_at = "海淀区中关村大街2号", NOW
        orders[2].status, orders[2].updated_at = "cancelled", NOW - timedelta(seconds=1)
    rest = [raw for page in pages for raw in page]

    assert [raw.platform_order_id for raw in first + rest] == ["9151", "9152", "9153"]
    assert connector.to_order(rest[0]).status is OrderStatus.CANCELLED


def test_a_cursor_still_pages_after_many_other_listings_were_started(sandbox, shop_name):
    orders = [sim_order(9161 + n, NOW - timedelta(minutes=30 - n)) for n in range(3)]
    add_orders(sandbox, shop_name, orders)
    token = register_shop(sandbox.state, shop_name, NOW)["access_token"]
    headers = {"X-Shopify-Access-Token": token}
    url = orders_url(sandbox, shop_name)
    with httpx.Client(headers=headers) as client:
        first = client.get(url, params={"status": "any", "limit": 2})
        for _ in range(LISTING_CAPACITY + 1):  # each first page starts a listing
            client.get(url, params={"status": "any", "limit": 1})
        next_url = re.search(r'<([^>]+)>; rel="next"', first.headers["link"]).group(1)
        second = client.get(next_url)

    assert second.status_code == 200
    assert [order["id"] for order in second.json()["orders"]] == [9163]


def test_only_orders_updated_inside_the_half_open_window_are_fetched(sandbox, shop_name):
    start, end = NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    add_orders(sandbox, shop_name, [
        sim_order(9201, start - timedelta(seconds=1)),
        sim_order(9202, start),
        sim_order(9203, start + timedelta(minutes=30)),
        sim_order(9204, end),  # belongs to the next window
    ])

    pages = fetched_ids(connect(sandbox, shop_name), (start, end))

    assert pages == [["9202", "9203"]]


def test_an_empty_window_yields_no_pages(sandbox, shop_name):
    assert fetched_ids(connect(sandbox, shop_name)) == []


def test_a_generated_shop_maps_except_the_orders_with_a_zero_quantity(sandbox, shop_name):
    generated = populate(sandbox.state, shop_name, count=60, seed=11, now=NOW)
    connector = connect(sandbox, shop_name, page_size=25)

    refused = set()
    landed = 0
    for page in connector.fetch_orders(*WIDE_WINDOW):
        for raw in page:
            landed += 1
            try:
                connector.to_order(raw)
            except MappingError:
                refused.add(raw.platform_order_id)

    assert landed == len(sandbox.state.orders[shop_name])
    assert refused == {str(o.order_id) for o in generated if "zero_quantity" in o.defects}


def test_a_malformed_order_fails_mapping_while_the_rest_of_its_page_maps(sandbox, shop_name):
    orders = [sim_order(9301 + n, NOW - timedelta(minutes=n)) for n in range(3)]
    add_orders(sandbox, shop_name, orders)
    connector = connect(sandbox, shop_name)
    sandbox.state.faults.arm("shopify", "malformed")

    [page] = list(connector.fetch_orders(*WIDE_WINDOW))

    broken = [raw for raw in page if raw.platform_order_id is None]
    assert len(broken) == 1
    with pytest.raises(MappingError) as caught:
        connector.to_order(broken[0])
    assert len(caught.value.reasons) == 2  # no id, line items not a list
    assert all(connector.to_order(raw) for raw in page if raw is not broken[0])


# ---------------------------------------------------------------- errors at the edge


def test_a_bad_token_raises_token_expired_after_a_real_401(sandbox, shop_name):
    connector = connect(sandbox, shop_name, token="shpat_0000000000000000")

    with pytest.raises(TokenExpired) as caught:
        list(connector.fetch_orders(*WIDE_WINDOW))

    assert caught.value.code == 401
    assert caught.value.body == INVALID_TOKEN_BODY


def test_an_expired_token_fault_keeps_the_token_expired(sandbox, shop_name):
    connector = connect(sandbox, shop_name)
    sandbox.state.faults.arm("shopify", "expired_token")

    for _ in range(2):  # the fault fires once; the token stays dead
        with pytest.raises(TokenExpired):
            connector.probe()


def test_an_armed_429_raises_rate_limited_with_the_servers_retry_after(sandbox, shop_name):
    connector = connect(sandbox, shop_name)
    sandbox.state.faults.arm("shopify", "rate_limit", retry_after=7)

    with pytest.raises(RateLimited) as caught:
        list(connector.fetch_orders(*WIDE_WINDOW))

    assert caught.value.retry_after == 7.0
    assert caught.value.retryable
    connector.probe()  # the next call goes through


def test_every_answer_carries_the_call_limit_header(sandbox, shop_name):
    token = register_shop(sandbox.state, shop_name, NOW)["access_token"]
    url = orders_url(sandbox, shop_name)
    sandbox.state.faults.arm("shopify", "rate_limit")

    answers = [
        httpx.get(url, headers={"X-Shopify-Access-Token": token}),  # 429
        httpx.get(url, headers={"X-Shopify-Access-Token": "shpat_wrong"}),  # 401
        httpx.get(url, headers={"X-Shopify-Access-Token": token}),  # 200
    ]

    assert [answer.status_code for answer in answers] == [429, 401, 200]
    assert answers[0].headers["x-shopify-shop-api-call-limit"] == "40/40"
    for answer in answers:
        assert re.fullmatch(r"\d+/40", answer.headers["x-shopify-shop-api-call-limit"])


def test_a_server_error_raises_unavailable(sandbox, shop_name):
    connector = connect(sandbox, shop_name)
    sandbox.state.faults.arm("shopify", "server_error")

    with pytest.raises(Unavailable) as caught:
        connector.probe()

    assert caught.value.code >= 500 and caught.value.retryable


def test_a_slow_answer_beyond_the_timeout_raises_unavailable(sandbox, shop_name):
    connector = connect(sandbox, shop_name, http=httpx.Client(timeout=0.1))
    sandbox.state.faults.arm("shopify", "latency", delay_seconds=0.5)

    with pytest.raises(Unavailable):
        connector.probe()


def test_a_page_size_over_250_is_rejected_for_good(sandbox, shop_name):
    connector = connect(sandbox, shop_name, page_size=251)

    with pytest.raises(Rejected) as caught:
        list(connector.fetch_orders(*WIDE_WINDOW))

    assert caught.value.code == 400 and not caught.value.retryable


# ---------------------------------------------------------------- tracking write-back


def test_push_tracking_fulfils_the_order_and_a_second_identical_push_is_a_no_op(sandbox, shop_name):
    order = sim_order(9401, NOW - timedelta(hours=1))
    add_orders(sandbox, shop_name, [order])
    connector = connect(sandbox, shop_name)

    first = connector.push_tracking("9401", "SF", "SF1234567890")
    again = connector.push_tracking("9401", "SF", "SF1234567890")

    assert first.response["fulfillment"]["status"] == "success"
    assert first.response["fulfillment"]["tracking_numbers"] == ["SF1234567890"]
    assert order.status == "shipped"
    assert [(t["company"], t["tracking_number"]) for t in order.tracking] == [
        ("SF Express", "SF1234567890")]
    assert again.response["fulfillment"]["tracking_number"] == "SF1234567890"


def test_a_pushed_order_comes_back_shipped_in_the_next_fetch(sandbox, shop_name):
    add_orders(sandbox, shop_name, [sim_order(9501, NOW - timedelta(hours=1))])
    connector = connect(sandbox, shop_name)
    connector.push_tracking("9501", "EMS", "EA123456789CN")
    pushed_at = datetime.now(timezone.utc)  # the push stamps the real clock, not NOW

    [[raw]] = list(connector.fetch_orders(pushed_at - timedelta(minutes=1), pushed_at + timedelta(minutes=1)))

    assert connector.to_order(raw).status is OrderStatus.SHIPPED
    assert raw.payload["fulfillments"][0]["tracking_company"] == "China Post"


def test_another_tracking_number_for_a_fulfilled_order_is_rejected(sandbox, shop_name):
    order = sim_order(9601, NOW - timedelta(hours=1))
    add_orders(sandbox, shop_name, [order])
    connector = connect(sandbox, shop_name)
    connector.push_tracking("9601", "ZTO", "ZTO0001")

    with pytest.raises(Rejected):
        connector.push_tracking("9601", "ZTO", "ZTO0002")

    assert [t["tracking_number"] for t in order.tracking] == ["ZTO0001"]


def test_the_simulator_refuses_to_fulfil_a_closed_fulfillment_order(sandbox, shop_name):
    add_orders(sandbox, shop_name, [sim_order(9701, NOW, status="cancelled")])
    token = register_shop(sandbox.state, shop_name, NOW)["access_token"]
    body = {"fulfillment": {"line_items_by_fulfillment_order": [{"fulfillment_order_id": 970100}],
                            "tracking_info": {"number": "X1", "company": "SF Express"}}}

    answer = httpx.post(
        f"{shop_base_url(sandbox.url, shop_name)}/admin/api/{API_VERSION}/fulfillments.json",
        json=body, headers={"X-Shopify-Access-Token": token},
    )

    assert answer.status_code == 422
    assert isinstance(answer.json()["errors"], list)


def test_tracking_for_an_unknown_order_is_rejected_with_shopifys_not_found(sandbox, shop_name):
    connector = connect(sandbox, shop_name)

    with pytest.raises(Rejected) as caught:
        connector.push_tracking("123456", "SF", "SF1")

    assert caught.value.code == 404 and caught.value.body == {"errors": "Not Found"}


def test_an_unmapped_carrier_is_rejected_before_any_request(sandbox, shop_name):
    requests: list[httpx.Request] = []
    client = httpx.Client(event_hooks={"request": [requests.append]})
    connector = connect(sandbox, shop_name, http=client)

    with pytest.raises(Rejected):
        connector.push_tracking("9801", "UPS", "1Z999")

    assert requests == []


def test_an_offline_token_cannot_be_refreshed_and_the_merchant_is_told_to_reinstall(sandbox, shop_name):
    with pytest.raises(Rejected, match="install the app again"):
        connect(sandbox, shop_name).refresh_access("anything")
