"""The after-sales lifecycle: which nodes a request passes, who decides at each, and when
a wait escalates.

The lifecycle is configuration (config/after_sales.yaml, read by `oms.after_sales_rules`):
an ordered list of nodes, each switched on or off, with conditions on the request, an
approver role, a timeout and an escalation ladder; and automatic rules that approve small
refunds without a person. `plan` turns a request's facts into the path it will take,
with the reason for every node taken or skipped, so the audit trail and the approval form
can say why a person is asked. `waits` cuts a node's wait into the stretches between the
rungs of its ladder. Pure: no clock reads, no I/O.

Node kinds:
- `approval`: a person decides the money (approve, partial, refuse).
- `check`: a person checks something (returned goods, quality, customs) and says passed
  or failed; `on_fail` says what a failure means: `write_off` (the goods are written off
  and the refund goes on), `refuse` (the refund is refused) or `hold` (it stops, unpaid).
- `payout`: the pipeline carries the decision out on the platform.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

NODE_KINDS = ("approval", "check", "payout")
ON_FAIL = ("write_off", "refuse", "hold")
KINDS = ("refund_only", "return_and_refund", "exchange")
# Platforms whose agree call carries an amount, so a partial refund can be paid there;
# the others refund what the buyer asked, and a lower sum is agreed with the buyer first
# (they change the request). Shopify's approval of a return pays nothing by itself (the
# refund is its own call), so it is not here. Unknown platforms are full-only: the safe side.
PARTIAL_REFUNDS = frozenset({"taobao"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


# ------------------------------------------------------------------------ the facts


@dataclass(frozen=True)
class RequestFacts:
    """What the lifecycle's conditions look at, for one request."""

    kind: str
    amount: Decimal
    currency: str
    reason_code: str
    platform: str
    cross_border: bool
    skus: tuple[str, ...] = ()
    member_level: str = ""
    earlier_refunds: int = 0  # the buyer's requests on this platform within the window


def allows_partial_refund(platform: str) -> bool:
    return platform in PARTIAL_REFUNDS


# ------------------------------------------------------------------- the configuration


@dataclass(frozen=True)
class Conditions:
    """All that are set must hold; an empty set of conditions always holds."""

    amount_at_most: Decimal | None = None
    amount_above: Decimal | None = None
    kinds: frozenset[str] | None = None
    reasons: frozenset[str] | None = None
    channels: frozenset[str] | None = None
    cross_border: bool | None = None
    categories: frozenset[str] | None = None
    member_levels: frozenset[str] | None = None
    repeat_refunder: bool | None = None

    def misses(self, facts: RequestFacts, categories: frozenset[str], repeat: bool) -> list[str]:
        """Each condition that does not hold, in words; empty when all hold."""
        missed = []
        if self.amount_at_most is not None and facts.amount > self.amount_at_most:
            missed.append(f"amount {facts.amount} is above {self.amount_at_most}")
        if self.amount_above is not None and facts.amount <= self.amount_above:
            missed.append(f"amount {facts.amount} is not above {self.amount_above}")
        if self.kinds is not None and facts.kind not in self.kinds:
            missed.append(f"kind {facts.kind} is not {_either(self.kinds)}")
        if self.reasons is not None and facts.reason_code not in self.reasons:
            missed.append(f"reason {facts.reason_code or 'none'} is not {_either(self.reasons)}")
        if self.channels is not None and facts.platform not in self.channels:
            missed.append(f"channel {facts.platform} is not {_either(self.channels)}")
        if self.cross_border is not None and facts.cross_border != self.cross_border:
            missed.append("the order is cross-border" if facts.cross_border else "the order is domestic")
        if self.categories is not None and not categories & self.categories:
            missed.append(f"no item is {_either(self.categories)}")
        if self.member_levels is not None and facts.member_level not in self.member_levels:
            missed.append(f"member level {facts.member_level or 'none'} is not {_either(self.member_levels)}")
        if self.repeat_refunder is not None and repeat != self.repeat_refunder:
            missed.append("the buyer is a repeat refunder" if repeat else "the buyer is not a repeat refunder")
        return missed

    def holds_because(self, facts: RequestFacts, categories: frozenset[str], repeat: bool) -> str:
        """Why every condition holds, for the audit trail ("always" when there are none)."""
        said = []
        if self.amount_at_most is not None:
            said.append(f"amount {facts.amount} <= {self.amount_at_most} {facts.currency}")
        if self.amount_above is not None:
            said.append(f"amount {facts.amount} > {self.amount_above} {facts.currency}")
        if self.kinds is not None:
            said.append(f"kind {facts.kind}")
        if self.reasons is not None:
            said.append(f"reason {facts.reason_code}")
        if self.channels is not None:
            said.append(f"channel {facts.platform}")
        if self.cross_border is not None:
            said.append("cross-border" if facts.cross_border else "domestic")
        if self.categories is not None:
            said.append("items in " + ", ".join(sorted(categories & self.categories)))
        if self.member_levels is not None:
            said.append(f"member level {facts.member_level}")
        if self.repeat_refunder is not None:
            said.append(f"repeat refunder ({facts.earlier_refunds} earlier)" if repeat
                        else f"not a repeat refunder ({facts.earlier_refunds} earlier)")
        return "; ".join(said) or "always"


