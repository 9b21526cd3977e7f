"""The Amazon simulator's sign-in: LWA access tokens, Restricted Data Tokens and who calls.

Login with Amazon trades an app's client credentials and the seller's refresh token for
a one-hour access token; personal data needs a Restricted Data Token naming the paths
and data elements it covers (reference §2.1). Kept apart from `sandbox.amazon`, which
serves the orders, so each stays readable.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from fastapi import Request
from fastapi.responses import JSONResponse

from sandbox.amazon_render import (
    MISSING_TOKEN, RDT_INVALID, RDT_OUT_OF_SCOPE, TOKEN_EXPIRED, TOKEN_INVALID,
)
from sandbox.model import SandboxState, SimToken

MAX_RESTRICTED_RESOURCES = 50  # [H]
DATA_ELEMENTS = frozenset({"buyerInfo", "shippingAddress", "buyerTaxInformation"})
LWA_PREFIX = "Atza|"  # LWA access tokens start so [M]; it keeps other platforms' tokens out
ACCESS_TOKEN_LIFETIME = timedelta(seconds=3600)  # [H] LWA expires_in
RDT_PREFIX = "Atz.sprdt|"  # [H] tokens_2021-03-01 example
TOKEN_HEADER = "x-amz-access-token"
RDT_LIFETIME_SECONDS = 3600  # [H] tokens_2021-03-01 example
# Restricted operations we serve -> whether an RDT for them must name dataElements [H].
RESTRICTED_PATHS = {
    "/orders/v0/orders": True, "/orders/v0/orders/{orderId}": True,
    "/orders/v0/orders/{orderId}/orderItems": True, "/orders/v0/orders/{orderId}/address": False,
}


# --- UNVERIFIED (reference [L] or absent): chosen for the simulator.
# LWA refresh tokens live while the seller's authorisation does (about a year).
REFRESH_TOKEN_LIFETIME = timedelta(days=365)
# LWA's error values are [M]; which one answers which mistake is [L].
LWA_BAD_CLIENT = (401, "invalid_client", "Client authentication failed")
LWA_BAD_GRANT = (400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
LWA_BAD_GRANT_TYPE = (400, "unsupported_grant_type",
                      "The authorization grant type is not supported")
# --- end

# refresh token -> the client_id it was issued to (tokens are random, so one map serves
# every SandboxState in the process)
_ISSUED_TO: dict[str, str] = {}


@dataclass
class Caller:
    shop: str
    restricted: frozenset[str]  # dataElements the RDT grants on this path; empty for LWA


def _matches(resource_path: str, request_path: str) -> bool:
    wanted, actual = resource_path.strip("/").split("/"), request_path.strip("/").split("/")
    return len(wanted) == len(actual) and all(
        w == a or (w.startswith("{") and w.endswith("}")) for w, a in zip(wanted, actual))


def authenticate(state: SandboxState, scopes: dict, request: Request, template: str,
                 path: str, expired_by_fault: bool) -> Caller:
    token = request.headers.get(TOKEN_HEADER)
    if not token:
        raise MISSING_TOKEN
    known = state.tokens.get(token) if token.startswith((LWA_PREFIX, RDT_PREFIX)) else None
    if known is None:
        raise TOKEN_INVALID
    if expired_by_fault or known.expires_at <= datetime.now(timezone.utc):
        raise TOKEN_EXPIRED
    if known.kind == "access":
        return Caller(known.shop, frozenset())
    for resource in scopes.get(token, ()):
        if resource["method"] == request.method and _matches(resource["path"], path):
            elements = set(resource["dataElements"])
            if template == "/orders/v0/orders/{orderId}/address":
                elements.add("shippingAddress")  # the operation's only data
            return Caller(known.shop, frozenset(elements))
    raise RDT_OUT_OF_SCOPE.saying(f"The token does not cover {request.method} {path}.")


def create_rdt(state: SandboxState, scopes: dict, shop: str, body: object) -> dict:
    resources = body.get("restrictedResources") if isinstance(body, dict) else None
    if not isinstance(resources, list) or not 1 <= len(resources) <= MAX_RESTRICTED_RESOURCES:
        raise RDT_INVALID.saying("Resource not provided.")
    granted = []
    for resource in resources:
        resource = resource if isinstance(resource, dict) else {}
        method, path = resource.get("method"), resource.get("path")
        known = (t for t in RESTRICTED_PATHS if isinstance(path, str) and _matches(t, path))
        template = next(known, None)
        if method not in ("GET", "PUT", "POST", "DELETE") or template is None:
            raise RDT_INVALID.saying("Resource not provided.")
        elements = resource.get("dataElements") or []
        if RESTRICTED_PATHS[template] and not elements or set(elements) - DATA_ELEMENTS:
            raise RDT_INVALID.saying(f"dataElements are missing or invalid for {path}.")
        granted.append({"method": method, "path": path, "dataElements": list(elements)})
    token = RDT_PREFIX + secrets.token_urlsafe(32)
    with state.lock:
        expires_at = datetime.now(timezone.utc) + timedelta(seconds=RDT_LIFETIME_SECONDS)
        state.tokens[token] = SimToken(shop=shop, expires_at=expires_at, kind="rdt")
        scopes[token] = granted
    return {"restrictedDataToken": token, "expiresIn": RDT_LIFETIME_SECONDS}


def lwa_token(state: SandboxState, form: dict[str, str]) -> JSONResponse:
    def refuse(error: tuple[int, str, str]) -> JSONResponse:
        body = {"error": error[1], "error_description": error[2]}
        return JSONResponse(body, status_code=error[0])

    client_id, secret = form.get("client_id", ""), state.app_secrets.get(form.get("client_id", ""))
    if secret is None or not hmac.compare_digest(secret, form.get("client_secret", "")):
        return refuse(LWA_BAD_CLIENT)
    if form.get("grant_type") != "refresh_token":
        return refuse(LWA_BAD_GRANT_TYPE)
    refresh_token = form.get("refresh_token", "")
    now = datetime.now(timezone.utc)
    if _ISSUED_TO.get(refresh_token) != client_id:
        return refuse(LWA_BAD_GRANT)
    known = state.redeem(refresh_token, now)
    if known is None:
        return refuse(LWA_BAD_GRANT)
    granted = state.grant(known.shop, now, ACCESS_TOKEN_LIFETIME, prefix=LWA_PREFIX)
    return JSONResponse({"access_token": granted["access_token"], "refresh_token": refresh_token,
                         "token_type": "bearer",
                         "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds())})


def authorise_app(state: SandboxState, shop: str, now: datetime) -> dict:
    """A fresh app's LWA client credentials and the seller's tokens (3600 s access)."""
    client_id = "amzn1.application-oa2-client." + secrets.token_hex(16)
    client_secret = "amzn1.oa2-cs.v1." + secrets.token_hex(32)
    # state.grant gives both tokens one prefix; real refresh tokens start "Atzr|" instead.
    granted = state.grant(shop, now, ACCESS_TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME,
                          prefix=LWA_PREFIX)
    with state.lock:
        state.app_secrets[client_id] = client_secret
    _ISSUED_TO[granted["refresh_token"]] = client_id
    return {
        "client_id": client_id, "client_secret": client_secret,
        "refresh_token": granted["refresh_token"], "access_token": granted["access_token"],
        "access_expires_at": granted["access_expires_at"].isoformat(),
    }
