"""Stock sync out to Shopify, Shopee, Lazada and Amazon, against the sandbox over real HTTP.

Each platform's connector lists the shop's listings and pushes absolute quantities; the
simulator records what it accepted, and the tests read that back through the sandbox's
`/_sandbox/stock/{shop}` endpoint, as an operator would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import httpx
import pytest

from connectors.amazon import AmazonConnector
from connectors.base import Listing, ShopAccess, StockLevel
from connectors.lazada import MAX_SKUS_PER_STOCK_UPDATE, LazadaConnector
from connectors.pacing import RequestRate
from connectors.shopee import RATE_LIMIT_WAIT_SECONDS, ShopeeConnector
from connectors.shopify import ShopifyConnector
from oms.domain.errors import RateLimited, Rejected, TokenExpired, Unavailable
from sandbox import amazon as amazon_sim
from sandbox import lazada as lazada_sim
from sandbox import shopify as shopify_sim
from sandbox.app import add_simulated_shop, shop_base_url
from sandbox.generator import populate

FAST = RequestRate(per_second=100_000, burst=100_000)  # pacing has its own tests
THROTTLE_RETRY_AFTER = 7  # what the armed rate_limit fault tells the client to wait


class RecordingClient(httpx.Client):
    """An httpx client that keeps the method and path of every request it sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        self.sent.append((request.method, request.url.path))

    def count(self, path_end: str) -> int:
        return sum(path.endswith(path_end) for _, path in self.sent)


@dataclass(frozen=True)
class Platform:
    """What the tests need to know of one platform's connector and simulator."""

    name: str
    connect: Callable[[str, str, dict, httpx.Client], object]  # (url, shop, creds, http)
    stock_path: str  # where the stock-setting call goes
    batches: bool  # one call sets several listings
    ghost: Callable[[Listing], Listing]  # a listing the platform does not have
    throttle_wait: float  # the RateLimited.retry_after an armed 429 should produce


def _access(platform: str, url: str, shop: str, credentials: dict) -> ShopAccess:
    return ShopAccess(shop, platform, shop_base_url(platform, url, shop), credentials)


PLATFORMS = [
    Platform(
        "shopify",
        # Shopify pages products 15 a page here; its pacing is the real plan (burst 40).
        lambda url, shop, creds, http: ShopifyConnector(
            _access("shopify", url, shop, creds), http=http, page_size=15),
        "/inventory_levels/set.json", batches=False,
        ghost=lambda real: replace(real, sku="GHOST-1", item_id="999999999"),
        throttle_wait=THROTTLE_RETRY_AFTER,  # its Retry-After header
    ),
    Platform(
        "shopee",
        lambda url, shop, creds, http: ShopeeConnector(
            _access("shopee", url, shop, creds), http=http, page_size=3, request_rate=FAST),
        "/api/v2/product/update_stock", batches=True,
        # A model the item does not have, sent in the same call as its real models.
        ghost=lambda real: replace(real, sku="GHOST-1", variant_id="999"),
        throttle_wait=RATE_LIMIT_WAIT_SECONDS,  # error_rate_limit names no wait
    ),
    Platform(
        "lazada",
        lambda url, shop, creds, http: LazadaConnector(
            _access("lazada", url, shop, creds), http=http, page_size=15, rate=FAST),
        "/product/stock/sellable/update", batches=True,
        ghost=lambda real: replace(real, sku="GHOST-1", variant_id="999"),
        throttle_wait=THROTTLE_RETRY_AFTER,  # named in the ApiCallLimit message
    ),
    Platform(
        "amazon",
        lambda url, shop, creds, http: AmazonConnector(
            _access("amazon", url, shop, creds), http=http, request_rate=FAST),
        "", batches=False,  # patchListingsItem: /listings/2021-08-01/items/{seller}/{sku}
        ghost=lambda real: replace(real, sku="GHOST-1", item_id=""),
        # One token of patchListingsItem's documented plan (5 per second).
        throttle_wait=1 / 5,
    ),
]


