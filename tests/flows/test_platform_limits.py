"""Prefect global concurrency limits per platform: used by the tasks, loud when missing."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import func, select

from flows.ingest import ingest_orders
from oms.config import PLATFORMS
from oms.db.schema import orders
from tasks.pacing import ensure_platform_limits, limit_name


@pytest.fixture
def pdd_limit_deleted():
    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name(limit_name("pdd"))
    yield
    ensure_platform_limits()


def test_setup_creates_one_limit_per_platform_and_running_it_again_changes_nothing():
    first = ensure_platform_limits()
    second = ensure_platform_limits()
    with get_client(sync_client=True) as client:
        names = {limit.name: limit.limit for limit in client.read_global_concurrency_limits(limit=200)}
    assert first == second
    assert {limit_name(p): first[p] for p in PLATFORMS}.items() <= names.items()


def test_an_ingest_without_its_platform_limit_fails_loudly_instead_of_running_unthrottled(
    db, add_shop, pdd_limit_deleted
):
    shop = add_shop("pdd", orders=5, seed=2)
    state = ingest_orders(shop, return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="oms limits setup"):
        state.result()
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 0


def test_an_ingest_holds_its_platform_slot_and_gives_it_back(db, add_shop):
    shop = add_shop("pdd", orders=5, seed=2)
    assert ingest_orders(shop, return_state=True).is_completed()
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(limit_name("pdd"))
    assert limit.active_slots == 0
