"""The token store and refresh against the sandbox: sealed at rest, one refresher at a
time, a crash between the platform's answer and the store loses nothing, and an expired
token is refreshed on the spot with one retry of the call."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from oms.config import reset_settings
from oms.db.schema import shop_tokens, shops
from oms.sealing import forget_key
from sandbox.app import add_simulated_shop, shop_base_url
from tasks.resources import connector_for
from tasks.token_store import RefreshJournal, shop_access
from tasks.tokens import call_with_token_retry, refresh_shop, register_shop
from tests.crash import CRASHED, refresh_and_die_before_storing

TEST_KEY = Fernet.generate_key().decode()


@pytest.fixture
def token_env(db, monkeypatch, tmp_path):
    """Tokens in this database (no Prefect server here), sealed with a test key."""
    env = {"OMS_TOKEN_STORE": "database", "OMS_TOKEN_KEY": TEST_KEY,
           "OMS_TOKEN_JOURNAL_DIR": str(tmp_path / "journal")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    forget_key()
    yield env
    reset_settings()
    forget_key()


@pytest.fixture
def shopee_shop(token_env, db, sandbox, shop_name):
    code = f"{shop_name}-shopee"
    credentials = add_simulated_shop(sandbox.state, "shopee", code, 3, seed=5)
    with db.begin() as conn:
        register_shop(conn, code=code, platform="shopee", name=code,
                      base_url=shop_base_url("shopee", sandbox.url, code),
                      credentials=dict(credentials))
    return code, credentials


def spent_refresh_tokens(sandbox, shop: str) -> int:
    return sum(1 for t in sandbox.state.refresh_tokens.values() if t.shop == shop and t.used)


def test_tokens_and_app_secrets_are_sealed_at_rest_and_come_back_for_the_connector(db, shopee_shop):
    code, credentials = shopee_shop
    with db.connect() as conn:
        shop = conn.execute(select(shops).where(shops.c.code == code)).one()
        token_row = conn.execute(select(shop_tokens).where(shop_tokens.c.shop_code == code)).one()
    stored = repr(tuple(shop)) + repr(tuple(token_row))
    for secret in (credentials["access_token"], credentials["refresh_token"], credentials["partner_key"]):
        assert secret not in stored
    assert "partner_key" not in shop.credentials and shop.credentials["shop_id"] == credentials["shop_id"]
    assert token_row.store == "database" and token_row.refreshable
    access = shop_access(code)
    assert access.credentials["access_token"] == credentials["access_token"]
    assert access.credentials["partner_key"] == credentials["partner_key"]


def test_a_single_use_refresh_token_is_rotated_and_the_new_one_works_next_time(db, shopee_shop, sandbox):
    code, credentials = shopee_shop
    first = refresh_shop(code, force=True)
    second = refresh_shop(code, force=True)
    assert (first.action, second.action) == ("refreshed", "refreshed")
    assert spent_refresh_tokens(sandbox, code) == 2
    assert shop_access(code).credentials["access_token"] not in (credentials["access_token"],)
    assert second.access_expires_at > datetime.now(timezone.utc) + timedelta(hours=3, minutes=59)


def test_a_token_not_yet_due_is_left_alone_and_refreshed_once_three_hours_have_passed(db, shopee_shop, sandbox):
    code, _ = shopee_shop
    now = datetime.now(timezone.utc)
    assert refresh_shop(code, now=now + timedelta(hours=2, minutes=50)).action == "not-due"
    assert refresh_shop(code, now=now + timedelta(hours=3, minutes=1)).action == "refreshed"
    assert spent_refresh_tokens(sandbox, code) == 1


def test_workers_that_find_the_same_token_expired_refresh_it_once(db, shopee_shop, sandbox):
    code, credentials = shopee_shop
    outcomes, start = [], threading.Barrier(4)

    def worker():
        start.wait()
        outcomes.append(refresh_shop(code, force=True, stale_access_token=credentials["access_token"]))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(o.action for o in outcomes) == ["refreshed"] + ["renewed-elsewhere"] * 3
    assert spent_refresh_tokens(sandbox, code) == 1


@pytest.mark.timeout(120)
def test_a_crash_between_the_refresh_answer_and_the_store_does_not_lose_the_refresh_token(
        db, shopee_shop, sandbox, token_env, database_url, tmp_path):
    code, credentials = shopee_shop
    died = refresh_and_die_before_storing(code, {**token_env, "OMS_DATABASE_URL": database_url})
    assert died.returncode == CRASHED, died.stderr[-2000:]
    assert sandbox.state.refresh_tokens[credentials["refresh_token"]].used  # Shopee spent it
    journal = RefreshJournal(Path(token_env["OMS_TOKEN_JOURNAL_DIR"]))
    journaled = journal.pending(code)
    assert journaled is not None and journaled.refresh_token != credentials["refresh_token"]
    on_disk = "".join(p.read_text() for p in journal.folder.iterdir())
    assert journaled.refresh_token not in on_disk and journaled.access_token not in on_disk

    recovered = refresh_shop(code, force=True)
    assert recovered.recovered_from_journal and recovered.action == "refreshed"
    assert journal.pending(code) is None
    # The shop can still refresh afterwards, and its token works.
    assert refresh_shop(code, force=True).action == "refreshed"
    with connector_for(shop_access(code)) as connector:
        connector.probe()


def test_an_expired_token_is_refreshed_on_the_spot_and_the_call_runs_once_more(db, shopee_shop, sandbox):
    code, credentials = shopee_shop
    sandbox.state.expire(credentials["access_token"])
    calls = []

    def fetch(access):
        calls.append(access.credentials["access_token"])
        with connector_for(access) as connector:
            now = datetime.now(timezone.utc)
            return [raw for page in connector.fetch_orders(now - timedelta(days=3), now) for raw in page]

    orders = call_with_token_retry(code, fetch)
    assert len(orders) == 3
    assert calls[0] == credentials["access_token"] and len(calls) == 2 and calls[1] != calls[0]
    assert spent_refresh_tokens(sandbox, code) == 1


def test_the_tokens_commands_show_refresh_and_load_tokens_without_printing_a_secret(
        db, shopee_shop, sandbox, capsys, monkeypatch):
    import io
    import json

    from oms.cli import main

    code, credentials = shopee_shop
    assert main(["tokens", "status"]) == 0
    assert main(["tokens", "refresh", code, "--force"]) == 0
    status_and_refresh = capsys.readouterr().out
    assert code in status_and_refresh and "3 h 59 min" in status_and_refresh
    assert "refreshed" in status_and_refresh

    fresh = sandbox.state.grant(code, datetime.now(timezone.utc), timedelta(hours=4), timedelta(days=30),
                                single_use_refresh=True)
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(
        {"access_token": fresh["access_token"], "refresh_token": fresh["refresh_token"]})))
    assert main(["tokens", "set", code]) == 0
    printed = status_and_refresh + capsys.readouterr().out
    assert shop_access(code).credentials["access_token"] == fresh["access_token"]
    for secret in (credentials["access_token"], credentials["refresh_token"], credentials["partner_key"],
                   fresh["access_token"], fresh["refresh_token"]):
        assert secret not in printed


def test_shops_saved_before_the_token_store_keep_working_with_their_secrets_sealed_on_upgrade(
        tmp_path, token_env, sandbox, shop_name):
    from sqlalchemy import insert

    from oms.db.engine import get_engine
    from oms.db.migrate import downgrade, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    code = f"{shop_name}-legacy"
    credentials = add_simulated_shop(sandbox.state, "shopee", code, 2, seed=3)
    with get_engine(url).begin() as conn:  # as the previous release stored a shop
        conn.execute(insert(shops.c.code.table).values(
            code=code, platform="shopee", name=code, base_url=shop_base_url("shopee", sandbox.url, code),
            credentials=credentials, active=True, created_at=datetime.now(timezone.utc)))
    upgrade(url, "head")
    with get_engine(url).connect() as conn:
        stored = conn.execute(select(shops.c.credentials, shops.c.sealed_secrets)
                              .where(shops.c.code == code)).one()
        token_row = conn.execute(select(shop_tokens).where(shop_tokens.c.shop_code == code)).one()
    assert "partner_key" not in stored.credentials and "access_token" not in stored.credentials
    assert credentials["partner_key"] not in stored.sealed_secrets
    assert token_row.store == "database" and credentials["access_token"] not in token_row.sealed
    downgrade(url, "0001")
    with get_engine(url).connect() as conn:
        restored = conn.execute(select(shops.c.credentials).where(shops.c.code == code)).scalar_one()
    assert restored["partner_key"] == credentials["partner_key"]
    assert restored["access_token"] == credentials["access_token"]
