"""`oms holds` and `oms tags`: orders held for a risk review, their release, and an
order's tags.

    oms holds list [--shop SHOP]                       open holds, oldest first
    oms holds release ORDER_ID --reason TEXT [--actor NAME] [--rule RULE]
    oms tags show ORDER_ID                             tags, picking priority, hold history

A release needs a reason, kept with the hold for the audit; the next fulfil-orders run
allocates the order. ORDER_ID is the internal order id the list and the run's
`risk-holds` artifact show.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Sequence
from datetime import datetime, timezone


def add_commands(commands) -> None:
    holds = commands.add_parser("holds", help="orders held for a risk review: list, release").add_subparsers()
    listing = holds.add_parser("list", help="open holds with the rule and why, oldest first")
    listing.add_argument("--shop", default=None, help="only this shop's holds")
    listing.set_defaults(run=_list)
    release = holds.add_parser("release", help="let a held order go; the next fulfil-orders run allocates it")
    release.add_argument("order_id", type=int)
    release.add_argument("--reason", required=True, help="what was checked (kept with the hold for the audit)")
    release.add_argument("--actor", default=None, help="who releases it (default: the login name)")
    release.add_argument("--rule", default=None, help="release only this rule's hold (default: all of the order's)")
    release.set_defaults(run=_release)

    tags = commands.add_parser("tags", help="order tags and picking priority").add_subparsers()
    show = tags.add_parser("show", help="an order's tags, picking priority and holds")
    show.add_argument("order_id", type=int)
    show.set_defaults(run=_show)


def _engine():
    from oms.config import get_settings
    from oms.db.engine import get_engine

    return get_engine(get_settings().database_url)


def _list(args) -> int:
    from oms.db.tagging import open_holds

    with _engine().connect() as conn:
        found = open_holds(conn, args.shop)
    if not found:
        print("no order is held for review" + (f" in {args.shop}" if args.shop else ""))
        return 0
    _print_table(("order id", "shop", "platform order", "status", "held at", "rule", "detail"),
                 [(h["order_id"], h["shop_code"], h["platform_order_id"], h["status"],
                   h["held_at"].isoformat(timespec="minutes"), h["rule"], h["detail"]) for h in found])
    return 0


def _release(args) -> int:
    from oms.db.tagging import release_holds

    if not args.reason.strip():
        print("--reason must say what was checked", file=sys.stderr)
        return 2
    actor = args.actor or _login_name()
    with _engine().begin() as conn:
        released = release_holds(conn, args.order_id, actor=actor, reason=args.reason,
                                 now=datetime.now(timezone.utc), rule=args.rule)
    if not released:
        which = f" under rule {args.rule}" if args.rule else ""
        print(f"order {args.order_id} has no open hold{which}", file=sys.stderr)
        return 1
    print(f"order {args.order_id}: released {', '.join(released)} (by {actor}); "
          "the next fulfil-orders run allocates it")
    return 0


def _show(args) -> int:
    from oms.db.tagging import holds_of, tags_of
    from oms.domain.tagging import PRIORITY_TAG_PREFIX

    with _engine().connect() as conn:
        tags = tags_of(conn, args.order_id)
        holds = holds_of(conn, args.order_id)
    if not tags and not holds:
        print(f"order {args.order_id} is not tagged yet", file=sys.stderr)
        return 1
    priority = [tag.removeprefix(PRIORITY_TAG_PREFIX) for tag in tags if tag.startswith(PRIORITY_TAG_PREFIX)]
    plain = [tag for tag in tags if not tag.startswith(PRIORITY_TAG_PREFIX)]
    print(f"order {args.order_id}: picking priority {', '.join(priority) or '-'} (lower is picked first)")
    print(f"  tags: {', '.join(plain) or '-'}")
    for hold in holds:
        state = ("open" if hold["released_at"] is None else
                 f"released {hold['released_at'].isoformat(timespec='minutes')} by {hold['released_by']}: "
                 f"{hold['release_reason']}")
        print(f"  hold {hold['rule']} ({state}): {hold['detail']}")
    return 0


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers; the release is still recorded
        return "operator"


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(header), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    print("  ".join(header.ljust(width) for header, width in zip(headers, widths)).rstrip())
    for row in cells:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