@pytest.fixture(params=PLATFORMS, ids=lambda platform: platform.name)
def platform(request) -> Platform:
    return request.param


@pytest.fixture
def http():
    with RecordingClient() as client:
        yield client


@pytest.fixture
def shop(sandbox, shop_name, platform) -> tuple[str, dict]:
    """A shop of the platform with seeded orders, and its credentials."""
    credentials = add_simulated_shop(sandbox.state, platform.name, shop_name, orders=30, seed=11)
    return shop_name, credentials


@pytest.fixture
def connector(sandbox, platform, shop, http):
    shop_name, credentials = shop
    return platform.connect(sandbox.url, shop_name, credentials, http)


def stock_calls(platform: Platform, http: RecordingClient) -> int:
    if platform.name == "amazon":
        return sum(method == "PATCH" for method, _ in http.sent)
    return http.count(platform.stock_path)


def shown_levels(sandbox, shop_name: str) -> dict[str, int]:
    answer = httpx.get(f"{sandbox.url}/_sandbox/stock/{shop_name}", timeout=10)
    answer.raise_for_status()
    return answer.json()["levels"]


def arm(sandbox, platform: Platform, kind: str) -> None:
    armed = httpx.post(f"{sandbox.url}/_sandbox/faults", timeout=10, json={
        "platform": platform.name, "kind": kind, "times": 1,
        "retry_after": THROTTLE_RETRY_AFTER})
    armed.raise_for_status()


def all_listings(connector) -> list[Listing]:
    return [listing for page in connector.list_listings() for listing in page]


# ---------------------------------------------------------------- listings


def test_listings_carry_the_seller_skus_of_the_shops_orders_over_several_pages(
    sandbox, platform, shop, connector
):
    shop_name, _ = shop
    pages = list(connector.list_listings())

    listed = [listing.sku for page in pages for listing in page]
    ordered = {line.sku for order in sandbox.state.orders[shop_name]
               for line in order.lines if line.sku}
    assert len(pages) > 1
    assert sorted(listed) == sorted(sandbox.state.listed_skus(shop_name))  # each once
    assert ordered and ordered <= set(listed)
    assert all(listing.item_id or platform.name == "amazon" for page in pages for listing in page)


def test_listing_ids_are_stable_across_calls(connector):
    assert all_listings(connector) == all_listings(connector)


# ---------------------------------------------------------------- pushing


def test_pushed_quantities_land_on_the_platform_and_show_in_its_listings(
    sandbox, shop, connector
):
    shop_name, _ = shop
    listings = all_listings(connector)[:8]
    levels = [StockLevel(listing, 10 + n) for n, listing in enumerate(listings)]

    outcomes = connector.push_stock(levels)

    assert [(o.sku, o.quantity, o.ok) for o in outcomes] == [
        (level.listing.sku, level.quantity, True) for level in levels]
    assert shown_levels(sandbox, shop_name) == {l.listing.sku: l.quantity for l in levels}
    shown = {listing.sku: listing.quantity for listing in all_listings(connector)}
    assert all(shown[level.listing.sku] == level.quantity for level in levels)


def test_pushing_the_same_level_twice_sets_the_same_number(sandbox, shop, connector):
    shop_name, _ = shop
    level = StockLevel(all_listings(connector)[0], 5)

    connector.push_stock([level])
    connector.push_stock([level])

    assert shown_levels(sandbox, shop_name) == {level.listing.sku: 5}


def test_an_unknown_listing_is_refused_alone_while_the_others_are_set(
    sandbox, platform, shop, connector
):
    shop_name, _ = shop
    first, second = all_listings(connector)[:2]
    levels = [StockLevel(first, 3), StockLevel(platform.ghost(first), 4), StockLevel(second, 6)]

    outcomes = connector.push_stock(levels)

    assert [o.sku for o in outcomes] == [first.sku, "GHOST-1", second.sku]
    assert [o.ok for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, Rejected) and not outcomes[1].error.retryable
    assert shown_levels(sandbox, shop_name) == {first.sku: 3, second.sku: 6}


