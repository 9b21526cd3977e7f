"""The Shopee simulator's wire vocabulary: order_sn, statuses, channels, masks, error bodies,
and the shop's items and models.

Shopee v2 (reference §3.5) sends unix-second times, money as floats in the order's own
currency, one status string, and a recipient address that is masked for most markets
(all "****" for Taiwan). `render_order` builds the full detail object; the simulator keeps
only the default fields plus those a caller names in `response_optional_fields`.

A shop's listings are items; an item with variations has models, each with its own
`model_sku`, an item without them carries the SKU as `item_sku` (model_id 0). Orders
and the product APIs derive item and model ids alike from the shop and the SKU, so an
order line names the model the listing shows.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sandbox.generator import DEFAULT_SKUS
from sandbox.model import SimLine, SimOrder

# neutral status -> the order_status Shopee shows (reference §3.4 enum)
ORDER_STATUS = {
    "unpaid": "UNPAID", "paid": "READY_TO_SHIP", "shipped": "SHIPPED",
    "delivered": "COMPLETED", "cancelled": "CANCELLED",
}
# package logistics_status per neutral status (values from reference §3.5)
LOGISTICS_STATUS = {
    "unpaid": "LOGISTICS_NOT_START", "paid": "LOGISTICS_READY",
    "shipped": "LOGISTICS_PICKUP_DONE", "delivered": "LOGISTICS_DELIVERY_DONE",
    "cancelled": "LOGISTICS_REQUEST_CANCELED",
}
# Returned whether asked for or not (reference §3.5); everything else is optional.
DEFAULT_FIELDS = frozenset({
    "order_sn", "region", "currency", "cod", "order_status", "message_to_seller",
    "create_time", "update_time", "days_to_ship", "ship_by_date", "booking_sn",
})


@dataclass(frozen=True)
class Channel:
    channel_id: int
    name: str
    mode: str  # the one ship_order method the channel takes: pickup, dropoff, non_integrated
    countries: frozenset[str] | None = None  # None: every market


# --- UNVERIFIED (reference has no channel table; everything below is a simulator choice)
# Shopee lists channels per shop with logistics.get_channel_list, which is not in the
# reference: these ids are made up and the names are the carriers' trade names. SPX is
# integrated (Shopee books the pickup and issues the tracking number); the others take
# the seller's own tracking number, as reference §3.6 allows for dropoff/non-integrated.
CHANNELS = (
    Channel(18025, "SPX Express", "pickup"),
    Channel(18028, "Ninja Van", "dropoff"),
    Channel(18036, "J&T Express", "dropoff"),
    Channel(18050, "DHL eCommerce", "non_integrated"),
    Channel(70022, "Flash Express", "dropoff", frozenset({"TH", "PH"})),
)
DAYS_TO_SHIP = 2
MARKET_TIME = timezone(timedelta(hours=8))  # order_sn dates: Shopee's SG/MY/PH/TW clock
PICKUP_ADDRESS_ID = 234  # the reference's sample address_id
# Masks follow the shapes of the official VN sample ("P******n", "******64", "Ấp******");
# which fields are masked beyond name, phone and address is not documented: the region,
# state, city and zipcode stay readable here, town and district are masked.
TAIWAN_MASK = "****"
# --- end


def channels_for(country: str) -> tuple[Channel, ...]:
    return tuple(c for c in CHANNELS if c.countries is None or country in c.countries)


def channel_of(order: SimOrder) -> Channel:
    """The channel the buyer chose at checkout; stable for an order."""
    offered = channels_for(order.country_code)
    return offered[_stable_int(f"channel|{order.order_id}") % len(offered)]


# ---- error bodies ----------------------------------------------------------------------


@dataclass(frozen=True)
class ShopeeError:
    error: str
    message: str


# Error strings and messages: [H] from the schema dumps and reference §3.8.
WRONG_SIGN = ShopeeError("error_sign", "Wrong sign.")
NO_ACCESS_TOKEN = ShopeeError("error_param", "There is no access_token in query.")
STALE_TIMESTAMP = ShopeeError("error_param", "Timestamp is expired.")
BAD_TIMESTAMP = ShopeeError("error_param", "Invalid timestamp")
UNKNOWN_TOKEN = ShopeeError("error_auth", "Invalid access_token.")
EXPIRED_TOKEN = ShopeeError("invalid_acceess_token", "Invalid access_token, please have a check.")
WRONG_PARTNER_OR_SHOP = ShopeeError("error_auth", "Invalid partner_id or shopid.")
THROTTLED = ShopeeError(
    "error_rate_limit",
    "Too many requests. You have reached the rate limit. Please try again later.")
BAD_WINDOW = ShopeeError(
    "order.order_list_invalid_time", "Start time must be earlier than end time and diff in 15days.")
REFRESH_EXPIRED = ShopeeError("refresh_token_expired", "Your refresh_token expired.")
BAD_REFRESH = ShopeeError(
    "error_shop_refresh_token",
    "Your refresh token is error ,please check refresh token or shopid.")
NOT_READY_TO_SHIP = ShopeeError("logistics.ship_order_not_ready_to_ship",
                                "The order is not ready to ship.")
ALREADY_SHIPPED = ShopeeError(
    "logistics.package_already_shipped",
    "This package has already been arranged shipment and you can't call this API again.")
ONE_METHOD_ONLY = ShopeeError(
    "logistics.ship_order_only_support_one_type",
    "Please select just one way to ship order: pickup or dropoff or non_integrated.")
NO_PACKAGE_NUMBER_WANTED = ShopeeError(
    "logistics.ship_order_not_need_pacakge_number",
    "Please don’t request with package_number for this unsplit order.")
NEED_TRACKING = ShopeeError("logistics.ship_order_need_tracking_number",
                            "Parameter tracking_number can not be null.")
LONG_TRACKING = ShopeeError("logistics.ship_order_long_tracking_number",
                            "Parameter tracking_number can not be longer than 64.")
TRACKING_TAKEN = ShopeeError(
    "logistics.error_param",
    "The tracking number has been used by other orders, please fill in a valid one.")
ITEM_NOT_FOUND = ShopeeError("error_item_not_found", "Item_id is not found.")
STOCK_UPDATE_FAILED = ShopeeError(
    "error_busi_update_stock_failed",
    "Update stock failed, please check failure_list for detailed reason")
# [L] the failed_reason texts of update_stock's failure_list are the sandbox's own.
WRONG_MODEL_REASON = "Wrong model_id."
NEGATIVE_STOCK_REASON = "Stock should be larger than or equal to 0."
NEED_PICKUP_SLOT = ShopeeError("logistics.ship_order_need_address_pickup_time",
                               "Parameter address_id and pickup_time_id are required.")
ORDER_NOT_FOUND = ShopeeError("logistics.error_order_not_found", "Order is not found.")
UNSUPPORTED_METHOD = {  # ship_order with a method the order's channel does not take
    method: ShopeeError(f"logistics.ship_order_unsupport_{method}",
                        f"This order does not support ship with {method}.")
    for method in ("pickup", "dropoff", "non_integrated")
}


def bad_parameter(detail: str) -> ShopeeError:
    return ShopeeError("error_param", f"Wrong parameters, detail: {detail}.")


# ---- identities and times ----------------------------------------------------------

_BASE36 = string.digits + string.ascii_uppercase


def order_sn(order: SimOrder) -> str:
    """'YYMMDD' plus 8 base-36 characters, like '201218V2Y6E59M'; unique per order_id."""
    scrambled = (order.order_id * 1_103_515_245 + 12_345) % 36**8  # odd, not a multiple of 3
    tail = ""
    for _ in range(8):
        scrambled, digit = divmod(scrambled, 36)
        tail = _BASE36[digit] + tail
    return _aware(order.created_at).astimezone(MARKET_TIME).strftime("%y%m%d") + tail


def package_number(order: SimOrder) -> str:
    return f"OFG{_stable_int(f'package|{order.order_id}') % 10**15:015d}"


def seconds(moment: datetime | None) -> int:
    return 0 if moment is None else int(_aware(moment).timestamp())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:6], "big")


def tracking_number(order: SimOrder) -> str:
    """What get_tracking_number shows: the accepted write-back, else one Shopee issued."""
    if order.tracking:
        return order.tracking[-1]["tracking_number"]
    if order.status in ("shipped", "delivered"):
        return f"SPX{order.country_code}{_stable_int(f'awb|{order.order_id}') % 10**12:012d}"
    return ""


# ---- masks ---------------------------------------------------------------------------


def mask_name(name: str) -> str:
    if len(name) <= 2:
        return name[:1] + "*" * max(len(name) - 1, 1)
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return "******" + digits[-2:]


def mask_address(address: str) -> str:
    return address[:2] + "******"


def recipient_address(order: SimOrder) -> dict:
    plain_parts = (order.address, order.district, order.city, order.province, order.postal_code)
    full = ", ".join(part for part in plain_parts if part)
    if order.country_code == "TW":
        hidden = dict.fromkeys(("name", "phone", "town", "district", "city", "state", "zipcode",
                                "full_address"), TAIWAN_MASK)
        return {**hidden, "region": order.country_code}
    return {
        "name": mask_name(order.receiver_name or ""),
        "phone": mask_phone(order.phone or "") if order.phone else "",
        "town": "", "district": TAIWAN_MASK if order.district else "",
        "city": order.city or "", "state": order.province or "",
        "region": order.country_code, "zipcode": order.postal_code or "",
        "full_address": mask_address(full) if full else "",
    }


# ---- the shop's items and models ------------------------------------------------------

# --- UNVERIFIED (simulator choices): how SKUs gather into items.
# The generator's catalogue is products in four variants ("保温杯 白色", "保温杯 黑色"...):
# each product is an item whose variants are its models. Any other SKU is an item of its
# own, and half of those have one model (the SKU on the model), half none (on the item).
_PRODUCT_OF_SKU = {item.sku: item.title.split(" ")[0] for item in DEFAULT_SKUS}
_CATALOGUE_PRODUCTS = frozenset(_PRODUCT_OF_SKU.values())
ITEM_STATUSES = ("NORMAL", "BANNED", "UNLIST", "REVIEWING", "SELLER_DELETE", "SHOPEE_DELETE")
LISTED_SINCE = 1_704_067_200  # 2024-01-01: every sandbox item's create and update time
# --- end


def item_of(sku: str) -> str:
    """The key of the item a SKU (or, for a line without one, a title) is listed under."""
    return _PRODUCT_OF_SKU.get(sku, sku)


def item_has_models(item: str) -> bool:
    return item in _CATALOGUE_PRODUCTS or _stable_int(f"models|{item}") % 2 == 0


def item_id_of(shop: str, item: str) -> int:
    return _stable_int(f"item|{shop}|{item}") % 10**10


def model_id_of(shop: str, sku: str) -> int:
    return _stable_int(f"model|{shop}|{sku}") % 10**10


def shop_items(shop: str, skus: list[str]) -> dict[int, tuple[str, list[str]]]:
    """item_id -> (item key, its SKUs), items in the order their first SKU was listed."""
    items: dict[int, tuple[str, list[str]]] = {}
    for sku in skus:
        item = item_of(sku)
        items.setdefault(item_id_of(shop, item), (item, []))[1].append(sku)
    return items


def _stock_info(stock: int) -> dict:
    # One seller warehouse without a location id, as shops without multi-warehouse have.
    return {"summary_info": {"total_reserved_stock": 0, "total_available_stock": stock},
            "seller_stock": [{"location_id": "", "stock": stock, "if_saleable": True}]}


def render_item_base(shop: str, item_id: int, item: str, skus: list[str],
                     stock: dict[str, int]) -> dict:
    """One entry of get_item_base_info: the item's SKU and stock when it has no models."""
    has_models = item_has_models(item)
    base = {"item_id": item_id, "item_name": item, "item_status": "NORMAL",
            "item_sku": "" if has_models else skus[0], "has_model": has_models,
            "create_time": LISTED_SINCE, "update_time": LISTED_SINCE}
    if not has_models:
        base["stock_info_v2"] = _stock_info(stock.get(skus[0], 0))
    return base


