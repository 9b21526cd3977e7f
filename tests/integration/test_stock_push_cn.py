"""Stock sync out for Taobao/Tmall, JD, Pinduoduo and Douyin, against the sandbox over HTTP.

Every platform is driven through the one `SyncsStock` protocol: the connector reads the
shop's listings, pushes absolute quantities, and the simulator's state shows what landed.
A `Platform` row names only what differs between them: the connector, the APIs that set
stock, whether they take several SKUs in one call, and how to send a negative quantity
past the connector's own guard to see the platform refuse it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import ModuleType
from urllib.parse import parse_qsl

import httpx
import pytest

from connectors import douyin, jd, pinduoduo, taobao
from connectors.base import Listing, ShopAccess, StockLevel
from connectors.pacing import RequestRate, TokenBucket
from oms.domain.errors import RateLimited, Rejected, TokenExpired, Unavailable
from sandbox import taobao as taobao_sim
from sandbox.app import add_simulated_shop, shop_base_url
from sandbox.generator import populate


def _query_names(name: str) -> Callable[[httpx.Request], str]:
    return lambda request: request.url.params.get(name, "")


def _form_names(name: str) -> Callable[[httpx.Request], str]:
    return lambda request: dict(parse_qsl(request.content.decode())).get(name, "")


@dataclass(frozen=True)
class Platform:
    name: str  # the sandbox's platform, and the key its faults are armed under
    module: ModuleType
    connector: type
    stock_apis: frozenset[str]
    batches: bool  # several SKUs of one item go in one call
    api_of: Callable[[httpx.Request], str]
    send_negative: Callable[[object, Listing], object]  # bypasses the connector's guard


PLATFORMS = [
    Platform(
        "taobao", taobao, taobao.TaobaoConnector,
        frozenset({taobao.SKUS_QUANTITY, taobao.ITEM_QUANTITY}), True, _query_names("method"),
        lambda c, listing: c._call(taobao.ITEM_QUANTITY, {
            "num_iid": listing.item_id, "sku_id": listing.variant_id, "quantity": -1, "type": 1}),
    ),
    Platform(
        "jd", jd, jd.JdConnector, frozenset({jd.STOCK_UPDATE}), False, _form_names("method"),
        lambda c, listing: c._call(jd.STOCK_UPDATE, {"skuId": int(listing.variant_id),
                                                     "stockNum": -1}),
    ),
    Platform(
        "pdd", pinduoduo, pinduoduo.PinduoduoConnector, frozenset({pinduoduo.QUANTITY_UPDATE}),
        False, _form_names("type"),
        lambda c, listing: c._call(pinduoduo.QUANTITY_UPDATE, {
            "goods_id": listing.item_id, "sku_id": listing.variant_id, "quantity": -1,
            "update_type": 1}),
    ),
    Platform(
        "douyin", douyin, douyin.DouyinConnector,
        frozenset({douyin.SYNC_STOCK, douyin.SYNC_STOCK_BATCH}), True, _query_names("method"),
        lambda c, listing: c._call(douyin.SYNC_STOCK, {
            "product_id": int(listing.item_id), "sku_id": int(listing.variant_id),
            "stock_num": -1, "incremental": False}),
    ),
]
TAOBAO = next(platform for platform in PLATFORMS if platform.name == "taobao")
UNKNOWN_ID = "987654321012"  # all digits, so only the platform can say it is not a listing


class RecordingClient(httpx.Client):
    """An httpx client that notes the API name of every request it sends."""

    def __init__(self, api_of: Callable[[httpx.Request], str]) -> None:
        self.apis: list[str] = []
        self._api_of = api_of
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        self.apis.append(self._api_of(request))


class CountingBucket(TokenBucket):
    """A shop's request budget that never makes a caller wait, and counts the turns taken."""

    def __init__(self, asked_rate: RequestRate) -> None:
        super().__init__(RequestRate(per_second=1_000_000, burst=1_000_000))
        self.asked_rate = asked_rate
        self.turns = 0

    def take(self) -> float:
        self.turns += 1
        return super().take()


@dataclass
class Shop:
    name: str
    credentials: dict
    buckets: dict[tuple[str, str], CountingBucket] = field(default_factory=dict)


@pytest.fixture(params=PLATFORMS, ids=lambda platform: platform.name)
def platform(request) -> Platform:
    return request.param


