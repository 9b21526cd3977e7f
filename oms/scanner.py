"""The HTTP endpoint warehouse scanners talk to (`oms scanner serve`).

    POST /scans                    {"step": "packed", "tracking_numbers": ["SF1", ...],
                                    "weight_grams": 1200, "station": "bench-3", "operator": "li"}
                                   -> 200 {"outcomes": [...], "refused": n}, one per parcel
    GET  /parcels/{tracking}       -> the parcel's timeline (404 when no waybill has it)
    GET  /healthz                  -> {"ok": true}, for the scanner's connection light

A refused scan is still a 200: the request was understood, and each outcome says what the
packer must do; 422 means the scanner sent something unreadable. When a scanner token is
configured every call but /healthz must carry it in X-Scanner-Token. Answers carry what a
packer needs (order ids, SKU lines, step times), never a receiver's name, phone or address.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from oms.db.engine import get_engine
from oms.db.scans import parcel_history, record_scans
from oms.domain.warehouse_steps import DEFAULT_POLICY, STEPS, WEIGHED, Scan, ScanPolicy

# A scanner's buffer flushed after a network gap is a few hundred parcels; more in one
# request is a client bug, and would hold the database's write lock for too long.
MAX_PARCELS_PER_REQUEST = 500


class ScanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    step: Literal[STEPS]  # type: ignore[valid-type]
    tracking_number: str | None = Field(default=None, min_length=1, max_length=64)
    tracking_numbers: list[str] | None = Field(default=None, min_length=1, max_length=MAX_PARCELS_PER_REQUEST)
    weight_grams: int | None = Field(default=None, gt=0, le=1_000_000)
    station: str | None = Field(default=None, max_length=64)
    operator: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one_way_to_name_parcels(self) -> ScanRequest:
        if (self.tracking_number is None) == (self.tracking_numbers is None):
            raise ValueError("give either tracking_number or tracking_numbers, not both and not neither")
        if any(not number.strip() or len(number) > 64 for number in self.numbers()):
            raise ValueError("every tracking number must be 1 to 64 characters")
        if self.step == WEIGHED and self.weight_grams is None:
            raise ValueError("the weighed step needs weight_grams, the scale's figure in grams")
        return self

    def numbers(self) -> list[str]:
        return [self.tracking_number] if self.tracking_number is not None else list(self.tracking_numbers or [])


def create_app(database_url: str, *, token: str = "", policy: ScanPolicy = DEFAULT_POLICY,
               clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> FastAPI:
    """The scanner API over one database; `token` empty means no token is asked for
    (a scanner network nobody else can reach)."""
    engine = get_engine(database_url)
    app = FastAPI(title="oms scanner", docs_url=None, redoc_url=None, openapi_url=None)

    def scanner_allowed(x_scanner_token: str | None = Header(default=None)) -> None:
        if token and not hmac.compare_digest((x_scanner_token or "").encode(), token.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong X-Scanner-Token")

    # Every refusal of a request has the same shape, {"error": sentence}, so a scanner's
    # screen can show it without knowing which layer refused.
    @app.exception_handler(RequestValidationError)
    async def _unreadable(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_problem(item) for item in error.errors()]
        return JSONResponse(status_code=422, content={"error": "; ".join(problems), "problems": problems})

    @app.exception_handler(StarletteHTTPException)
    async def _refused(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=error.status_code, content={"error": str(error.detail)},
                            headers=getattr(error, "headers", None))

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.post("/scans", dependencies=[Depends(scanner_allowed)])
    def post_scans(body: ScanRequest) -> dict:
        scans = [Scan(body.step, number, body.weight_grams, body.station, body.operator, source="scanner")
                 for number in body.numbers()]
        with engine.begin() as conn:
            outcomes = record_scans(conn, scans, clock(), policy)
        return {"outcomes": [o.as_dict() for o in outcomes],
                "refused": sum(o.verdict == "refused" for o in outcomes)}

    @app.get("/parcels/{tracking_number}", dependencies=[Depends(scanner_allowed)])
    def get_parcel(tracking_number: str) -> dict:
        with engine.connect() as conn:
            history = parcel_history(conn, tracking_number)
        if history is None:
            raise HTTPException(status_code=404, detail=f"no waybill has tracking number {tracking_number}")
        return history

    return app


def _problem(item: dict) -> str:
    if item.get("type") == "json_invalid":
        return "the body is not valid JSON"
    where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
    message = item.get("msg", "invalid").removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def serve(database_url: str, host: str, port: int, *, token: str = "", policy: ScanPolicy = DEFAULT_POLICY) -> None:
    import uvicorn

    uvicorn.run(create_app(database_url, token=token, policy=policy), host=host, port=port, log_level="info")
