"""A person's decision at a refund node: the flow run pauses until the form is answered.

The operator opens the paused run in the Prefect UI, presses Resume and answers the form
(`RefundDecisionInput`) under a Markdown description of the request. Two gates refuse an
answer without losing the run: the Prefect server checks the form's JSON schema (a missing
decision, an amount above the requested one) and leaves the run paused; our own rules
(`check_decision`, or the caller's) are checked after the resume, and a refused answer
pauses the run again with the problems at the top of the description.

The wait follows the node's escalation ladder: each unanswered stretch ends by telling the
next role (the form then says it was escalated) and waiting again; after the node's
timeout `ask_for_decision` returns `TimedOut` and the caller escalates. Money is never
approved by a timeout. Prefect would fail a run whose pause expired, and
refuses to move it out of the expired pause, so we force it back to Running: the flow can
then escalate, notify and finish with a record of what happened instead of a bare failure.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Callable, Literal

import pydantic
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Running

from oms.domain.refund_view import (
    Decision,
    RefundView,
    TimedOut,
    check_decision,
    decision_markdown,
    money,
)
from oms.domain.refunds import Wait


class ApprovalAbandoned(RuntimeError):
    """The run was taken out of its pause by someone else (cancelled): stop, decide nothing."""


Validator = Callable[[RefundView, Decision], list[str]]


class RefundDecisionInput(RunInput):
    """The form at an approval node. A Literal makes the UI draw a select; a float a number box."""

    decision: Literal["approve", "partial", "refuse"]
    approved_amount: float = pydantic.Field(ge=0)
    note: str = ""
    approver: str = pydantic.Field(min_length=1)
    # Some platforms want their own refuse reason code with a refusal (Douyin).
    refuse_reason_code: str = ""


class CheckInput(RunInput):
    """The form at a check node: returned goods inspected, quality tested, customs cleared."""

    result: Literal["passed", "failed"]
    note: str = ""
    checked_by: str = pydantic.Field(min_length=1)


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    note: str
    checked_by: str


Notify = Callable[[str, Wait], None]


def decision_form(view: RefundView, problems: list[str], now: datetime,
                  escalated_to: tuple[str, ...] = ()) -> type[RefundDecisionInput]:
    """The form for this request: the amount capped at the requested one, prefilled with it.

    `with_initial_data` keeps a field's type but drops its constraints, so the capped
    amount is built here; the server then refuses an amount above the request itself.
    """
    requested = float(view.requested_amount)
    capped = pydantic.create_model(
        RefundDecisionInput.__name__,
        __base__=RefundDecisionInput,
        approved_amount=(Annotated[float, pydantic.Field(ge=0, le=requested)], requested),
    )
    return capped.with_initial_data(description=_description(view, now, problems, escalated_to))


def check_form(view: RefundView, problems: list[str], now: datetime,
               escalated_to: tuple[str, ...] = ()) -> type[CheckInput]:
    return CheckInput.with_initial_data(description=_description(view, now, problems, escalated_to))


def _description(view: RefundView, now: datetime, problems: list[str], escalated_to: tuple[str, ...]) -> str:
    text = decision_markdown(view, now, problems)
    if escalated_to:
        text = f"> **Escalated to {', '.join(escalated_to)}**: nobody answered in time.\n\n" + text
    return text


def ask_for_decision(view: RefundView, node: str, waits: list[Wait], notify: Notify,
                     validate: Validator = check_decision, poll_seconds: int = 10) -> Decision | TimedOut:
    """Pause the current flow run until a person gives an answer `validate` accepts."""
    def read(answer: RefundDecisionInput) -> Decision:
        return Decision(outcome=answer.decision, approved_amount=money(answer.approved_amount),
                        approver=answer.approver.strip(), note=answer.note.strip(),
                        refuse_reason_code=answer.refuse_reason_code.strip())
    return _ask(view, node, waits, notify, decision_form, read, lambda d: validate(view, d), poll_seconds)


def ask_for_check(view: RefundView, node: str, waits: list[Wait], notify: Notify,
                  poll_seconds: int = 10) -> CheckResult | TimedOut:
    """Pause until a person says whether the check passed; a failure needs its reason."""
    def read(answer: CheckInput) -> CheckResult:
        return CheckResult(answer.result == "passed", answer.note.strip(), answer.checked_by.strip())

    def validate(result: CheckResult) -> list[str]:
        if not result.checked_by:
            return ["checked by is empty: say who checked"]
        if not result.passed and not result.note:
            return ["a failed check needs a note with what was wrong"]
        return []
    return _ask(view, node, waits, notify, check_form, read, validate, poll_seconds)


def _ask(view: RefundView, node: str, waits: list[Wait], notify: Notify, form_of, read, validate,
         poll_seconds: int):
    """Wait stretch by stretch: at the end of each unanswered one, tell the next rung and
    wait again; after the last, give up. A refused answer does not buy more time."""
    logger = get_run_logger()
    problems: list[str] = []
    seen: list[str] = []
    escalated: list[str] = []
    attempt = 0
    waited = 0
    for stretch in waits:
        deadline = time.monotonic() + stretch.length.total_seconds()
        while (remaining := int(deadline - time.monotonic())) > 0:
            attempt += 1
            form = form_of(view, problems, datetime.now(timezone.utc), tuple(escalated))
            try:
                answer = pause_flow_run(wait_for_input=form, timeout=remaining,
                                        poll_interval=min(poll_seconds, remaining),
                                        key=_pause_key(view.request_ref, node, attempt))
            except FlowPauseTimeout:
                _leave_expired_pause(node)
                break
            result = read(answer)
            problems = validate(result)
            if not problems:
                logger.info("%s at %s: answered after %d attempt(s)", view.request_ref, node, attempt)
                return result
            seen.extend(problems)
            logger.warning("%s at %s: answer refused, pausing again: %s", view.request_ref, node,
                           "; ".join(problems))
        waited += int(stretch.length.total_seconds())
        if stretch.then_notify is not None:
            escalated.append(stretch.then_notify)
            logger.warning("%s at %s: no answer after %d s; escalating to %s", view.request_ref, node, waited,
                           stretch.then_notify)
            notify(stretch.then_notify, stretch)
    logger.warning("%s at %s: nobody answered within %d s; nothing approved", view.request_ref, node, waited)
    return TimedOut(node=node, waited_seconds=waited, problems_seen=tuple(seen))


def _pause_key(request_ref: str, node: str, attempt: int) -> str:
    """Each attempt needs its own key: the server treats a key it has seen as already
    answered. Prefect allows only lowercase letters, digits and dashes in it."""
    text = f"{request_ref}-{node}-{attempt}".lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _leave_expired_pause(node: str) -> None:
    """Put the run back to Running after its pause expired.

    The server refuses every way out of an expired pause except to Failed; `force` skips
    that rule. An answer that arrives after the timeout is stored by Prefect but never read.
    """
    context = FlowRunContext.get()
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(context.flow_run.id).state
        # Failed is what the server makes of an answer sent after the deadline; anything
        # else (an operator cancelled the run) is not ours to undo.
        if state is None or state.type not in (StateType.PAUSED, StateType.FAILED, StateType.RUNNING):
            raise ApprovalAbandoned(f"the run left its pause at {node} as {state}; not escalating")
        if state.type != StateType.RUNNING:
            client.set_flow_run_state(context.flow_run.id,
                                      Running(message=f"No answer at {node} in time; escalating"), force=True)
