"""Request lines the HTTP client logs keep their shape but lose tokens and signatures."""

from __future__ import annotations

import logging

import connectors.base  # noqa: F401  installs the mask


def test_tokens_and_signatures_in_logged_urls_are_masked_and_the_rest_kept(caplog):
    caplog.set_level(logging.INFO, logger="httpx")
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s"', "GET",
        "http://127.0.0.1/api/v2/order/get_order_list?partner_id=20&access_token=tok-SECRET-1"
        "&shop_id=5&sign=0a1b2c&session=6100SECRET", "HTTP/1.1 200 OK")
    logged = caplog.text
    assert "SECRET" not in logged and "0a1b2c" not in logged
    assert "partner_id=20" in logged and "shop_id=5" in logged and "200 OK" in logged
    assert logged.count("=***") == 3