@pytest.fixture
def shop(sandbox, platform, shop_name, monkeypatch) -> Shop:
    """A shop of 40 catalogue SKUs with seeded orders, whose connector budget is counted."""
    credentials = add_simulated_shop(sandbox.state, platform.name, shop_name, orders=60, seed=11)
    made = Shop(shop_name, credentials)

    def counted_bucket(platform_name: str, shop_code: str, rate: RequestRate) -> CountingBucket:
        return made.buckets.setdefault((platform_name, shop_code), CountingBucket(rate))

    monkeypatch.setattr(platform.module, "shop_bucket", counted_bucket)
    return made


def connect(sandbox, platform: Platform, shop: Shop, page_size: int = 100, http=None):
    access = ShopAccess(shop.name, platform.name,
                        shop_base_url(platform.name, sandbox.url, shop.name), shop.credentials)
    return platform.connector(access, http=http, page_size=page_size)


def all_listings(connector) -> list[Listing]:
    return [listing for page in connector.list_listings() for listing in page]


def landed(sandbox, shop: Shop) -> dict[str, int]:
    """What the simulator shows as each listing's sellable quantity, read over HTTP."""
    return httpx.get(f"{sandbox.url}/_sandbox/stock/{shop.name}").json()["levels"]


# ---- listings ----------------------------------------------------------------------------


def test_listings_come_paged_with_the_seller_sku_codes_the_shop_orders_use(
        sandbox, platform, shop):
    pages = list(connect(sandbox, platform, shop, page_size=3).list_listings())
    listed = [listing for page in pages for listing in page]

    assert len(pages) > 1
    ordered_skus = {line.sku for order in sandbox.state.orders[shop.name]
                    for line in order.lines if line.sku}
    assert ordered_skus and ordered_skus <= {listing.sku for listing in listed}
    assert sorted(listing.sku for listing in listed) == sorted(sandbox.state.listed_skus(shop.name))
    assert all(listing.item_id.isdigit() and listing.variant_id.isdigit() for listing in listed)


def test_platform_ids_are_the_same_on_every_read(sandbox, platform, shop):
    def ids(page_size: int) -> set[tuple[str, str, str]]:
        connector = connect(sandbox, platform, shop, page_size=page_size)
        return {(l.sku, l.item_id, l.variant_id) for l in all_listings(connector)}

    first = ids(3)

    assert first == ids(100)
    assert len({variant for _, _, variant in first}) == len(first)


def test_taobao_items_without_skus_are_listed_and_set_by_their_own_outer_id(sandbox, shop_name):
    now = datetime.now(timezone.utc)
    populate(sandbox.state, shop_name, count=5, seed=3, now=now, skus=["TB-SOLO-1", "SKU-0001"])
    shop = Shop(shop_name, taobao_sim.register_shop(sandbox.state, shop_name, now))
    connector = connect(sandbox, TAOBAO, shop)
    by_sku = {listing.sku: listing for listing in all_listings(connector)}

    solo = by_sku["TB-SOLO-1"]
    outcomes = connector.push_stock([StockLevel(solo, 7), StockLevel(by_sku["SKU-0001"], 2)])

    assert solo.variant_id == "" and by_sku["SKU-0001"].variant_id != ""
    assert [outcome.ok for outcome in outcomes] == [True, True]
    assert landed(sandbox, shop) == {"TB-SOLO-1": 7, "SKU-0001": 2}


# ---- pushes ------------------------------------------------------------------------------


def test_pushed_quantities_land_in_the_simulator(sandbox, platform, shop):
    connector = connect(sandbox, platform, shop)
    listed = all_listings(connector)
    levels = [StockLevel(listing, number * 3) for number, listing in enumerate(listed)]

    outcomes = connector.push_stock(levels)

    assert [(o.sku, o.quantity, o.ok) for o in outcomes] == [
        (level.listing.sku, level.quantity, True) for level in levels]
    assert landed(sandbox, shop) == {level.listing.sku: level.quantity for level in levels}
    assert {l.sku: l.quantity for l in all_listings(connector)} == landed(sandbox, shop)


