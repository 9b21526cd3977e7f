"""Reading config/tagging.yaml: the order tags, picking priorities and risk holds.

The rules are pure domain (`oms.domain.tagging.TaggingRules.from_mapping`); this module
only finds and reads the file. Every mistake in it is a ValueError naming the file and
the key, so a typo stops the run instead of letting suspicious orders through.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from oms.config import get_settings
from oms.domain.tagging import TaggingRules


def load_tagging_rules(path: Path | None = None) -> TaggingRules:
    """The rules of the tagging file, parsed once per version of the file (its path, size
    and modification time), so an edit is picked up by the next run without a restart."""
    path = Path(path) if path is not None else get_settings().tagging_rules_path
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None  # the read below says what is wrong
    return _parsed(path.resolve() if version else path, version)


@lru_cache(maxsize=8)
def _parsed(path: Path, version: tuple[int, int] | None) -> TaggingRules:
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{source}: cannot read the tagging rules ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{source}: not valid YAML: {error}") from None
    return TaggingRules.from_mapping(document, source=source)
