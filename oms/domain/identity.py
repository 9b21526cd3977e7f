"""Which orders are the same buyer's parcel (the merge-shipment key), and which buyers are one customer.

Two orders merge into one parcel only when the shop, the buyer and the address are the
same once spelling noise is gone (full-width digits, spaces, punctuation, letter case),
so "上海市 浦东新区 张江路１８号" and "上海市浦东新区张江路18号" match. A masked receiver gets
no key at all: two masks that look alike may hide two different people, and a parcel
sent to the wrong one is worse than two parcels.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def address_fingerprint(*parts: str | None) -> str:
    """The address with the noise buyers type removed, for comparison only."""
    text = "".join(part or "" for part in parts)
    return _NOISE.sub("", unicodedata.normalize("NFKC", text)).casefold()


def merge_key(
    *,
    shop_code: str,
    buyer_ref: str | None,
    receiver_name: str | None,
    receiver_phone: str | None,
    province: str | None,
    city: str | None,
    district: str | None,
    address: str | None,
    masked: bool,
) -> str | None:
    """40 hex characters shared by orders that may ship as one parcel, or None."""
    if masked or not address:
        return None
    who = buyer_ref or address_fingerprint(receiver_name, receiver_phone)
    if not who:
        return None
    where = address_fingerprint(province, city, district, address)
    digest = hashlib.sha1("\x1f".join((shop_code, who, where)).encode("utf-8"))
    return digest.hexdigest()


# Customer resolution lives in its own module; it is re-exported here because this module
# is where the pipeline looks for every identity rule.
from oms.domain.customer_matching import (  # noqa: E402
    DEFAULT_POLICY,
    MatchingPolicy,
    customer_match_keys,
    resolve_customers,
)

__all__ = [
    "DEFAULT_POLICY", "MatchingPolicy", "address_fingerprint", "customer_match_keys", "merge_key",
    "resolve_customers",
]