@pytest.mark.parametrize("unknown", ["item", "variant of a listed item"])
def test_an_unknown_listing_is_refused_on_its_own_while_the_others_are_set(
        sandbox, platform, shop, unknown):
    connector = connect(sandbox, platform, shop)
    listed = all_listings(connector)
    first = listed[0]
    item_id = UNKNOWN_ID if unknown == "item" else first.item_id
    ghost = Listing(sku="SKU-GHOST", item_id=item_id, variant_id=UNKNOWN_ID)
    siblings = [l for l in listed if l.item_id == first.item_id]
    levels = [StockLevel(siblings[0], 5), StockLevel(ghost, 9),
              *(StockLevel(l, 6) for l in siblings[1:])]

    outcomes = connector.push_stock(levels)

    refused = [o for o in outcomes if not o.ok]
    assert [o.sku for o in refused] == ["SKU-GHOST"]
    assert isinstance(refused[0].error, Rejected) and refused[0].error.platform == platform.name
    assert landed(sandbox, shop) == {l.sku: (5 if l is siblings[0] else 6) for l in siblings}


def test_a_negative_quantity_is_refused_before_any_request_leaves(sandbox, platform, shop):
    listed = all_listings(connect(sandbox, platform, shop))
    with RecordingClient(platform.api_of) as http:
        connector = connect(sandbox, platform, shop, http=http)

        alone = connector.push_stock([StockLevel(listed[0], -1)])
        sent_for_it = list(http.apis)
        mixed = connector.push_stock([StockLevel(listed[0], -2), StockLevel(listed[1], 4)])

    assert sent_for_it == []
    assert [o.error.code for o in alone] == ["negative_quantity"]
    assert isinstance(alone[0].error, Rejected)
    assert [o.ok for o in mixed] == [False, True]
    assert landed(sandbox, shop) == {listed[1].sku: 4}


def test_the_platform_refuses_a_negative_quantity_too(sandbox, platform, shop):
    connector = connect(sandbox, platform, shop)
    listing = all_listings(connector)[0]

    with pytest.raises(Rejected):
        platform.send_negative(connector, listing)

    assert landed(sandbox, shop) == {}


# ---- whole-call failures -----------------------------------------------------------------


def test_an_expired_token_raises_token_expired(sandbox, platform, shop):
    connector = connect(sandbox, platform, shop)
    listing = all_listings(connector)[0]
    sandbox.state.expire(shop.credentials["access_token"])

    with pytest.raises(TokenExpired):
        connector.push_stock([StockLevel(listing, 3)])
    with pytest.raises(TokenExpired):
        all_listings(connector)
    assert landed(sandbox, shop) == {}


@pytest.mark.parametrize("fault, raised",
                         [("server_error", Unavailable), ("rate_limit", RateLimited)])
def test_a_platform_fault_raises_a_retryable_error_and_sets_nothing(
        sandbox, platform, shop, fault, raised):
    connector = connect(sandbox, platform, shop)
    listed = all_listings(connector)

    sandbox.state.faults.arm(platform.name, fault)
    with pytest.raises(raised) as caught:
        connector.push_stock([StockLevel(listing, 1) for listing in listed])
    sandbox.state.faults.arm(platform.name, fault)
    with pytest.raises(raised):
        all_listings(connector)

    assert caught.value.retryable
    assert landed(sandbox, shop) == {}


# ---- batching and pacing -----------------------------------------------------------------


def test_stock_goes_in_one_call_per_item_where_the_platform_batches(sandbox, platform, shop):
    listed = all_listings(connect(sandbox, platform, shop))
    with RecordingClient(platform.api_of) as http:
        connect(sandbox, platform, shop, http=http).push_stock(
            [StockLevel(listing, 2) for listing in listed])

    stock_calls = [api for api in http.apis if api in platform.stock_apis]
    items = {listing.item_id for listing in listed}
    if platform.batches:
        assert len(stock_calls) == len(items) < len(listed)
    else:  # JD and PDD take one SKU per call
        assert len(stock_calls) == len(listed)
    assert len(landed(sandbox, shop)) == len(listed)


def test_every_request_waits_its_turn_in_the_shop_budget(sandbox, platform, shop):
    with RecordingClient(platform.api_of) as http:
        connector = connect(sandbox, platform, shop, page_size=3, http=http)
        connector.push_stock([StockLevel(listing, 1) for listing in all_listings(connector)])

    bucket = shop.buckets[(platform.module.PLATFORM, shop.name)]
    assert len(http.apis) > 1
    assert bucket.turns == len(http.apis)
    assert bucket.asked_rate == platform.module.REQUEST_RATE