def render_model_list(shop: str, skus: list[str], stock: dict[str, int]) -> dict:
    """get_model_list's answer: one tier of variations, one model per SKU."""
    options = [{"option": sku} for sku in skus]
    models = [{"model_id": model_id_of(shop, sku), "model_sku": sku, "tier_index": [position],
               "model_status": "MODEL_NORMAL", "promotion_id": 0, "has_promotion": False,
               "stock_info_v2": _stock_info(stock.get(sku, 0))}
              for position, sku in enumerate(skus)]
    return {"tier_variation": [{"name": "Variation", "option_list": options}], "model": models}


# ---- the order payload ---------------------------------------------------------------


def render_item(line: SimLine, shop: str) -> dict:
    key = line.sku or line.title
    item = item_of(key)
    has_models = item_has_models(item)
    return {
        "item_id": item_id_of(shop, item), "item_name": line.title,
        "item_sku": "" if has_models else (line.sku or ""),
        "model_id": model_id_of(shop, key) if has_models else 0,
        "model_name": "Default" if has_models else "",
        "model_sku": (line.sku or "") if has_models else "",
        "model_quantity_purchased": line.quantity,
        "model_original_price": float(line.unit_price),
        "model_discounted_price": float(line.unit_price),
        "wholesale": False, "weight": 0.3, "add_on_deal": False, "main_item": False,
        "add_on_deal_id": 0, "promotion_type": "", "promotion_id": 0,
        "order_item_id": item_id_of(shop, item), "promotion_group_id": 0,
        "image_info": {"image_url": ""},
    }


