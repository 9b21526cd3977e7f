"""Shopee simulator (placeholder until the simulator lands)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from sandbox.model import SandboxState

PLATFORM = "shopee"


def base_path(shop: str) -> str:
    return "/shopee"


def build_router(state: SandboxState) -> APIRouter:
    return APIRouter()


def register_shop(state: SandboxState, shop: str, now: datetime) -> dict:
    raise NotImplementedError("the shopee simulator is not built yet")
