"""Reading config/carriers.yaml: carriers' terms and rate cards, and what each platform accepts.

The rules are pure domain (`oms.domain.shipping.CarrierRules`); this module reads the file
and, when given the connectors' carrier code tables, settles each platform's accepted
carriers against them. Every mistake is a ValueError naming the file and the key, so a
typo, or a carrier a platform could never be told about, stops a run instead of shipping
parcels whose tracking number no platform will take.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import lru_cache
from pathlib import Path

import yaml

from oms.config import get_settings
from oms.domain.shipping import CarrierRules


def load_carrier_rules(path: Path | None = None, *,
                       platform_codes: Mapping[str, Collection[str]] | None = None,
                       cainiao_codes: Collection[str] = ()) -> CarrierRules:
    """The rules of the carrier file (default: Settings.carrier_rules_path).

    `platform_codes` (platform -> the carrier codes its connector can name) and
    `cainiao_codes` come from the connectors, which this layer does not import; without
    them the file is read as written, unchecked against the connectors. Parsed once per
    version of the file (path, size and modification time), so every batch may ask and an
    edit is still picked up by the next one.
    """
    path = Path(path) if path is not None else get_settings().carrier_rules_path
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None  # let the read below say what is wrong
    rules = _parsed(path.resolve() if version else path, version)
    if platform_codes is None:
        return rules
    return rules.checked_against(platform_codes, cainiao_codes, source=str(path))


@lru_cache(maxsize=8)
def _parsed(path: Path, version: tuple[int, int] | None) -> CarrierRules:
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{source}: cannot read the carrier rules ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{source}: not valid YAML: {error}") from None
    return CarrierRules.from_mapping({} if document is None else document, source=source)
