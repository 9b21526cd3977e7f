"""What the approver reads above the form, and which answers are refused before money moves."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from oms.domain.refund_view import Decision, check_decision, decision_markdown, refund_view_from_dict
from tests.refund_requests import refund_request

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


def view(amount: str = "350.00", **changes):
    return replace(refund_view_from_dict(refund_request("R-1", amount)), **changes)


def answer(outcome: str, amount: str, note: str = "", approver: str = "supervisor.li") -> Decision:
    return Decision(outcome, Decimal(amount), approver, note)


def test_the_description_shows_the_request_and_never_the_buyers_phone():
    text = decision_markdown(view(buyer_masked_phone="+8613812345678"), NOW)
    assert "138****5678" in text and "13812345678" not in text
    for shown in ("TB-R-1 (taobao)", "item arrived damaged", "Ceramic teapot", "350.00 CNY of 399.00 paid",
                  "[evidence 1](https://evidence.example/ref/photo-1.jpg)", "1 earlier, 59.00 CNY", "supervisor review"):
        assert shown in text


def test_the_problems_of_a_refused_answer_come_before_everything_else():
    text = decision_markdown(view(), NOW, ["approved amount 999.00 is above the requested 350.00"])
    assert text.index("above the requested") < text.index("## Refund R-1")


def test_an_overdue_request_says_so():
    overdue = view(platform_deadline=NOW - timedelta(hours=3))
    assert "overdue by 3.0 h" in decision_markdown(overdue, NOW)


@pytest.mark.parametrize("decision, refused_because", [
    (answer("approve", "350.00"), None),
    (answer("partial", "120.00", note="one cup was fine"), None),
    (answer("refuse", "0", note="used"), None),
    (answer("approve", "400.00"), "above the requested"),
    (answer("approve", "300.00"), "choose partial"),
    (answer("partial", "350.00", note="x"), "between 0 and"),
    (answer("refuse", "10.00", note="x"), "pays nothing"),
    (answer("refuse", "0"), "needs a note"),
    (answer("approve", "350.00", approver="  "), "approver is empty"),
])
def test_an_answer_is_carried_out_only_when_it_is_consistent(decision, refused_because):
    problems = check_decision(view(), decision)
    if refused_because is None:
        assert problems == []
    else:
        assert any(refused_because in problem for problem in problems), problems
