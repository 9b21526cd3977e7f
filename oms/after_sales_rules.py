"""Reading config/after_sales.yaml: the lifecycle of refund, return and exchange requests.

The lifecycle itself is pure domain (`oms.domain.refunds.Lifecycle.from_mapping`); this
module only reads the file. Every mistake in it is a ValueError naming the file and the
key, so a typo stops a run instead of approving money by a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import yaml

from oms.config import get_settings
from oms.domain.refunds import Lifecycle


def load_lifecycle(path: Path | str | None = None) -> Lifecycle:
    """The lifecycle of the file (default: Settings.after_sales_lifecycle_path), parsed once
    per version of the file so an edit is picked up by the next run."""
    path = Path(path) if path is not None else get_settings().after_sales_lifecycle_path
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None
    return _parsed(path.resolve() if version else path, version)


@lru_cache(maxsize=8)
def _parsed(path: Path, version: tuple[int, int] | None) -> Lifecycle:
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{source}: cannot read the after-sales lifecycle ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(document, Mapping):
        raise ValueError(f"{source}: must be a mapping with nodes")  # noqa: TRY004
    return Lifecycle.from_mapping(document, source=source)
