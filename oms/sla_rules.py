"""Reading config/sla.yaml: the ship-by deadline rules of the `sla-watch` flow.

The rules themselves are pure domain (`oms.domain.sla.SlaRules.from_mapping`); this module
only reads the file. Every mistake in it is a ValueError naming the file and the key, so a
typo stops a run instead of quietly watching by defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import yaml

from oms.config import get_settings
from oms.domain.sla import SlaRules


def load_sla_rules(path: Path | None = None) -> SlaRules:
    """The rules of the SLA file (default: Settings.sla_rules_path).

    Parsed once per version of the file (path, size and modification time), so an edit is
    picked up by the next run without re-reading the file for every batch.
    """
    path = Path(path) if path is not None else get_settings().sla_rules_path
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None  # let the read below say what is wrong
    return _parsed(path.resolve() if version else path, version)


@lru_cache(maxsize=8)
def _parsed(path: Path, version: tuple[int, int] | None) -> SlaRules:
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{source}: cannot read the SLA rules ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{source}: not valid YAML: {error}") from None
    document = {} if document is None else document
    if not isinstance(document, Mapping):
        # a mistake in the file, like every other: ValueError, not TypeError
        raise ValueError(f"{source}: must be a mapping of SLA settings")  # noqa: TRY004
    return SlaRules.from_mapping(document, source=source)
