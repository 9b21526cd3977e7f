"""Write-back task: push tracking numbers to each shop's platform, one shop per run.

Every attempt is a `tracking_pushes` row with what was sent and what came back. A
permanent refusal is parked for a person and not tried again; a retryable failure is
recorded and, at the end of the batch, re-raised so the retry policy backs off and tries
again, only for the pushes that have not succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from prefect import task

from oms.db.review import ReviewEntry, park
from oms.db.shipping import record_push, shipments_to_push
from oms.domain.errors import ConnectorError, Rejected, TokenExpired
from tasks.pacing import platform_slot
from tasks.policy import RETRYING
from tasks.resources import connector_for, engine, http_client, shop_access
from tasks.tokens import renew_after_expiry


@dataclass
class WriteBackSummary:
    attempted: int = 0
    written_back: int = 0
    rejected: int = 0
    to_retry: int = 0


@task(name="push-tracking", task_run_name="push-tracking-{shop_code}", **RETRYING)
def push_tracking_for_shop(shop_code: str, batch_size: int) -> WriteBackSummary:
    with engine().connect() as conn:
        pending = shipments_to_push(conn, batch_size, shop_code=shop_code)
    summary = WriteBackSummary(attempted=len(pending))
    last_retryable: ConnectorError | None = None
    access = shop_access(shop_code)
    renewed = False
    with platform_slot(access.platform), http_client() as http:
        connector = connector_for(access, http)
        for shipment in pending:
            outcome = _push_one(connector, shipment)
            if isinstance(outcome, TokenExpired) and not renewed:
                # Refresh on the spot, once per run, and push this shipment again.
                renew_after_expiry(shop_code, access.credentials.get("access_token", ""), outcome)
                access, renewed = shop_access(shop_code), True
                connector = connector_for(access, http)
                outcome = _push_one(connector, shipment)
            if outcome == "success":
                summary.written_back += 1
            elif outcome == "rejected":
                summary.rejected += 1
            else:
                summary.to_retry += 1
                last_retryable = outcome
    if last_retryable is not None:
        raise last_retryable
    return summary


def _push_one(connector, shipment: dict):
    """Push, record the attempt, and say how it went ('success', 'rejected' or the error)."""
    try:
        result = connector.push_tracking(
            shipment["platform_order_id"], shipment["carrier"], shipment["tracking_number"]
        )
    except Rejected as error:
        _record(shipment, "rejected", error=str(error), response=error.body)
        return "rejected"
    except ConnectorError as error:
        if not error.retryable:
            raise
        _record(shipment, "retry", error=str(error), response=error.body)
        return error
    _record(shipment, "success", request=result.request, response=result.response)
    return "success"


def _record(shipment: dict, outcome: str, *, request=None, response=None, error=None) -> None:
    now = datetime.now(timezone.utc)
    with engine().begin() as conn:
        record_push(conn, shipment, outcome=outcome, now=now, request=request,
                    response=_jsonable(response), error=error)
        if outcome == "rejected":
            park(conn, [ReviewEntry("write_back", shipment["platform"], shipment["shop_code"],
                                    shipment["platform_order_id"], [f"platform refused the tracking: {error}"],
                                    {"shipment_id": shipment["shipment_id"], "carrier": shipment["carrier"],
                                     "tracking_number": shipment["tracking_number"]})], now)


def _jsonable(value):
    if value is None or isinstance(value, (dict, list)):
        return value
    return {"body": str(value)[:2000]}