@dataclass(frozen=True)
class Rung:
    """After `after` at a node without an answer, `notify` is told and may answer too."""

    after: timedelta
    notify: str


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    role: str
    enabled: bool = True
    when: Conditions = field(default_factory=Conditions)
    timeout: timedelta = timedelta(hours=24)
    escalation: tuple[Rung, ...] = ()
    on_fail: str = "refuse"
    title: str = ""

    @property
    def label(self) -> str:
        return self.title or self.name.replace("_", " ")


@dataclass(frozen=True)
class AutoRule:
    """Approves the money of a request that meets `when`, without a person."""

    name: str
    when: Conditions


@dataclass(frozen=True)
class Lifecycle:
    nodes: tuple[Node, ...]
    auto_rules: tuple[AutoRule, ...] = ()
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> SKU patterns
    repeat_refunds: int = 3  # this many earlier requests make a repeat refunder...
    repeat_within_days: int = 90  # ...within this many days
    near_deadline: timedelta = timedelta(hours=12)  # the report's "near the platform deadline"

    def categories_of(self, skus: tuple[str, ...]) -> frozenset[str]:
        return frozenset(name for name, patterns in self.categories.items()
                         if any(fnmatch.fnmatchcase(sku, pattern) for sku in skus for pattern in patterns))

    def is_repeat_refunder(self, facts: RequestFacts) -> bool:
        return facts.earlier_refunds >= self.repeat_refunds

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any], source: str = "after-sales lifecycle") -> Lifecycle:
        """Build and check a lifecycle; every mistake is a ValueError naming the key."""
        known = {"nodes", "auto_approve", "categories", "repeat_refunder", "near_deadline"}
        _no_unknown(document, known, source)
        nodes = tuple(_node(raw, f"{source}: nodes[{i}]") for i, raw in enumerate(_list(document, "nodes", source)))
        if not nodes:
            raise ValueError(f"{source}: nodes: at least one node is needed")
        names = [node.name for node in nodes]
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise ValueError(f"{source}: nodes: {', '.join(doubled)} appear more than once")
        if not any(node.kind == "payout" and node.enabled for node in nodes):
            raise ValueError(f"{source}: nodes: one enabled node of kind payout must carry the decision out")
        rules = tuple(AutoRule(_text(raw, "name", f"{source}: auto_approve[{i}]"),
                               _conditions(raw.get("when"), f"{source}: auto_approve[{i}].when"))
                      for i, raw in enumerate(_list(document, "auto_approve", source)))
        repeat = document.get("repeat_refunder") or {}
        _no_unknown(repeat, {"refunds", "within_days"}, f"{source}: repeat_refunder")
        return cls(
            nodes=nodes, auto_rules=rules, categories=_categories(document.get("categories"), source),
            repeat_refunds=_positive_int(repeat.get("refunds", 3), f"{source}: repeat_refunder.refunds"),
            repeat_within_days=_positive_int(repeat.get("within_days", 90), f"{source}: repeat_refunder.within_days"),
            near_deadline=duration(document.get("near_deadline", "12h"), f"{source}: near_deadline"),
        )


