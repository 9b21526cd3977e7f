"""Builders of internal orders for tests: valid by default, changed by keyword."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

BASE_TIME = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)


def make_order(number: int = 1, *, sku: str = "SKU-0001", quantity: int = 1,
               status: OrderStatus = OrderStatus.PAID, minutes_later: int = 0,
               shop_code: str = "shop-a", platform: str = "shopify", **changes) -> Order:
    updated = BASE_TIME + timedelta(minutes=minutes_later)
    order = Order(
        platform=platform,
        shop_code=shop_code,
        platform_order_id=f"ORDER-{number}",
        platform_status="paid",
        status=status,
        created_at=BASE_TIME,
        updated_at=updated,
        paid_at=BASE_TIME,
        currency="CNY",
        total_amount=Decimal("59.00") * quantity,
        receiver=Receiver(name="测试 收件人", phone="+8613800138000", province="上海市",
                          city="上海市", district="浦东新区", address="测试路 1 号"),
        lines=[OrderLine(sku=sku, quantity=quantity, unit_price=Decimal("59.00"), title="帆布包")],
    )
    for name, value in changes.items():
        setattr(order, name, value)
    return order
