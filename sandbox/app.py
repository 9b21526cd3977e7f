"""The sandbox application: every simulator mounted on one FastAPI app.

Each platform module exposes `build_router(state)` and `register_shop(state, shop, now)`;
this module composes them and adds the control endpoints the demo and tests use to arm
faults over HTTP.
"""

from __future__ import annotations

import gc
from datetime import datetime, timezone

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from sandbox import carrier, pinduoduo, shopify
from sandbox.generator import populate
from sandbox.model import SandboxState

SIMULATORS = {"shopify": shopify, "pdd": pinduoduo}


class FaultRequest(BaseModel):
    platform: str
    kind: str
    times: int = 1
    delay_seconds: float = 0.0
    retry_after: int = 2


class ShopRequest(BaseModel):
    platform: str
    shop: str
    orders: int = 100
    seed: int = 7
    span_hours: float = 48.0


def create_app(state: SandboxState | None = None) -> FastAPI:
    state = state or SandboxState()
    app = FastAPI(title="OMS marketplace sandbox")
    app.state.sandbox = state
    app.include_router(shopify.build_router(state))
    app.include_router(pinduoduo.build_router(state))
    app.include_router(carrier.build_router(state))

    @app.get("/_sandbox/health")
    def health() -> dict:
        return {"ok": True, "shops": {shop: len(orders) for shop, orders in state.orders.items()}}

    @app.post("/_sandbox/faults")
    def arm_fault(request: FaultRequest) -> dict:
        try:
            state.faults.arm(
                request.platform,
                request.kind,
                request.times,
                delay_seconds=request.delay_seconds,
                retry_after=request.retry_after,
            )
        except ValueError as error:
            raise HTTPException(status_code=422, detail=str(error)) from error
        return {"armed": request.kind, "platform": request.platform}

    @app.delete("/_sandbox/faults")
    def clear_faults() -> dict:
        state.faults.clear()
        return {"cleared": True}

    @app.post("/_sandbox/shops")
    def add_shop(request: ShopRequest) -> dict:
        """Create a shop with seeded orders and return the credentials to reach it."""
        credentials = add_simulated_shop(
            state, request.platform, request.shop, request.orders, request.seed, request.span_hours
        )
        # Tens of thousands of long-lived orders would otherwise be rescanned by every
        # garbage collection while pages are served (measured: paging 8.5 s -> 4.8 s).
        gc.freeze()
        return credentials

    return app


def add_simulated_shop(
    state: SandboxState,
    platform: str,
    shop: str,
    orders: int,
    seed: int,
    span_hours: float = 48.0,
    now: datetime | None = None,
) -> dict:
    if platform not in SIMULATORS:
        raise HTTPException(status_code=422, detail=f"no simulator for {platform!r}")
    now = now or datetime.now(timezone.utc)
    populate(state, shop, count=orders, seed=seed, now=now, span_hours=span_hours)
    return SIMULATORS[platform].register_shop(state, shop, now)