def render_order(order: SimOrder) -> dict:
    """Every field this simulator knows for one order, optional ones included."""
    status, channel = order.status, channel_of(order)
    paid = status in ("paid", "shipped", "delivered")
    items = [render_item(line, order.shop) for line in order.lines]
    body = {
        "order_sn": order_sn(order), "region": order.country_code, "currency": order.currency,
        "cod": False, "order_status": ORDER_STATUS[status], "message_to_seller": order.note,
        "create_time": seconds(order.created_at), "update_time": seconds(order.updated_at),
        "days_to_ship": DAYS_TO_SHIP,
        "ship_by_date": seconds(order.created_at + timedelta(days=DAYS_TO_SHIP)) if paid else 0,
        "booking_sn": "",
        "buyer_user_id": _stable_int(f"buyer|{order.buyer_id}") % 10**9,
        "buyer_username": order.buyer_id,
        "estimated_shipping_fee": float(order.shipping_fee),
        "actual_shipping_fee": float(order.shipping_fee) if status != "paid" and paid else 0.0,
        "actual_shipping_fee_confirmed": status == "delivered",
        "recipient_address": recipient_address(order),
        "item_list": items,
        "pay_time": seconds(order.created_at) if paid else None,
        "note": "", "note_update_time": 0, "split_up": False, "goods_to_declare": False,
        "buyer_cancel_reason": "", "cancel_by": "buyer" if status == "cancelled" else "",
        "cancel_reason": "BUYER_REQUEST" if status == "cancelled" else "",
        "fulfillment_flag": "fulfilled_by_local_seller", "pickup_done_time": 0,
        "package_list": [{
            "package_number": package_number(order),
            "logistics_status": LOGISTICS_STATUS[status],
            "logistics_channel_id": channel.channel_id, "shipping_carrier": channel.name,
            "allow_self_design_awb": False,
            "item_list": [{"item_id": i["item_id"], "model_id": i["model_id"],
                           "model_quantity": i["model_quantity_purchased"],
                           "order_item_id": i["order_item_id"], "promotion_group_id": 0}
                          for i in items],
        }],
        "shipping_carrier": channel.name, "checkout_shipping_carrier": channel.name,
        "payment_method": "Credit Card/Debit Card",
        "dropshipper": "", "dropshipper_phone": "",
    }
    if paid or status == "cancelled":
        # Shopee fills total_amount only once the buyer has paid (reference §3.5).
        body["total_amount"] = float(order.total)
    return body


