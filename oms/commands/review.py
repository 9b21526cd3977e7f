"""`oms review`: the review queue for operators: list, show, fix, resubmit, discard, history.

Listing and history print reasons, ids and field names only. `show` prints the raw
payload, which is buyers' personal data handed to a person, so each showing is an
export in `personal_data_exports` (with who and what for) and a `shown` row in the
entry's audit trail, both committed before anything is printed. Fixes print the names
of the fields they changed, never the values.

A refused action (unknown entry, entry already resolved, no reason given, a payload
that cannot be fixed) prints one sentence to stderr and exits with 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from oms.db.review import (
    ALL,
    OPEN,
    RESOLVED,
    ReviewRefused,
    audit_trail,
    count_entries,
    discard,
    fix_payload,
    get_entry,
    list_entries,
    record_action,
)
from oms.domain.review_fix import FixRejected, apply_assignments, parse_assignment

REFUSED = 2
STILL_OPEN = 1  # a resubmission that failed again: not a usage error, but not done
ACTOR_WIDTH = 64  # review_audit.actor and personal_data_exports.actor


def add_commands(commands) -> None:
    """Add `review` and its sub-commands to an `add_subparsers()` set."""
    review = commands.add_parser("review", help="the review queue: list, show, fix, resubmit, discard, history"
                                 ).add_subparsers()

    listing = review.add_parser("list", help="entries (open by default), newest first, with counts by reason")
    listing.add_argument("--shop", default=None)
    listing.add_argument("--stage", default=None, help="land, clean, validate, allocate, ship, write_back, ...")
    listing.add_argument("--reason", default=None, help="only entries with a reason containing this text")
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="open and resolved entries")
    which.add_argument("--resolved", action="store_true", help="resolved entries only")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=_list)

    show = review.add_parser("show", help="one entry with its raw payload (recorded as a personal-data export)")
    show.add_argument("entry_id", type=int, metavar="ID")
    _actor_argument(show)
    show.add_argument("--purpose", default="review",
                      help="why you look at the buyer's data, for the export audit (default: review)")
    show.set_defaults(run=_show)

    fix = review.add_parser(
        "fix", help="change an entry's payload: --set path=text, --set path:=json, or --payload-file",
        description="Fix the payload of a land, clean or validate entry. --set a.b=text assigns a string, "
                    "--set a.b:=json any JSON value (a number, true, null, a list); list positions are "
                    "numbers (line_items.0.sku=SKU-1). --payload-file replaces the whole payload.")
    change = fix.add_mutually_exclusive_group(required=True)
    change.add_argument("--set", action="append", dest="assignments", metavar="PATH=VALUE")
    change.add_argument("--payload-file", type=Path, metavar="FILE", help="a JSON file; - reads standard input")
    fix.add_argument("entry_id", type=int, metavar="ID")
    _actor_argument(fix)
    fix.add_argument("--note", default=None, help="what the fix is, for the audit trail")
    fix.add_argument("--resubmit", action="store_true", help="resubmit the entry right after the fix")
    fix.set_defaults(run=_fix)

    again = review.add_parser("resubmit", help="run the entry's order through its stage again, now")
    again.add_argument("entry_id", type=int, metavar="ID")
    _actor_argument(again)
    again.set_defaults(run=_resubmit)

    drop = review.add_parser("discard", help="close an entry nobody will process, saying why")
    drop.add_argument("entry_id", type=int, metavar="ID")
    drop.add_argument("--reason", required=True, help="why, for the audit trail (required)")
    _actor_argument(drop)
    drop.set_defaults(run=_discard)

    history = review.add_parser("history", help="an entry's audit trail: who did what, when")
    history.add_argument("entry_id", type=int, metavar="ID")
    history.set_defaults(run=_history)


def run(argv: list[str]) -> int:
    """`oms` with only the review commands: for tests, until `oms.cli` wires them in."""
    parser = argparse.ArgumentParser(prog="oms")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return REFUSED
    return args.run(args)


def _actor_argument(command) -> None:
    command.add_argument("--actor", default=None, help="who acts, for the audit trail (default: your OS user)")


# ------------------------------------------------------------------ the commands


def _refusals(action):
    """Refusals become one line on stderr and exit code 2, never a traceback."""
    def guarded(args) -> int:
        try:
            return action(args)
        except (ReviewRefused, FixRejected) as refusal:
            print(refusal, file=sys.stderr)
            return REFUSED
    return guarded


@_refusals
def _list(args) -> int:
    if args.limit < 1:
        raise ReviewRefused("--limit is a positive number")
    state = ALL if args.all else RESOLVED if args.resolved else OPEN
    filters = {"state": state, "shop_code": args.shop, "stage": args.stage, "reason": args.reason}
    with _engine().connect() as conn:
        entries = list_entries(conn, limit=args.limit, **filters)
        counts = count_entries(conn, **filters)
    if not entries:
        print(f"no {'' if state == ALL else state + ' '}review entry matches")
        return 0
    headers = ("id", "stage", "shop", "order", "since", "reasons")
    rows = [(e["id"], e["stage"], e["shop_code"], e["platform_order_id"] or "-", _when(e["created_at"]),
             "; ".join(e["reasons"])) for e in entries]
    if state != OPEN:
        headers = (*headers[:5], "state", headers[5])
        rows = [(*row[:5], _state(entry), row[5]) for row, entry in zip(rows, entries)]
    _print_table(headers, rows)
    if len(entries) == args.limit:
        print(f"(the newest {args.limit}; --limit shows more)")
    print()
    print("matching entries by stage and reason:")
    _print_table(("stage", "entries", "reason"), [(stage, count, reason) for stage, reason, count in counts])
    return 0


@_refusals
def _show(args) -> int:
    from oms.db.exports import record_export

    actor, purpose = _actor(args), (args.purpose or "").strip()
    if not purpose:
        raise ReviewRefused("say why you look at the buyer's data: --purpose TEXT")
    now = _now()
    with _engine().begin() as conn:
        entry = get_entry(conn, args.entry_id)
        export_id = record_export(conn, actor=actor, kind="review-payload", subject=f"review entry {entry['id']}",
                                  row_count=1, purpose=purpose, now=now, destination="terminal")
        record_action(conn, entry["id"], actor=actor, action="shown", now=now, reason=purpose,
                      detail={"export_id": export_id})
    print(f"review entry {entry['id']}: {_state(entry)}")
    facts = [("stage", entry["stage"]), ("shop", f"{entry['shop_code']} ({entry['platform']})"),
             ("order", entry["platform_order_id"] or "-"), ("parked", _when(entry["created_at"]))]
    if entry["resolved_at"]:
        facts.append(("resolution", entry["resolution"]))
    for name, value in facts:
        print(f"{name:<11}{value}")
    print("reasons:")
    for reason in entry["reasons"]:
        print(f"  - {reason}")
    print(f"payload (personal data; this showing is export {export_id}, purpose: {purpose}):")
    print(json.dumps(entry["payload"], indent=2, ensure_ascii=False))
    return 0


@_refusals
def _fix(args) -> int:
    actor = _actor(args)
    if args.assignments:
        assignments = [parse_assignment(text) for text in args.assignments]
        patch, how = (lambda payload: apply_assignments(payload, assignments)), "assignments"
    else:
        replacement = _read_payload_file(args.payload_file)
        patch, how = (lambda payload: replacement), f"payload file {args.payload_file.name}"
    with _engine().begin() as conn:
        changes = fix_payload(conn, args.entry_id, patch, actor=actor, now=_now(), how=how, note=args.note)
    print(f"review entry {args.entry_id}: " + ", ".join(f"{change.kind} {change.label}" for change in changes))
    if args.resubmit:
        return _resubmit(args)
    print(f"the entry stays open until it is resubmitted: oms review resubmit {args.entry_id}")
    return 0


@_refusals
def _resubmit(args) -> int:
    from oms.review_resubmit import resubmit
    from tasks.resources import MAPPERS

    outcome = resubmit(_engine(), args.entry_id, actor=_actor(args), now=_now(), mappers=MAPPERS)
    print(outcome.message)
    for reason in outcome.reasons:
        print(f"  - {reason}")
    return 0 if outcome.closed else STILL_OPEN


@_refusals
def _discard(args) -> int:
    with _engine().begin() as conn:
        discard(conn, args.entry_id, actor=_actor(args), reason=args.reason, now=_now())
    print(f"review entry {args.entry_id} discarded: {args.reason.strip()}")
    return 0


@_refusals
def _history(args) -> int:
    with _engine().connect() as conn:
        entry = get_entry(conn, args.entry_id)
        trail = audit_trail(conn, args.entry_id)
    print(f"review entry {entry['id']}: parked {_when(entry['created_at'])} at {entry['stage']} "
          f"({entry['shop_code']}, order {entry['platform_order_id'] or '-'}); {_state(entry)}")
    if not trail:
        print("no operator has acted on it yet")
        return 0
    _print_table(("at", "who", "action", "what"),
                 [(_when(row["at"]), row["actor"], row["action"], _what(row)) for row in trail])
    return 0


# ------------------------------------------------------------------ helpers of the commands


def _what(row: dict) -> str:
    """One audit row in words, without the values a fix wrote (personal data)."""
    detail = row["detail"] or {}
    if row["action"] == "fixed":
        fields = ", ".join(change["path"] for change in detail.get("changes", []))
        return f"{fields} ({detail.get('how', 'fix')})" + (f": {row['reason']}" if row["reason"] else "")
    if row["action"] == "shown":
        return f"purpose: {row['reason']} (export {detail.get('export_id')})"
    return row["reason"] or ""


def _state(entry: dict) -> str:
    if entry["resolved_at"] is None:
        return "open"
    by = f" by {entry['resolved_by']}" if entry.get("resolved_by") else ""
    return f"resolved{by} {_when(entry['resolved_at'])}"


def _read_payload_file(path: Path):
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as error:
        raise ReviewRefused(f"cannot read {path}: {error.strerror}") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReviewRefused(f"{path} is not JSON: {error.msg} at line {error.lineno}") from None
    if not isinstance(payload, dict):
        raise ReviewRefused(f"{path} must hold one JSON object, the whole payload")
    return payload


def _actor(args) -> str:
    actor = (args.actor or _os_user() or "").strip()
    if not actor:
        raise ReviewRefused("cannot tell who you are: give --actor NAME")
    if len(actor) > ACTOR_WIDTH:
        raise ReviewRefused(f"--actor is at most {ACTOR_WIDTH} characters")
    return actor


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry, as in some containers
        return None


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _engine():
    from oms.config import get_settings
    from oms.db.engine import get_engine

    return get_engine(get_settings().database_url)


def _print_table(headers: tuple[str, ...], rows: list[tuple]) -> None:
    from oms.cli import _print_table as print_table  # the one table format of `oms`

    print_table(headers, rows)
