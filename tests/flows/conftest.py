"""One Prefect test harness for every flow test of the session, and pipeline set-up."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.demo import sandbox_carrier_accounts
from oms.config import reset_settings
from oms.db.shops import save_skus, save_warehouse, set_on_hand
from sandbox.app import add_simulated_shop, shop_base_url
from sandbox.carrier import register_partner
from tasks.pacing import ensure_platform_limits
from tasks.tokens import register_shop



@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    with prefect_test_harness(server_startup_timeout=120):
        ensure_platform_limits()
        yield


@pytest.fixture
def carrier(sandbox, monkeypatch):
    partner = register_partner(sandbox.state, "flow-tests")
    monkeypatch.setenv("OMS_CARRIER_URL", f"{sandbox.url}/sf")
    monkeypatch.setenv("OMS_CARRIER_PARTNER_ID", partner["partner_id"])
    monkeypatch.setenv("OMS_CARRIER_CHECKWORD", partner["checkword"])
    reset_settings()
    return partner


@pytest.fixture
def all_carriers(sandbox, monkeypatch, carrier):
    """Accounts with every sandbox carrier: SF as `carrier` sets it, the rest in
    OMS_CARRIER_ACCOUNTS (J&T through Kuaidi100)."""
    accounts = sandbox_carrier_accounts(sandbox.state, sandbox.url, "flow-tests")
    monkeypatch.setenv("OMS_CARRIER_ACCOUNTS", json.dumps(accounts))
    reset_settings()
    return accounts


@pytest.fixture
def add_shop(db, sandbox, shop_name):
    """Create a sandbox shop with seeded orders and register it in the database."""

    def add(platform: str, orders: int, seed: int = 3, code: str | None = None) -> str:
        code = code or f"{shop_name}-{platform}"
        now = datetime.now(timezone.utc)
        credentials = add_simulated_shop(sandbox.state, platform, code, orders, seed, now=now)
        with db.begin() as conn:
            register_shop(conn, code=code, platform=platform, name=code,
                      base_url=shop_base_url(platform, sandbox.url, code),
                      credentials=credentials, now=now)
        return code

    return add


@pytest.fixture
def stock_levels(db):
    """Put units of SKUs in one warehouse: stock_levels({"SKU-0001": 5})."""

    def put(levels: dict[str, int], warehouse: str = "WH-SH") -> None:
        with db.begin() as conn:
            ids = save_skus(conn, [{"code": sku, "title": sku, "weight_grams": 300} for sku in levels])
            warehouse_id = save_warehouse(conn, code=warehouse, name=warehouse, province="上海市", priority=10)
            set_on_hand(conn, warehouse_id, {ids[sku]: units for sku, units in levels.items()})

    return put
