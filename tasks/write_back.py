"""Write-back task: push the due tracking numbers of one shop to its platform.

Each shipment due at `now` (oms.db.tracking) goes through, in order:

0. the `tracking_pushes` suite, on the whole batch: a push without a tracking number in
   its carrier's form (or without an order id or carrier) is refused with every reason,
   with no request, and parked; too many such pushes fail the task (tasks.quality);
1. the pre-check: a carrier the platform's connector table cannot express is refused
   here, with no request at all, and parked for a person;
2. the push. Its outcome is one `tracking_pushes` row, written at once, with what was
   sent and what came back:
   - accepted: done for good (the order's stock is locked with it);
   - refused by the platform (`Rejected`): parked with the platform's reason, never
     retried;
   - an outage (`Unavailable`, a token still expired after renewal): the next attempt is
     scheduled `writeback_retry_minutes` later; after `writeback_retries` retries it is
     parked instead, with what to run once the platform is back;
   - a rate limit: the shop's batch stops for this run, the rest stays due;
   - an expired token: renewed on the spot, once per run, and the push sent again; a
     token that cannot be renewed stops the shop's batch (its own alert has gone out).

Nothing here sleeps or retries in-process: the schedule is in the database, so an hour's
outage holds no worker. One WRITE_BACK_FAILED alert per shop and run sums up what was
parked. A bug (anything that is not a connector error) fails the task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from prefect import task

from connectors.carrier_codes import accepted_carriers
from oms.config import get_settings
from oms.db.tracking import attempt_count, attempts_so_far, due_pushes, park_push, record_attempt
from oms.domain.errors import ConnectorError, RateLimited, Rejected, TokenExpired, TokenRefreshFailed
from oms.domain.write_back import (
    DEFERRED, GAVE_UP, REJECTED, RETRY, SUCCESS, GiveUp, RetryPolicy, gave_up_reason, next_step,
    not_accepted_reason, platform_name, refused_reason,
)
from tasks.alerts import WRITE_BACK_FAILED, announce, redact
from tasks.pacing import platform_slot
from tasks.policy import BATCH_TASK
from tasks.quality import BatchScope, gate_batch
from tasks.resources import connector_for, engine, http_client, shop_access
from tasks.tokens import renew_after_expiry

PARKED_SHOWN_IN_ALERT = 5


@dataclass
class WriteBackSummary:
    shop: str = ""
    attempted: int = 0
    written_back: int = 0
    rejected: int = 0  # refused (by the platform, or by the pre-check) and parked
    retrying: int = 0  # failed retryably this run, next attempt scheduled
    gave_up: int = 0  # failed retryably once too often, parked
    deferred: int = 0
    stopped: str | None = None  # why the shop's batch ended early, if it did
    parked_orders: list[str] = field(default_factory=list)


@task(name="push-tracking", task_run_name="push-tracking-{shop_code}", **BATCH_TASK)
def push_tracking_for_shop(shop_code: str, batch_size: int, now: datetime | None = None) -> WriteBackSummary:
    """`now` fixes the clock (tests); without it every attempt reads the real one."""
    clock = _clock(now)
    settings = get_settings()
    policy = RetryPolicy(retries=settings.writeback_retries,
                         interval=timedelta(minutes=settings.writeback_retry_minutes))
    run = _ShopRun(shop_code, clock, policy)
    started = clock()  # a retry scheduled during this run is for a later run
    cursor = 0
    while run.summary.stopped is None:
        with engine().connect() as conn:
            batch = due_pushes(conn, started, batch_size, shop_code=shop_code, after_id=cursor)
        if not batch:
            break
        run.push_all(batch)
        cursor = batch[-1]["shipment_id"]
    run.alert_parked()
    return run.summary


def _clock(now: datetime | None) -> Callable[[], datetime]:
    if now is not None:
        return lambda: now
    return lambda: datetime.now(timezone.utc)


class _ShopRun:
    """One shop's pushes in one run, with the token renewal it may spend once."""

    def __init__(self, shop_code: str, clock: Callable[[], datetime], policy: RetryPolicy) -> None:
        self.shop_code, self.clock, self.policy = shop_code, clock, policy
        self.summary = WriteBackSummary(shop=shop_code)
        self.access = shop_access(shop_code)
        self.accepted = accepted_carriers(self.access.platform)
        self.renewed = False

    def push_all(self, batch: list[dict]) -> None:
        with platform_slot(self.access.platform), http_client() as http:
            connector = connector_for(self.access, http)
            for shipment in self._passing_suite(batch):
                self.summary.attempted += 1
                if shipment["carrier"] not in self.accepted:
                    self._refuse_unsendable(shipment)
                    continue
                connector = self._push(connector, http, shipment)
                if self.summary.stopped is not None:
                    return

    def _passing_suite(self, batch: list[dict]) -> list[dict]:
        """The shipments the suite passes; the others are refused here, never sent."""
        failing: dict[int, list[str]] = {}

        def refuse_failing(outcome) -> None:
            for row, reasons in sorted(outcome.reasons_by_row.items()):
                if row not in failing:
                    failing[row] = reasons
                    self.summary.attempted += 1
                    reason = "; ".join(reasons) + "; nothing was sent, fix the shipment and push it again"
                    self._park(batch[row], REJECTED, reason, error="; ".join(reasons))

        records = [{"platform_order_id": s["platform_order_id"], "carrier": s["carrier"],
                    "tracking_number": s["tracking_number"]} for s in batch]
        outcome = gate_batch(BatchScope("tracking_pushes", self.access.platform, self.shop_code), records,
                             before_failing=refuse_failing)
        refuse_failing(outcome)
        return [shipment for row, shipment in enumerate(batch) if row not in failing]

    def _refuse_unsendable(self, shipment: dict) -> None:
        reason = not_accepted_reason(self.access.platform, shipment["carrier"], self.accepted)
        self._park(shipment, REJECTED, reason, error=reason)

    def _push(self, connector, http, shipment: dict):
        """Push one shipment, record how it went; return the connector to go on with."""
        try:
            result = self._send(connector, shipment)
        except TokenExpired as expired:
            if self.renewed:
                self._failed_retryably(shipment, expired)
                return connector
            # The expired call is an attempt too; not the order's fault, so not counted.
            self._record(shipment, DEFERRED, request=_asked(shipment), error=self._safe(expired),
                         response=expired.body)
            try:
                # Refresh on the spot, once per run, and push this shipment again.
                renew_after_expiry(self.shop_code, self.access.credentials.get("access_token", ""), expired)
            except TokenRefreshFailed as refusal:
                self.summary.deferred += 1
                self.summary.stopped = f"token cannot be renewed: {self._safe(refusal)}"
                return connector
            self.access, self.renewed = shop_access(self.shop_code), True
            connector = connector_for(self.access, http)
            return self._push(connector, http, shipment)
        except RateLimited as limited:
            self._defer(shipment, limited, stop=f"rate limited: {self._safe(limited)}")
            return connector
        except Rejected as refusal:
            error = self._safe(refusal)
            self._park(shipment, REJECTED, refused_reason(self.access.platform, error),
                       error=error, request=_asked(shipment), response=refusal.body)
            return connector
        except TokenRefreshFailed as refusal:
            self._defer(shipment, refusal, stop=f"token cannot be renewed: {self._safe(refusal)}")
            return connector
        except ConnectorError as error:
            if not error.retryable:
                raise
            self._failed_retryably(shipment, error)
            return connector
        self._record(shipment, SUCCESS, request=result.request, response=result.response)
        self.summary.written_back += 1
        return connector

    def _send(self, connector, shipment: dict):
        return connector.push_tracking(shipment["platform_order_id"], shipment["carrier"],
                                       shipment["tracking_number"])

    def _failed_retryably(self, shipment: dict, error: ConnectorError) -> None:
        now = self.clock()
        with engine().connect() as conn:
            history = attempts_so_far(conn, shipment["shipment_id"])
        step = next_step(history, now, self.policy)
        text = self._safe(error)
        if isinstance(step, GiveUp):
            reason = gave_up_reason(step, now, text, self.access.platform, self.shop_code)
            self._park(shipment, GAVE_UP, reason, error=text, request=_asked(shipment), response=error.body)
            return
        self._record(shipment, RETRY, request=_asked(shipment), error=text, response=error.body,
                     retry_at=step.at)
        self.summary.retrying += 1

    def _defer(self, shipment: dict, error: ConnectorError, stop: str) -> None:
        self._record(shipment, DEFERRED, request=_asked(shipment), error=self._safe(error),
                     response=error.body)
        self.summary.deferred += 1
        self.summary.stopped = stop

    def _park(self, shipment: dict, outcome: str, reason: str, *, error: str, request=None,
              response=None) -> None:
        now = self.clock()
        with engine().begin() as conn:
            record_attempt(conn, shipment, outcome=outcome, now=now, request=request, error=error,
                           response=_jsonable(response))
            attempt = attempt_count(conn, shipment["shipment_id"])
            park_push(conn, shipment, reason, now, attempt=attempt, error=error)
        if outcome == GAVE_UP:
            self.summary.gave_up += 1
        else:
            self.summary.rejected += 1
        self.summary.parked_orders.append(shipment["platform_order_id"])

    def _record(self, shipment: dict, outcome: str, *, request=None, response=None, error=None,
                retry_at: datetime | None = None) -> None:
        with engine().begin() as conn:
            record_attempt(conn, shipment, outcome=outcome, now=self.clock(), request=request,
                           response=_jsonable(response), error=error, retry_at=retry_at)

    def _safe(self, error: BaseException) -> str:
        return redact(str(error), list(self.access.credentials.values()))

    def alert_parked(self) -> None:
        """One alert per shop and run, however many of its orders were parked."""
        summary = self.summary
        if not summary.parked_orders:
            return
        platform = platform_name(self.access.platform)
        shown = ", ".join(summary.parked_orders[:PARKED_SHOWN_IN_ALERT])
        more = len(summary.parked_orders) - PARKED_SHOWN_IN_ALERT
        announce(
            WRITE_BACK_FAILED, shop_code=self.shop_code, platform=self.access.platform,
            headline=f"{len(summary.parked_orders)} tracking numbers will not reach {platform} by themselves",
            message=(f"Shop {self.shop_code}: {summary.gave_up} gave up after retries, {summary.rejected} refused "
                     f"(orders {shown}{f' and {more} more' if more > 0 else ''}). Each is in the review queue "
                     f"(stage write_back) with its reason; once fixed or once {platform} answers again, "
                     f"push them again with `oms writeback retry --shop {self.shop_code}`."),
            gave_up=summary.gave_up, rejected=summary.rejected,
        )


def _asked(shipment: dict) -> dict:
    """What a failed push asked for: the connector builds the wire request and returns it
    only with a success, so a failure keeps our side of it."""
    return {"platform_order_id": shipment["platform_order_id"], "carrier": shipment["carrier"],
            "tracking_number": shipment["tracking_number"]}


def _jsonable(value):
    if value is None or isinstance(value, (dict, list)):
        return value
    return {"body": str(value)[:2000]}
