"""The refresh-tokens flow on Prefect: due tokens renewed into Secret blocks, the status
artifact free of secrets, and a refused refresh failing the run visibly, marked as
already told to on-call."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from prefect.blocks.system import Secret

from flows.tokens import refresh_tokens
from oms.db.incidents import open_incidents
from oms.db.tokens import token_record
from sandbox.app import add_simulated_shop, shop_base_url
from tasks.alerts import ALREADY_ALERTED_MARKER
from tasks.token_store import secret_block_name
from tasks.tokens import register_shop
from tests.flows.test_pipeline import latest_artifact_table


def shopee_shop(db, sandbox, code: str, expires_in: timedelta) -> dict:
    credentials = add_simulated_shop(sandbox.state, "shopee", code, 2, seed=2)
    credentials["access_expires_at"] = (datetime.now(timezone.utc) + expires_in).isoformat()
    with db.begin() as conn:
        register_shop(conn, code=code, platform="shopee", name=code,
                      base_url=shop_base_url("shopee", sandbox.url, code), credentials=dict(credentials))
    return credentials


def test_a_due_token_is_renewed_into_its_secret_block_and_a_fresh_one_is_left_alone(db, sandbox, shop_name):
    due, fresh = f"{shop_name}-due", f"{shop_name}-fresh"
    old = shopee_shop(db, sandbox, due, timedelta(minutes=10))
    shopee_shop(db, sandbox, fresh, timedelta(hours=4))

    report = refresh_tokens([due, fresh])

    assert {o.shop_code: o.action for o in report.outcomes} == {due: "refreshed", fresh: "not-due"}
    with db.connect() as conn:
        record = token_record(conn, due)
    assert record.store == "prefect" and record.sealed is None
    held = Secret.load(secret_block_name(due)).get()
    held = json.loads(held) if isinstance(held, str) else held
    assert held["access_token"] != old["access_token"] and held["refresh_token"] != old["refresh_token"]
    assert record.access_expires_at > datetime.now(timezone.utc) + timedelta(hours=3, minutes=59)
    rows = {row["shop"]: row for row in latest_artifact_table("token-status")}
    assert rows[due]["action"] == "refreshed" and rows[fresh]["action"] == "not-due"
    shown = json.dumps(rows)
    assert old["access_token"] not in shown and held["access_token"] not in shown
    assert held["refresh_token"] not in shown


def test_a_refused_refresh_fails_the_run_with_an_open_incident_and_the_already_alerted_mark(
        db, sandbox, shop_name):
    code = f"{shop_name}-refused"
    credentials = shopee_shop(db, sandbox, code, timedelta(minutes=5))
    sandbox.state.refresh_tokens[credentials["refresh_token"]].expires_at = \
        datetime.now(timezone.utc) - timedelta(seconds=1)

    state = refresh_tokens([code], return_state=True)

    assert state.is_failed()
    assert ALREADY_ALERTED_MARKER in state.message and code in state.message
    with db.connect() as conn:
        [incident] = open_incidents(conn, "token-refresh")
        assert incident.subject == code
        assert token_record(conn, code).last_refresh_error
    # Failing again is the same incident, not a new one.
    assert refresh_tokens([code], return_state=True).is_failed()
    with db.connect() as conn:
        [still] = open_incidents(conn, "token-refresh")
    assert still.id == incident.id and still.occurrences == 2
