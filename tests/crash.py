"""A worker that dies, for real, between a platform's refresh answer and storing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CRASHED = 137
# The worker's store is replaced by a hard exit: no finally, no lease release, no flush.
_DIE_WHEN_STORING = ("import os, sys\n"
                     "import tasks.tokens as keeper\n"
                     "keeper.save_tokens = lambda *args, **kwargs: os._exit(137)\n"
                     "keeper.refresh_shop(sys.argv[1], force=True)\n")


def refresh_and_die_before_storing(shop_code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run one forced refresh of the shop in a fresh process (`env` on top of ours) that
    exits the moment it would store the answer. Its lease lasts two minutes, so only
    noticing the dead holder lets the next refresh go on at once."""
    return subprocess.run(
        [sys.executable, "-c", _DIE_WHEN_STORING, shop_code],
        env={**os.environ, "OMS_TOKEN_REFRESH_LEASE_SECONDS": "120", **env},
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