def visible_fields(rendered: dict, optional_fields: set[str]) -> dict:
    """The detail as Shopee returns it: default fields plus the optional ones asked for."""
    return {k: v for k, v in rendered.items() if k in DEFAULT_FIELDS or k in optional_fields}


def shipping_parameter_answer(channel: Channel, country: str) -> dict:
    """get_shipping_parameter's response: what ship_order needs on this channel."""
    if channel.mode != "pickup":
        needed = {"info_needed": {channel.mode: ["tracking_no"]}}
        if channel.mode == "dropoff":
            needed["dropoff"] = {"branch_list": [], "slug_list": []}
        return needed
    tomorrow = seconds(datetime.now(timezone.utc) + timedelta(days=1))
    slot = {"date": tomorrow, "time_text": "", "pickup_time_id": str(tomorrow),
            "flags": ["recommended"]}
    address = {"address_id": PICKUP_ADDRESS_ID, "region": country, "state": "", "city": "",
               "district": "", "town": "", "address": "", "zipcode": "",
               "address_flag": ["default_address", "pickup_address"], "time_slot_list": [slot]}
    return {"info_needed": {"pickup": ["address_id", "pickup_time_id"]},
            "pickup": {"address_list": [address]}}


def tracking_answer(number: str) -> dict:
    return {"tracking_number": number, "plp_number": "", "first_mile_tracking_number": "",
            "last_mile_tracking_number": "", "hint": "", "pickup_code": ""}
