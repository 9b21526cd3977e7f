"""Sealing secrets at rest: Fernet (AES-128-CBC with HMAC-SHA256) under one key from settings.

Tokens and app secrets that live in the database, and refresh answers journaled on local
disk, are sealed with this key. The key comes from `OMS_TOKEN_KEY`; without it, a key file
(`OMS_TOKEN_KEY_FILE`, `var/token.key` by default) is created on first use, readable by
its owner only, so the demo works on a fresh machine while production sets the key from
its own secret manager. A sealed value opened with the wrong key is an error, never
silently empty.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from oms.config import get_settings


class SealBroken(Exception):
    """A sealed value that this key cannot open: wrong key, or tampered data."""


def seal(value: Any) -> str:
    """JSON-encode and encrypt; the result is ASCII, safe for a TEXT column or a file."""
    return _fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode("ascii")


def unseal(sealed: str) -> Any:
    try:
        return json.loads(_fernet().decrypt(sealed.encode("ascii")))
    except InvalidToken:
        raise SealBroken("sealed value cannot be opened with this key (OMS_TOKEN_KEY changed, "
                         "or the data was altered)") from None


def forget_key() -> None:
    """Drop the cached key, after settings changed (tests)."""
    _fernet_for.cache_clear()


def _fernet() -> Fernet:
    settings = get_settings()
    return _fernet_for(settings.token_key.get_secret_value(), str(settings.token_key_file))


@lru_cache(maxsize=4)
def _fernet_for(key: str, key_file: str) -> Fernet:
    return Fernet(key.encode() if key else _key_from_file(Path(key_file)))


def _key_from_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key
