"""Where shop tokens live: Prefect Secret blocks on a Prefect server, else sealed columns.

`token_store()` picks the store from settings (`OMS_TOKEN_STORE`: auto, prefect,
database); "auto" uses Secret blocks whenever a Prefect API URL is configured, so an
operator's server keeps the tokens where the UI masks them, and the embedded demo keeps
them sealed in its own database. Either way `shop_tokens` holds the expiry times and
the refresh lease; a record says which store holds its tokens, so a shop saved under
one store is still read after the configuration moved to the other (and moves on its
next save).

`RefreshJournal` keeps each refresh answer sealed on local disk from the moment it
arrives until the store has committed it: a single-use refresh token that the platform
has already spent on our behalf is never only in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime
from pathlib import Path

from prefect.blocks.system import Secret
from prefect.settings import get_current_settings
from sqlalchemy import Connection

from connectors.base import ShopAccess
from oms.config import get_settings
from oms.db.engine import get_engine
from oms.db.shops import get_shop, shop_credentials
from oms.db.tokens import save_token_record, token_record
from oms.domain.tokens import ShopTokens
from oms.sealing import seal, unseal

SECRET_BLOCK_PREFIX = "oms-shop-tokens-"


def configured_store_kind() -> str:
    wanted = get_settings().token_store
    if wanted != "auto":
        return wanted
    return "prefect" if get_current_settings().api.url else "database"


def secret_block_name(shop_code: str) -> str:
    """A block name Prefect accepts (lowercase, digits, dashes) that stays unique per shop."""
    slug = re.sub(r"[^a-z0-9]+", "-", shop_code.lower()).strip("-")[:40]
    digest = hashlib.sha256(shop_code.encode()).hexdigest()[:8]
    return f"{SECRET_BLOCK_PREFIX}{slug}-{digest}"


def shop_access(shop_code: str) -> ShopAccess:
    """How to reach the shop: identifiers, opened app secrets and its current tokens."""
    with get_engine(get_settings().database_url).connect() as conn:
        shop = get_shop(conn, shop_code)
        tokens = load_tokens(conn, shop_code)
    credentials = shop_credentials(shop)
    if tokens is not None:
        credentials.update(tokens.as_credentials())
    return ShopAccess(shop["code"], shop["platform"], shop["base_url"], credentials)


def load_tokens(conn: Connection, shop_code: str) -> ShopTokens | None:
    """The shop's tokens from whichever store its record names; None if it has none."""
    record = token_record(conn, shop_code)
    if record is None:
        return None
    if record.store == "prefect":
        stored = Secret.load(secret_block_name(shop_code), _sync=True).get()
        return ShopTokens.from_json(json.loads(stored) if isinstance(stored, str) else stored)
    return ShopTokens.from_json(unseal(record.sealed)) if record.sealed else ShopTokens()


def save_tokens(conn: Connection, shop_code: str, tokens: ShopTokens, now: datetime, *,
                refreshed: bool = False) -> None:
    """Store the tokens in the configured store, then their metadata in `shop_tokens`.

    With Prefect, the Secret block is written first: if the server refuses, nothing
    claims tokens it does not hold, and the journal still has them.
    """
    kind = configured_store_kind()
    sealed = None
    if kind == "prefect":
        Secret(value=json.dumps(tokens.to_json())).save(
            secret_block_name(shop_code), overwrite=True, _sync=True)
    else:
        sealed = seal(tokens.to_json())
    save_token_record(conn, shop_code, tokens, store=kind, sealed=sealed, now=now,
                      refreshed=refreshed)


class RefreshJournal:
    """Sealed refresh answers on local disk, one file per shop, written with fsync."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder or get_settings().token_journal_dir)

    def write(self, shop_code: str, tokens: ShopTokens) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self._path(shop_code)
        draft = final.with_suffix(".draft")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(seal(tokens.to_json()))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(draft, final)  # atomic: a reader sees the old entry or the new, whole
        self._sync_folder()

    def pending(self, shop_code: str) -> ShopTokens | None:
        path = self._path(shop_code)
        if not path.exists():
            return None
        return ShopTokens.from_json(unseal(path.read_text()))

    def clear(self, shop_code: str) -> None:
        self._path(shop_code).unlink(missing_ok=True)
        self._sync_folder()

    def _path(self, shop_code: str) -> Path:
        return self.folder / f"{secret_block_name(shop_code)}.sealed"

    def _sync_folder(self) -> None:
        descriptor = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