# ------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Step:
    node: Node
    action: str  # ask (a person) | auto (approved by a rule) | skip | payout
    why: str


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    auto_rule: AutoRule | None = None
    auto_reason: str = ""

    @property
    def asks(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.action == "ask")

    @property
    def needs_a_person(self) -> bool:
        return bool(self.asks)

    def summary(self) -> str:
        return "; ".join(f"{step.node.name}: {step.action} ({step.why})" for step in self.steps)


def plan(lifecycle: Lifecycle, facts: RequestFacts) -> Plan:
    """The path of a request through the lifecycle, each node with the reason it is
    taken or skipped. An automatic rule replaces the approval nodes, never the checks:
    returned goods are inspected whatever their amount."""
    categories = lifecycle.categories_of(facts.skus)
    repeat = lifecycle.is_repeat_refunder(facts)
    rule, rule_reason = None, ""
    for candidate in lifecycle.auto_rules:
        if not candidate.when.misses(facts, categories, repeat):
            rule, rule_reason = candidate, candidate.when.holds_because(facts, categories, repeat)
            break
    steps = []
    for node in lifecycle.nodes:
        steps.append(_step(node, facts, categories, repeat, rule, rule_reason))
    return Plan(tuple(steps), rule, rule_reason)


def _step(node: Node, facts: RequestFacts, categories: frozenset[str], repeat: bool,
          rule: AutoRule | None, rule_reason: str) -> Step:
    if not node.enabled:
        return Step(node, "skip", "switched off")
    missed = node.when.misses(facts, categories, repeat)
    if missed:
        return Step(node, "skip", "; ".join(missed))
    why = node.when.holds_because(facts, categories, repeat)
    if node.kind == "payout":
        return Step(node, "payout", why)
    if node.kind == "approval" and rule is not None:
        return Step(node, "auto", f"approved by rule {rule.name}: {rule_reason}")
    return Step(node, "ask", why)


# ------------------------------------------------------------------------- waiting


@dataclass(frozen=True)
class Wait:
    """One stretch of waiting at a node; when it ends unanswered, `then_notify` is told
    (None: the node's timeout is reached and the wait is over, unanswered)."""

    length: timedelta
    then_notify: str | None


def waits(node: Node, cap: timedelta | None = None) -> list[Wait]:
    """The stretches of a node's wait: up to each rung of its ladder, then to its timeout.

    `cap` shortens the whole wait (the platform's own deadline comes first: after it the
    platform decides for the buyer). Rungs at or after the end are not reached."""
    end = node.timeout if cap is None else max(timedelta(0), min(node.timeout, cap))
    stretches, waited = [], timedelta(0)
    for rung in sorted(node.escalation, key=lambda r: r.after):
        if rung.after >= end:
            break
        stretches.append(Wait(rung.after - waited, rung.notify))
        waited = rung.after
    stretches.append(Wait(end - waited, None))
    return stretches


# --------------------------------------------------------------------- reading YAML


def duration(value: Any, where: str) -> timedelta:
    """"90s", "30m", "2h", "1d", or a number of hours."""
    if isinstance(value, bool):
        raise ValueError(f"{where}: a duration such as 2h or 30m, not {value!r}")
    if isinstance(value, (int, float)):
        hours = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{where}: a duration such as 2h, 30m or 90s, not {value!r}")
        delta = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        hours = delta.total_seconds() / 3600
    if hours <= 0:
        raise ValueError(f"{where}: must be longer than zero, not {value!r}")
    return timedelta(hours=hours)


