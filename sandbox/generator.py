"""Seeded, reproducible orders with the dirt real buyers and platforms put in them.

`populate` fills one simulated shop with orders; `advance` lets time pass so that a
re-fetch has updates to find. The same seed and the same `now` give the same orders on
a fresh state, so a failing test or a benchmark can be replayed exactly.

Every piece of dirt an order carries is named in `SimOrder.defects`, so tests can pick
the orders that must end up in the review queue (or must be cleaned) without guessing.
All dirt rates live in `DIRT_RATES`; the names and addresses come from Faker and belong
to nobody.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from faker import Faker

from sandbox.geography import (
    GEOGRAPHY,
    LANDLINE_AREA_CODES,
    MOBILE_PREFIXES,
    UNKNOWN_PROVINCE,
)
from sandbox.markets import CHINA, Market, foreign_receiver
from sandbox.model import SandboxState, SimLine, SimOrder

# How often each kind of dirt appears: per order, except the two line defects, which
# are per order line. The keys are the names written into `SimOrder.defects`.
DIRT_RATES: dict[str, float] = {
    # phone spellings that all mean a valid number
    "phone_intl_spaced": 0.05,  # '+86 138 0013 8000'
    "phone_0086_prefix": 0.04,  # '0086-13800138000'
    "phone_paren_plus86": 0.03,  # '(+86)13800138000'
    "phone_fullwidth": 0.03,  # '１３８００１３８０００', typed with a Chinese input method
    "phone_landline": 0.02,  # '0755-88881234', a desk phone instead of a mobile
    # receiver data that is wrong or missing
    "phone_too_short": 0.01,
    "missing_phone": 0.02,
    "missing_address": 0.01,
    "missing_province": 0.01,
    "unknown_province": 0.005,  # '火星省'
    "province_alias": 0.15,  # '广西', '内蒙', '粤' instead of the standard name
    # per order line
    "line_without_sku": 0.01,
    "zero_quantity": 0.005,
    # the same buyer and address again (what merge-shipment keys must catch)
    "repeat_buyer": 0.05,
    # the same order served twice in one listing (what upserts must absorb)
    "repeated": 0.02,
}

# A phone or a province has at most one of these at a time.
PHONE_DIRT = tuple(k for k in DIRT_RATES if k.startswith("phone_")) + ("missing_phone",)
PROVINCE_DIRT = ("missing_province", "unknown_province", "province_alias")

# Share of orders touched again after they were placed (address edit, late payment,
# cancellation), so that updated_at differs from created_at.
LATE_UPDATE_RATE = 0.20

STATUS_WEIGHTS = {"paid": 80, "unpaid": 8, "cancelled": 6, "shipped": 4, "delivered": 2}

FIRST_ORDER_ID = 100_001
NEWEST_ORDER_AGE = timedelta(minutes=5)
NEWEST_UPDATE_AGE = timedelta(minutes=1)
@dataclass(frozen=True)
class CatalogItem:
    sku: str
    title: str
    price: Decimal


def _default_catalog() -> list[CatalogItem]:
    products = (
        ("保温杯", "39.90"), ("帆布包", "59.00"), ("蓝牙耳机", "129.00"), ("数据线", "19.90"),
        ("手机壳", "25.00"), ("棉袜三双装", "29.90"), ("洗面奶", "45.50"), ("抽纸十包", "32.80"),
        ("绿茶250克", "68.00"), ("运动水壶", "49.00"),
    )  # fmt: skip
    variants = (("白色", "0.00"), ("黑色", "0.00"), ("蓝色", "5.00"), ("礼盒装", "20.00"))
    items = []
    for product_number, (product, base_price) in enumerate(products):
        for variant_number, (variant, surcharge) in enumerate(variants):
            code = f"SKU-{product_number * len(variants) + variant_number + 1:04d}"
            price = Decimal(base_price) + Decimal(surcharge)
            items.append(CatalogItem(code, f"{product} {variant}", price))
    return items


DEFAULT_SKUS: list[CatalogItem] = _default_catalog()
_CATALOG_BY_SKU = {item.sku: item for item in DEFAULT_SKUS}


def _catalog_for(skus: list[str] | None) -> list[CatalogItem]:
    if skus is None:
        return DEFAULT_SKUS
    return [_CATALOG_BY_SKU.get(sku) or _unlisted_item(sku) for sku in skus]


def _unlisted_item(sku: str) -> CatalogItem:
    # Seeded by the SKU itself, so a caller's own SKU list always gets the same prices.
    price = Decimal(random.Random(sku).randint(990, 29900)) / 100
    return CatalogItem(sku, f"商品 {sku}", price.quantize(Decimal("0.01")))


@dataclass(frozen=True)
class _Buyer:
    receiver: dict[str, str | None]  # SimOrder's buyer and receiver fields, by name
    defects: frozenset[str]


class _OrderMaker:
    """Draws orders one after the other from one seeded random stream."""

    def __init__(self, seed: int, now: datetime, span_hours: float, market: Market,
                 catalog: list[CatalogItem]) -> None:  # fmt: skip
        self.rng = random.Random(seed)
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)
        self.local_fake = self.fake if market is CHINA else Faker(market.faker_locale)
        self.local_fake.seed_instance(seed)
        self.now = now
        self.span = timedelta(hours=span_hours)
        self.market = market
        self.currency = market.currency
        self.catalog = catalog
        self.buyers: list[_Buyer] = []

    def chance(self, dirt: str) -> bool:
        return self.rng.random() < DIRT_RATES[dirt]

    def one_of(self, exclusive_dirts: tuple[str, ...]) -> str | None:
        """At most one of several dirt kinds that cannot coexist, each at its own rate."""
        draw = self.rng.random()
        for dirt in exclusive_dirts:
            if draw < DIRT_RATES[dirt]:
                return dirt
            draw -= DIRT_RATES[dirt]
        return None

    def order(self, shop: str) -> SimOrder:
        rng = self.rng
        oldest = self.now - self.span
        newest = self.now - NEWEST_ORDER_AGE
        created_at = _whole_seconds(oldest + (newest - oldest) * rng.random())
        status = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
        buyer = self.buyer()
        lines, line_defects = self.lines()
        order = SimOrder(
            order_id=0,  # numbered when the batch joins the state
            shop=shop,
            created_at=created_at,
            updated_at=created_at,
            status=status,
            currency=self.currency,
            lines=lines,
            shipping_fee=Decimal(rng.choice(("0", "0", "0", "6", "8", "10", "12"))),
            note=rng.choice(("", "", "", "", "请尽快发货", "不要放快递柜", "周末送货")),
            defects=set(buyer.defects) | line_defects,
            **buyer.receiver,
        )
        self.time_updates(order)
        return order

    def time_updates(self, order: SimOrder) -> None:
        rng = self.rng
        latest = self.now - NEWEST_UPDATE_AGE
        # How long after creation the order's own status was last set, in seconds.
        settle_range = {
            "unpaid": (0, 0),
            "paid": (5, 90),
            "cancelled": (60, 1800),
            "shipped": (2 * 3600, 24 * 3600),
            "delivered": (24 * 3600, 47 * 3600),
        }[order.status]
        settled = order.created_at + timedelta(seconds=rng.uniform(*settle_range))
        order.updated_at = _whole_seconds(max(order.created_at, min(settled, latest)))
        if order.status in ("shipped", "delivered") or rng.random() >= LATE_UPDATE_RATE:
            return
        late_kind = {
            "unpaid": "address_edited",
            "paid": rng.choice(("address_edited", "paid_later")),
            "cancelled": "cancelled_later",
        }[order.status]
        if late_kind == "address_edited" and order.address is not None:
            order.address = self.street_address(order.district or "")
        order.defects.add(late_kind)
        late = order.updated_at + (latest - order.updated_at) * rng.random()
        order.updated_at = _whole_seconds(late)

    def buyer(self) -> _Buyer:
        if self.buyers and self.chance("repeat_buyer"):
            earlier = self.rng.choice(self.buyers)
            return replace(earlier, defects=earlier.defects | {"repeat_buyer"})
        buyer = self.new_buyer()
        self.buyers.append(buyer)
        return buyer

    def new_buyer(self) -> _Buyer:
        if self.market.country != "CN":
            # Chinese phone and province dirt means nothing abroad; only a missing address does.
            receiver = foreign_receiver(self.market, self.local_fake, self.rng)
            if self.chance("missing_address"):
                receiver["address"] = None
                return _Buyer(receiver, frozenset({"missing_address"}))
            return _Buyer(receiver, frozenset())
        rng, defects = self.rng, set()
        standard, aliases, city, districts = rng.choice(GEOGRAPHY)
        district = rng.choice(districts)
        province: str | None = standard
        province_dirt = self.one_of(PROVINCE_DIRT)
        if province_dirt == "province_alias":
            province = rng.choice(aliases)
        elif province_dirt == "unknown_province":
            province = UNKNOWN_PROVINCE
        elif province_dirt == "missing_province":
            province = None
        address: str | None = self.street_address(district)
        if self.chance("missing_address"):
            address = None
            defects.add("missing_address")
        phone, phone_dirt = self.phone()
        defects.update(d for d in (province_dirt, phone_dirt) if d)
        receiver = {
            "buyer_id": f"buyer-{rng.randrange(10**8):08d}",
            "receiver_name": self.fake.name(),
            "phone": phone,
            "province": province,
            "city": city,
            "district": district,
            "address": address,
            "postal_code": self.fake.postcode() if rng.random() < 0.7 else None,
        }
        return _Buyer(receiver, frozenset(defects))

    def street_address(self, district: str) -> str:
        return _street_address(self.rng, self.fake, district)

    def phone(self) -> tuple[str | None, str | None]:
        """A phone as the buyer typed it, and the dirt name of that spelling (if any)."""
        rng = self.rng
        mobile = rng.choice(MOBILE_PREFIXES) + "".join(rng.choices("0123456789", k=8))
        spelling = self.one_of(PHONE_DIRT)
        return (_spell_phone(spelling, mobile, rng) if spelling else mobile), spelling

    def lines(self) -> tuple[list[SimLine], set[str]]:
        rng, defects = self.rng, set()
        count = min(rng.choices((1, 2, 3), weights=(70, 20, 10))[0], len(self.catalog))
        lines = []
        for item in rng.sample(self.catalog, count):
            sku: str | None = item.sku
            quantity = rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
            if self.chance("line_without_sku"):
                sku = None
                defects.add("line_without_sku")
            if self.chance("zero_quantity"):
                quantity = 0
                defects.add("zero_quantity")
            lines.append(SimLine(sku, item.title, quantity, item.price))
        return lines, defects


def _spell_phone(spelling: str, mobile: str, rng: random.Random) -> str | None:
    if spelling == "phone_intl_spaced":
        return f"+86 {mobile[:3]} {mobile[3:7]} {mobile[7:]}"
    if spelling == "phone_0086_prefix":
        return f"0086-{mobile}"
    if spelling == "phone_paren_plus86":
        return f"(+86){mobile}"
    if spelling == "phone_fullwidth":
        return mobile.translate(_FULLWIDTH_DIGITS)
    if spelling == "phone_landline":
        area = rng.choice(LANDLINE_AREA_CODES)
        return f"{area}-{rng.randint(2, 8)}{''.join(rng.choices('0123456789', k=7))}"
    if spelling == "phone_too_short":
        return mobile[: rng.randint(5, 8)]
    return None  # missing_phone


def _street_address(rng: random.Random, fake: Faker, district: str) -> str:
    """The part of an address after the city: district, street, building, flat."""
    return (
        f"{district}{fake.street_name()}{rng.randint(1, 999)}号"
        f"{rng.randint(1, 30)}栋{rng.randint(101, 2505)}室"
    )


_FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


def _whole_seconds(moment: datetime) -> datetime:
    # Platforms report times to the second; finer times would make watermarks disagree.
    return moment.replace(microsecond=0)


def populate(
    state: SandboxState,
    shop: str,
    *,
    count: int,
    seed: int,
    now: datetime,
    span_hours: float = 48.0,
    market: Market = CHINA,
    skus: list[str] | None = None,
) -> list[SimOrder]:
    """Add `count` orders to `shop`, created within `span_hours` before `now`.

    Returns the new orders once each (a repeated order appears twice in the shop's list
    but once here). Order ids continue after the highest id anywhere in the state.
    """
    catalog = _catalog_for(skus)
    maker = _OrderMaker(seed, now, span_hours, market, catalog)
    orders = sorted((maker.order(shop) for _ in range(count)), key=lambda o: o.created_at)
    repeated = [maker.chance("repeated") for _ in orders]
    with state.lock:
        listed = state.catalogs.setdefault(shop, [])
        listed.extend(item.sku for item in catalog if item.sku not in listed)
        next_id = _next_order_id(state)
        shop_list = state.orders[shop]
        for offset, (order, twice) in enumerate(zip(orders, repeated)):
            _number(order, next_id + offset)
            shop_list.append(order)
            if twice:
                order.defects.add("repeated")
                shop_list.append(order)
    return orders


def _next_order_id(state: SandboxState) -> int:
    highest = max(
        (order.order_id for orders in state.orders.values() for order in orders),
        default=FIRST_ORDER_ID - 1,
    )
    return max(highest, FIRST_ORDER_ID - 1) + 1


def _number(order: SimOrder, order_id: int) -> None:
    order.order_id = order_id
    for position, line in enumerate(order.lines, start=1):
        # Unique across the state, as platforms' line item ids are.
        line.line_id = order_id * 100 + position


def advance(
    state: SandboxState,
    shop: str,
    *,
    seed: int,
    now: datetime,
    fraction: float = 0.1,
) -> list[SimOrder]:
    """Let time pass: cancel some paid orders and edit the address of others.

    Each changed order gets an `updated_at` a few minutes before `now`, so a fetch that
    ends at `now` sees it again. Returns the changed orders.
    """
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    changed = []
    with state.lock:
        paid = list({id(o): o for o in state.orders[shop] if o.status == "paid"}.values())
        for order in rng.sample(paid, round(len(paid) * fraction)):
            if rng.random() < 0.5:
                order.status = "cancelled"
                order.defects.add("cancelled_later")
            else:
                order.address = _street_address(rng, fake, order.district or "")
                order.defects.add("address_edited")
            moved_to = now - timedelta(seconds=rng.uniform(30, 300))
            just_after = order.updated_at + timedelta(seconds=1)
            order.updated_at = _whole_seconds(max(moved_to, just_after))
            changed.append(order)
    return changed
