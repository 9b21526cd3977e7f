"""`oms customers`: master customers across channels: link stored orders, list one's orders.

`link` gives every order stored without a master customer id one (orders stored before
customer linking existed, or by a run that stopped half-way); ingest links new orders
itself. `orders` lists a customer's orders by id, status and amount, no receiver data.
"""

from __future__ import annotations


def add_commands(commands) -> None:
    customers = commands.add_parser("customers", help="master customers: link stored orders, a customer's orders"
                                    ).add_subparsers()
    link = customers.add_parser("link", help="give every order without a master customer id one")
    link.add_argument("--batch-size", type=int, default=5000)
    link.set_defaults(run=_link)
    listing = customers.add_parser("orders", help="every order of one master customer, across shops")
    listing.add_argument("customer_id", type=int, metavar="ID")
    listing.set_defaults(run=_orders)


def _link(args) -> int:
    from tasks.customers import link_unlinked_orders

    result = link_unlinked_orders(batch_size=args.batch_size)
    print(f"{result.orders_linked} orders linked, {result.customers_created} new customers, "
          f"{result.customers_merged} merged")
    return 0


def _orders(args) -> int:
    from oms.cli import _print_table
    from oms.db.customers import orders_of_customer
    from tasks.resources import engine

    with engine().connect() as conn:
        found = orders_of_customer(conn, args.customer_id)
    if not found:
        print(f"customer {args.customer_id} has no orders")
        return 2
    _print_table(("order", "platform", "shop", "platform order", "status", "amount", "placed"),
                 [(o["id"], o["platform"], o["shop_code"], o["platform_order_id"], o["status"],
                   f"{o['total_amount']} {o['currency']}", o["created_at"].isoformat(timespec="minutes"))
                  for o in found])
    return 0
