"""Which of our carriers each marketplace can be told about, read from the connectors' tables.

Each marketplace connector translates our carrier codes with a table of its own (a code
missing there is refused before anything is sent). The write-back checks a shipment's
carrier against the same table before it asks for a token or opens a connection, so the
answer here can never disagree with what the connector would do.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors import amazon, douyin, jd, lazada, pinduoduo, shopee, shopify, spreadsheet, taobao

CARRIER_TABLES: dict[str, Mapping[str, object]] = {
    shopify.PLATFORM: shopify.TRACKING_COMPANY_BY_CARRIER,
    pinduoduo.PLATFORM: pinduoduo.LOGISTICS_IDS,
    taobao.PLATFORM: taobao.CARRIER_CODES,
    jd.PLATFORM: jd.CARRIER_CODES,
    douyin.PLATFORM: douyin.CARRIER_CODES,
    shopee.PLATFORM: shopee.CARRIER_CODES,
    lazada.PLATFORM: lazada.CARRIER_CODES,
    amazon.PLATFORM: amazon.CARRIER_CODES,
    spreadsheet.PLATFORM: spreadsheet.CARRIER_CODES,
}


def accepted_carriers(platform: str) -> frozenset[str]:
    """Our carrier codes the platform's connector can express; empty for an unknown platform."""
    return frozenset(str(code) for code in CARRIER_TABLES.get(platform, {}))