def _node(raw: Any, where: str) -> Node:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: each node is a mapping")
    _no_unknown(raw, {"name", "kind", "role", "enabled", "when", "timeout", "escalation", "on_fail", "title"},
                where)
    name = _text(raw, "name", where)
    kind = raw.get("kind", "approval")
    if kind not in NODE_KINDS:
        raise ValueError(f"{where} ({name}): kind must be one of {', '.join(NODE_KINDS)}, not {kind!r}")
    on_fail = raw.get("on_fail", "refuse")
    if on_fail not in ON_FAIL:
        raise ValueError(f"{where} ({name}): on_fail must be one of {', '.join(ON_FAIL)}, not {on_fail!r}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"{where} ({name}): enabled is true or false, not {enabled!r}")
    role = raw.get("role", "pipeline" if kind == "payout" else None)
    if not role:
        raise ValueError(f"{where} ({name}): role: say who decides here")
    timeout = duration(raw.get("timeout", "24h"), f"{where} ({name}).timeout")
    ladder = tuple(_rung(rung, f"{where} ({name}).escalation[{i}]")
                   for i, rung in enumerate(raw.get("escalation") or ()))
    return Node(name=name, kind=kind, role=str(role), enabled=enabled,
                when=_conditions(raw.get("when"), f"{where} ({name}).when"), timeout=timeout,
                escalation=ladder, on_fail=on_fail, title=str(raw.get("title") or ""))


def _rung(raw: Any, where: str) -> Rung:
    if not isinstance(raw, Mapping) or set(raw) != {"after", "notify"}:
        raise ValueError(f"{where}: each rung is {{after: 2h, notify: <role>}}")
    return Rung(duration(raw["after"], f"{where}.after"), str(raw["notify"]))


def _conditions(raw: Any, where: str) -> Conditions:
    if raw is None:
        return Conditions()
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: conditions are a mapping")
    _no_unknown(raw, set(Conditions.__dataclass_fields__), where)
    kinds = _words(raw, "kinds", where)
    if kinds is not None and kinds - set(KINDS):
        raise ValueError(f"{where}.kinds: {', '.join(sorted(kinds - set(KINDS)))} is not one of {', '.join(KINDS)}")
    return Conditions(
        amount_at_most=_amount(raw, "amount_at_most", where), amount_above=_amount(raw, "amount_above", where),
        kinds=kinds, reasons=_words(raw, "reasons", where), channels=_words(raw, "channels", where),
        cross_border=_flag(raw, "cross_border", where), categories=_words(raw, "categories", where),
        member_levels=_words(raw, "member_levels", where), repeat_refunder=_flag(raw, "repeat_refunder", where),
    )


def _categories(raw: Any, source: str) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{source}: categories map a name to SKU patterns")
    return {str(name): tuple(str(p) for p in (patterns if isinstance(patterns, list) else [patterns]))
            for name, patterns in raw.items()}


def _amount(raw: Mapping, key: str, where: str) -> Decimal | None:
    if raw.get(key) is None:
        return None
    try:
        amount = Decimal(str(raw[key]))
    except InvalidOperation:
        raise ValueError(f"{where}.{key}: an amount, not {raw[key]!r}") from None
    if amount < 0:
        raise ValueError(f"{where}.{key}: cannot be negative")
    return amount


def _words(raw: Mapping, key: str, where: str) -> frozenset[str] | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}.{key}: a list of names")
    return frozenset(str(item) for item in value)


def _flag(raw: Mapping, key: str, where: str) -> bool | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{where}.{key}: true or false, not {value!r}")
    return value


def _text(raw: Mapping, key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key} is required")
    return value.strip()


def _list(document: Mapping, key: str, source: str) -> list:
    value = document.get(key) or []
    if not isinstance(value, list):
        raise ValueError(f"{source}: {key} is a list")
    return value


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: a whole number of at least 1, not {value!r}")
    return value


def _no_unknown(raw: Mapping, known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(known))})")


def _either(names: frozenset[str]) -> str:
    return " or ".join(sorted(names))
