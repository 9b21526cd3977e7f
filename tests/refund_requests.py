"""Refund requests as the `approve-refund` flow takes them, for the flow and browser tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any


def refund_request(ref: str, amount: str, node: str = "supervisor review") -> dict[str, Any]:
    """A return-and-refund of two items, with evidence and a buyer who refunded before."""
    deadline = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=30)
    return {
        "request_ref": ref,
        "order_ref": f"TB-{ref}",
        "platform": "taobao",
        "kind": "return_and_refund",
        "reason": "item arrived damaged",
        "requested_amount": amount,
        "paid_amount": "399.00",
        "platform_deadline": deadline.isoformat(),
        "node": node,
        "node_reason": f"refund {amount} is above the 200.00 a supervisor may approve alone",
        "buyer_masked_phone": "138****5678",
        "lines": [
            {"sku": "SKU-0001", "title": "Ceramic teapot", "quantity": 1, "amount": "299.00"},
            {"sku": "SKU-0002", "title": "Tea cups, set of 4", "quantity": 1, "amount": "100.00"},
        ],
        "evidence_links": ["https://evidence.example/ref/photo-1.jpg",
                           "https://evidence.example/ref/photo-2.jpg"],
        "buyer_history": [
            {"order_ref": "TB-1001", "amount": "59.00", "reason": "wrong size",
             "outcome": "approved", "requested_on": "2026-10-03"},
        ],
    }