def test_a_negative_quantity_is_refused_and_sets_nothing(sandbox, shop, connector):
    shop_name, _ = shop
    listing = all_listings(connector)[0]

    [outcome] = connector.push_stock([StockLevel(listing, -2)])

    assert isinstance(outcome.error, Rejected)
    assert listing.sku not in shown_levels(sandbox, shop_name)


def test_batching_platforms_set_many_listings_per_call(platform, connector, http):
    listings = all_listings(connector)[:8]

    connector.push_stock([StockLevel(listing, 1) for listing in listings])

    calls = stock_calls(platform, http)
    if platform.batches:
        assert 1 <= calls < len(listings)
    else:
        assert calls == len(listings)


def test_lazada_sends_at_most_fifty_skus_per_call(sandbox, shop_name, http):
    skus = [f"TH-{n:03d}" for n in range(MAX_SKUS_PER_STOCK_UPDATE + 10)]
    populate(sandbox.state, shop_name, count=3, seed=5, now=datetime.now(timezone.utc),
             market=lazada_sim.MARKET, skus=skus)
    credentials = lazada_sim.register_shop(sandbox.state, shop_name, datetime.now(timezone.utc))
    connector = PLATFORMS[2].connect(sandbox.url, shop_name, credentials, http)
    levels = [StockLevel(listing, 2) for listing in all_listings(connector)]

    outcomes = connector.push_stock(levels)

    assert len(levels) == len(skus) and all(outcome.ok for outcome in outcomes)
    assert http.count("/product/stock/sellable/update") == 2
    assert len(shown_levels(sandbox, shop_name)) == len(skus)


# ---------------------------------------------------------------- whole-call failures


@pytest.mark.parametrize("step", ["list", "push"])
@pytest.mark.parametrize("fault, error", [
    ("expired_token", TokenExpired), ("server_error", Unavailable), ("rate_limit", RateLimited),
])
def test_a_failure_of_the_whole_call_is_raised_as_its_connector_error(
    sandbox, platform, shop, connector, step, fault, error
):
    shop_name, _ = shop
    listing = all_listings(connector)[0]
    arm(sandbox, platform, fault)

    with pytest.raises(error) as raised:
        if step == "list":
            all_listings(connector)
        else:
            connector.push_stock([StockLevel(listing, 9)])

    assert raised.value.retryable
    if fault == "rate_limit":
        assert raised.value.retry_after == pytest.approx(platform.throttle_wait)
    assert shown_levels(sandbox, shop_name) == {}


# ---------------------------------------------------------------- the simulators' own rules


def test_shopify_inventory_set_takes_only_the_shops_location(sandbox, shop_name):
    shop = add_simulated_shop(sandbox.state, "shopify", shop_name, orders=3, seed=2)
    sku = sandbox.state.listed_skus(shop_name)[0]
    url = (f"{shopify_sim.shop_base_url(sandbox.url, shop_name)}/admin/api/"
           f"{shopify_sim.API_VERSION}/inventory_levels/set.json")
    body = {"location_id": 1, "inventory_item_id":
            shopify_sim.inventory_item_id_of(shop_name, sku), "available": 4}

    answer = httpx.post(url, json=body, headers={"X-Shopify-Access-Token": shop["access_token"]})

    assert answer.status_code == 422 and answer.json() == shopify_sim.UNKNOWN_LOCATION_BODY
    assert shown_levels(sandbox, shop_name) == {}


def test_amazon_listings_belong_to_the_tokens_seller_only(sandbox, shop_name, http):
    credentials = add_simulated_shop(sandbox.state, "amazon", shop_name, orders=3, seed=2)
    foreign = {**credentials, "selling_partner_id": amazon_sim.seller_id_of("someone-else")}
    connector = PLATFORMS[3].connect(sandbox.url, shop_name, foreign, http)

    with pytest.raises(Rejected):
        all_listings(connector)

