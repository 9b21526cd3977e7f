"""The pipeline side of the browser test, in a process of its own: a sandbox Taobao shop,
its orders and one refund request brought in through the real flows, then `approve-refund`
run against the Prefect server in PREFECT_API_URL until a person answers it in the UI.

Prints `paused-for <request id>` when the request is in, and the outcome (with what the
platform was told) as JSON on its last line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select

from flows.after_sales import approve_refund
from flows.after_sales_ingest import ingest_after_sales
from flows.ingest import ingest_orders
from oms.db.engine import get_engine
from oms.db.migrate import upgrade
from oms.db.schema import after_sales_requests
from sandbox import after_sales as neutral
from sandbox.app import add_simulated_shop, shop_base_url
from sandbox.model import SandboxState
from sandbox.server import running_sandbox
from tasks.pacing import ensure_platform_limits
from tasks.tokens import register_shop

SHOP = "e2e-taobao"


def main(database_url: str, amount: str) -> None:
    upgrade(database_url)
    ensure_platform_limits()
    with running_sandbox(SandboxState()) as sandbox:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        credentials = add_simulated_shop(sandbox.state, "taobao", SHOP, 12, 5, now=now)
        with get_engine(database_url).begin() as conn:
            register_shop(conn, code=SHOP, platform="taobao", name=SHOP,
                          base_url=shop_base_url("taobao", sandbox.url, SHOP), credentials=credentials, now=now)
        ingest_orders(SHOP)
        asked = _open_request(sandbox.state, Decimal(amount), now)
        ingest_after_sales()
        with get_engine(database_url).connect() as conn:
            request_id = conn.execute(select(after_sales_requests.c.id).where(
                after_sales_requests.c.platform_request_id == str(asked.request_id))).scalar_one()
        print(f"paused-for {request_id}", flush=True)
        outcome = approve_refund(request_id, poll_seconds=1)
        answers = [{key: str(value) for key, value in answer.items()} for answer in asked.answers]
        print(json.dumps({**asdict(outcome), "platform_answers": answers}, default=str), flush=True)


def _open_request(state: SandboxState, amount: Decimal, now: datetime) -> neutral.SimAfterSale:
    order = max((o for o in state.shop_orders(SHOP) if o.status in ("shipped", "delivered", "paid")),
                key=lambda o: o.total)
    amount = min(amount, order.total)
    request = neutral.SimAfterSale(
        request_id=neutral.FIRST_REQUEST_ID, shop=SHOP, order=order, line=order.lines[0], quantity=1,
        kind=neutral.REFUND_ONLY, status=neutral.REQUESTED, amount=amount, reason="damaged",
        description="arrived broken", created_at=now - timedelta(minutes=5),
        updated_at=now - timedelta(minutes=5), respond_by=now + timedelta(hours=30))
    with state.lock:
        neutral.requests_of(state).setdefault(SHOP, []).append(request)
    return request


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
