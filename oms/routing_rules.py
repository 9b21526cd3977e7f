"""Reading config/routing.yaml: the routing rules and each warehouse's capacity and rates.

The rules themselves are pure domain (`oms.domain.routing.RoutingRules.from_mapping`);
this module only reads the file, the `warehouses` section of it, and joins those
per-warehouse settings to the warehouse rows of the database. Every mistake in the file
is a ValueError naming the file and the key, so a typo stops a run instead of quietly
routing by defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from oms.config import get_settings
from oms.domain.normalize import normalize_province
from oms.domain.routing import RateCard, RoutingRules, WarehouseSite


@dataclass(frozen=True)
class WarehouseSettings:
    daily_capacity: int | None = None  # parcels per day; None = unlimited
    rate_card: RateCard | None = None


def load_routing_rules(path: Path | None = None) -> tuple[RoutingRules, dict[str, WarehouseSettings]]:
    """The rules and the per-warehouse settings (by warehouse code) of the routing file.

    Parsed once per version of the file (path, size and modification time): allocation
    asks every batch, and an edit is still picked up by the next batch.
    """
    path = Path(path) if path is not None else get_settings().routing_rules_path
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None  # let the read below say what is wrong
    return _parsed(path.resolve() if version else path, version)


@lru_cache(maxsize=8)
def _parsed(path: Path, version: tuple[int, int] | None) -> tuple[RoutingRules, dict[str, WarehouseSettings]]:
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{source}: cannot read the routing rules ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{source}: not valid YAML: {error}") from None
    document = {} if document is None else document
    if not isinstance(document, Mapping):
        raise ValueError(f"{source}: must be a mapping of routing settings")
    rules = RoutingRules.from_mapping(document, source=source)
    return rules, _warehouse_settings(document.get("warehouses"), source)


def _warehouse_settings(section: object, source: str) -> dict[str, WarehouseSettings]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ValueError(f"{source}: warehouses: must map warehouse codes to their settings")
    found = {}
    for code, entry in section.items():
        key = f"warehouses.{code}"
        entry = {} if entry is None else entry
        if not isinstance(entry, Mapping):
            raise ValueError(f"{source}: {key}: must be a mapping (daily_capacity, rate_card)")
        for name in entry:
            if name not in ("daily_capacity", "rate_card"):
                raise ValueError(f"{source}: {key}.{name}: is not a warehouse setting "
                                 "(allowed: daily_capacity, rate_card)")
        capacity = entry.get("daily_capacity")
        if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int)
                                     or capacity < 0):
            raise ValueError(f"{source}: {key}.daily_capacity: must be a whole number of parcels "
                             f"of at least 0, or left out for no limit; got {capacity!r}")
        card = entry.get("rate_card")
        rate_card = (None if card is None
                     else RateCard.from_mapping(card, source=source, key=f"{key}.rate_card"))
        found[str(code)] = WarehouseSettings(daily_capacity=capacity, rate_card=rate_card)
    return found


def sites_from(rows: Iterable[Mapping], settings: Mapping[str, WarehouseSettings],
               booked_today: Mapping[str, int] | None = None) -> list[WarehouseSite]:
    """Warehouse rows of the database (code, province, priority) with their file settings
    and the parcels each already booked today; a warehouse the file does not name has no
    capacity limit and no rate card."""
    booked_today = booked_today or {}
    sites = []
    for row in rows:
        code = row["code"]
        own = settings.get(code, WarehouseSettings())
        # Rows are typed in by people; the routing tables know canonical names only.
        province = normalize_province(row.get("province")).name
        sites.append(WarehouseSite(
            code=code, province=province, priority=row["priority"],
            daily_capacity=own.daily_capacity, booked_today=booked_today.get(code, 0),
            rate_card=own.rate_card,
        ))
    return sites
