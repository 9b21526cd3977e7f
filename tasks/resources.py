"""What tasks need from outside: the database engine, a connector for a shop, a carrier client.

Carrier clients are built from the seller's accounts (Settings.carrier_accounts, by our
carrier code; SF may also come from the older carrier_url / partner / checkword
settings), except Cainiao's, which rides on a Taobao shop's own access. The carrier
rules are checked here against the connectors' carrier code tables, so a rule naming a
carrier a platform cannot be told about stops the run.
"""

from __future__ import annotations

import httpx
from sqlalchemy import Engine

from connectors import (
    amazon_mapping,
    cainiao,
    douyin_mapping,
    jd_mapping,
    lazada_mapping,
    pinduoduo_mapping,
    shopee_mapping,
    shopify_mapping,
    spreadsheet_mapping,
    taobao_mapping,
)
from connectors.amazon import AmazonConnector
from connectors.base import CarrierClient, MarketplaceConnector, ShopAccess
from connectors.cainiao import CainiaoCarrierClient
from connectors.carrier import SfCarrierClient
from connectors.carrier_codes import CARRIER_TABLES
from connectors.douyin import DouyinConnector
from connectors.jd import JdConnector
from connectors.jdl import JdlCarrierClient
from connectors.kuaidi100 import Kuaidi100CarrierClient
from connectors.lazada import LazadaConnector
from connectors.pinduoduo import PinduoduoConnector
from connectors.shopee import ShopeeConnector
from connectors.shopify import ShopifyConnector
from connectors.spreadsheet import SpreadsheetConnector
from connectors.taobao import TaobaoConnector
from connectors.yto import YtoCarrierClient
from connectors.zto import ZtoCarrierClient
from oms.carrier_rules import load_carrier_rules
from oms.config import get_settings
from oms.db.engine import get_engine
from tasks.token_store import shop_access  # noqa: F401  (tasks reach shops through here)

CONNECTORS = {
    connector.platform: connector
    for connector in (ShopifyConnector, PinduoduoConnector, TaobaoConnector, JdConnector,
                      DouyinConnector, ShopeeConnector, LazadaConnector, AmazonConnector,
                      SpreadsheetConnector)
}
# Payload -> Order, pure: the clean step needs no credentials and no HTTP client.
MAPPERS = {
    "shopify": shopify_mapping.map_order,
    "pdd": pinduoduo_mapping.order_from_payload,
    "taobao": taobao_mapping.map_order,
    "jd": jd_mapping.map_order,
    "douyin": douyin_mapping.map_order,
    "shopee": shopee_mapping.map_order,
    "lazada": lazada_mapping.map_order,
    "amazon": amazon_mapping.map_order,
    "spreadsheet": spreadsheet_mapping.map_order,
}


def engine() -> Engine:
    return get_engine(get_settings().database_url)


def http_client() -> httpx.Client:
    return httpx.Client(timeout=get_settings().http_timeout_seconds)


def connector_for(access: ShopAccess, http: httpx.Client | None = None) -> MarketplaceConnector:
    try:
        connector_class = CONNECTORS[access.platform]
    except KeyError:
        raise LookupError(f"shop {access.code} is on {access.platform!r}, which has no connector") from None
    return connector_class(access, http=http)


# Each platform's carrier code table, as its connector writes back tracking numbers.
PLATFORM_CARRIER_CODES = CARRIER_TABLES
# Our carrier code -> Cainiao's cp_code (Cainiao spells J&T "HTKY").
CAINIAO_CP_CODES = {ours: cp_code for cp_code, ours in cainiao.OUR_CARRIERS.items()}
# What each carrier API's account needs, besides its "url" (the name Settings uses).
ACCOUNT_FIELDS = {
    "sf": ("partner_id", "checkword"),
    "zto": ("app_key", "app_secret"),
    "yto": ("user_id", "customer_code", "secret"),
    "jdl": ("app_key", "app_secret", "access_token", "customer_code"),
    "kuaidi100": ("key", "secret", "customer"),
}


def carrier_rules():
    """config/carriers.yaml, checked against the connectors' carrier code tables."""
    return load_carrier_rules(platform_codes=PLATFORM_CARRIER_CODES, cainiao_codes=set(CAINIAO_CP_CODES))


def carrier_accounts() -> dict[str, dict[str, str]]:
    """The seller's carrier accounts by our carrier code, opened for building clients.

    The values are secrets: keep them in memory, never log or return them from a task.
    """
    settings = get_settings()
    accounts = {code.upper(): {name: value.get_secret_value() for name, value in fields.items()}
                for code, fields in settings.carrier_accounts.items()}
    if "SF" not in accounts and settings.carrier_partner_id:
        accounts["SF"] = {"api": "sf", "url": settings.carrier_url, "partner_id": settings.carrier_partner_id,
                          "checkword": settings.carrier_checkword.get_secret_value()}
    return accounts


def carriers_with_accounts() -> frozenset[str]:
    return frozenset(carrier_accounts())


def carrier_client(http: httpx.Client, carrier: str = "SF", *, shop: ShopAccess | None = None,
                   via: str | None = None) -> CarrierClient:
    """The client that issues `carrier`'s waybills: through Cainiao with a Taobao shop's
    access when `via` is "cainiao", else the seller's own account with the carrier.

    Without an account, SF falls back to the carrier_url / partner / checkword settings
    (what every caller got before there were several carriers); any other carrier
    without one is a LookupError naming the setting to fill in.
    """
    if via == "cainiao":
        if shop is None:
            raise ValueError("a Cainiao client needs the Taobao shop's access")
        if carrier not in CAINIAO_CP_CODES:
            raise LookupError(f"Cainiao sells no {carrier} waybills (it knows {', '.join(sorted(CAINIAO_CP_CODES))})")
        return CainiaoCarrierClient(shop, cp_code=CAINIAO_CP_CODES[carrier], http=http)
    account = carrier_accounts().get(carrier)
    if account is None and carrier == "SF":
        settings = get_settings()
        return SfCarrierClient(settings.carrier_url, settings.carrier_partner_id,
                               settings.carrier_checkword.get_secret_value(), http=http)
    if account is None:
        raise LookupError(f"no e-waybill account for carrier {carrier}: add it to OMS_CARRIER_ACCOUNTS")
    return _client_for_account(http, carrier, account)


def _client_for_account(http: httpx.Client, carrier: str, account: dict[str, str]) -> CarrierClient:
    api = account.get("api", "").lower()
    if api not in ACCOUNT_FIELDS:
        raise LookupError(f"carrier account {carrier}: api must be one of {', '.join(ACCOUNT_FIELDS)}, got {api!r}")
    missing = [name for name in ("url", *ACCOUNT_FIELDS[api]) if not account.get(name)]
    if missing:  # names only: the values are secrets
        raise LookupError(f"carrier account {carrier} ({api}) lacks {', '.join(missing)}")
    url = account["url"]
    if api == "sf":
        return SfCarrierClient(url, account["partner_id"], account["checkword"], http=http)
    if api == "zto":
        return ZtoCarrierClient(url, account["app_key"], account["app_secret"], http=http)
    if api == "yto":
        return YtoCarrierClient(url, account["user_id"], account["customer_code"], account["secret"], http=http)
    if api == "jdl":
        return JdlCarrierClient(url, account["app_key"], account["app_secret"], account["access_token"],
                                account["customer_code"], http=http)
    return Kuaidi100CarrierClient(url, account.get("poll_url") or url, account["key"], account["secret"],
                                  account["customer"], carrier, partner_id=account.get("partner_id", ""),
                                  partner_key=account.get("partner_key", ""), http=http)
