"""What tasks need from outside: the database engine, and a connector for a shop."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine

from connectors import (
    amazon_mapping,
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
from connectors.base import MarketplaceConnector, ShopAccess
from connectors.carrier import SfCarrierClient
from connectors.douyin import DouyinConnector
from connectors.jd import JdConnector
from connectors.lazada import LazadaConnector
from connectors.pinduoduo import PinduoduoConnector
from connectors.shopee import ShopeeConnector
from connectors.shopify import ShopifyConnector
from connectors.spreadsheet import SpreadsheetConnector
from connectors.taobao import TaobaoConnector
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


def carrier_client(http: httpx.Client) -> SfCarrierClient:
    settings = get_settings()
    return SfCarrierClient(
        settings.carrier_url,
        settings.carrier_partner_id,
        settings.carrier_checkword.get_secret_value(),
        http=http,
    )
