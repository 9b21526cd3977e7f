"""An operator's fix to a parked payload, and the record of what the fix changed.

A fix is either a list of assignments (`shipping_address.phone=13800138000`, or
`line_items.0.quantity:=2` for a JSON value) or a whole replacement payload. Either way
the change is described field by field, with the value before and after, so the payload
the platform sent can always be rebuilt from the fixed one and the audit trail.

`path=text` always assigns a string, because the fields operators fix most (phones,
postcodes, order ids) look like numbers and must stay strings; `path:=json` is the way
to write a number, a boolean, null, a list or an object.

Pure: no I/O, inputs are never modified.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

PathPart = str | int


class FixRejected(ValueError):
    """A fix that cannot be applied; the message names the field and what is wrong."""


@dataclass(frozen=True)
class Assignment:
    path: tuple[str, ...]  # segments as typed; a segment indexes a list when it meets one
    value: Any

    @property
    def label(self) -> str:
        return ".".join(self.path)


_ABSENT = object()


@dataclass(frozen=True)
class FieldChange:
    path: tuple[PathPart, ...]
    before: Any = _ABSENT
    after: Any = _ABSENT

    @property
    def label(self) -> str:
        return ".".join(str(part) for part in self.path)

    @property
    def kind(self) -> str:
        if self.before is _ABSENT:
            return "added"
        if self.after is _ABSENT:
            return "removed"
        return "changed"

    def as_json(self) -> dict[str, Any]:
        """The change for the audit trail; a side that did not exist is left out."""
        record: dict[str, Any] = {"path": self.label, "kind": self.kind}
        if self.before is not _ABSENT:
            record["before"] = self.before
        if self.after is not _ABSENT:
            record["after"] = self.after
        return record


def parse_assignment(text: str) -> Assignment:
    """`a.b=text` (a string) or `a.b:=json` (any JSON value)."""
    target, equals, raw = text.partition("=")
    if not equals:
        raise FixRejected(f"{text!r} is not an assignment: write path.to.field=value or path.to.field:=json")
    as_json = target.endswith(":")
    target = target[:-1] if as_json else target
    path = tuple(target.split("."))
    if not target or any(not part for part in path):
        raise FixRejected(f"{text!r} has an empty field name in its path")
    if not as_json:
        return Assignment(path, raw)
    try:
        return Assignment(path, json.loads(raw))
    except json.JSONDecodeError as error:
        raise FixRejected(f"the value of {target} is not JSON ({error.msg}); "
                          f"use {target}=... for a plain string") from None


def apply_assignments(payload: Any, assignments: list[Assignment]) -> Any:
    """A copy of the payload with every assignment made, in order.

    Missing objects along a path are created; a list is indexed, never grown, since a
    new list element (an order line, say) is better written as a whole replacement.
    """
    fixed = copy.deepcopy(payload)
    for assignment in assignments:
        _assign(fixed, assignment)
    return fixed


def _assign(root: Any, assignment: Assignment) -> None:
    container = root
    for depth, part in enumerate(assignment.path):
        walked = ".".join(assignment.path[:depth]) or "the payload"
        last = depth == len(assignment.path) - 1
        if isinstance(container, dict):
            if last:
                container[part] = copy.deepcopy(assignment.value)
                return
            if container.get(part) is None:
                container[part] = {}
            container = container[part]
        elif isinstance(container, list):
            index = _list_index(container, part, assignment.label)
            if last:
                container[index] = copy.deepcopy(assignment.value)
                return
            container = container[index]
        else:
            raise FixRejected(f"cannot set {assignment.label}: {walked} is a {_json_type(container)}, "
                              "not an object or a list")


def _list_index(items: list, part: str, label: str) -> int:
    try:
        index = int(part)
    except ValueError:
        raise FixRejected(f"cannot set {label}: {part!r} must be a position in a list") from None
    if not 0 <= index < len(items):
        raise FixRejected(f"cannot set {label}: the list has {len(items)} element(s), "
                          f"positions 0 to {len(items) - 1}")
    return index


def diff_payloads(before: Any, after: Any) -> list[FieldChange]:
    """Every field that differs, deepest first where both sides are objects or equal-length lists."""
    changes: list[FieldChange] = []
    _diff(before, after, (), changes)
    return changes


def _diff(before: Any, after: Any, path: tuple[PathPart, ...], changes: list[FieldChange]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in [*before, *(key for key in after if key not in before)]:
            _diff(before.get(key, _ABSENT), after.get(key, _ABSENT), (*path, key), changes)
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (old, new) in enumerate(zip(before, after)):
            _diff(old, new, (*path, index), changes)
    elif not _same(before, after):
        changes.append(FieldChange(path, before, after))


def _same(left: Any, right: Any) -> bool:
    # 1 == True and 1 == 1.0 in Python, but not to a platform's mapping.
    return type(left) is type(right) and left == right


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else type(value).__name__
