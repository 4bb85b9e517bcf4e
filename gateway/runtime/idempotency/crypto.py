"""Stored responses hold card numbers and PINs: they are sealed with AES-GCM before storing.

Keys have ids. The first key seals; every listed key opens, so a key can be rotated by putting
the new one first and keeping the old one until its records have expired (the retention).
The record's storage key is bound into each ciphertext as associated data, so a sealed body
cannot be moved to another key's record. Request fingerprints (to notice a retried key with a
changed body) are HMACs, not plain hashes: a card number has too few digits to hide in SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


class SealError(Exception):
    """A record cannot be opened: unknown key id or a body that is not what was sealed."""


def decode_key(text: str) -> bytes:
    """A key as written in the environment: base64 of 16, 24 or 32 random bytes."""
    try:
        raw = base64.b64decode(text.strip() + "=" * (-len(text.strip()) % 4), altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("an encryption key must be base64 (e.g. `openssl rand -base64 32`)") from None
    if len(raw) not in (16, 24, 32):
        raise ValueError(f"an encryption key must be 16, 24 or 32 bytes once decoded, not {len(raw)}")
    return raw


def load_or_create_key_file(path: Path) -> bytes:
    """The embedded default's key: generated once (0600) beside the SQLite file, then reused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole to a temporary file, then linked into place: several workers starting
        # at once all end up reading the one key that won, never a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(os.urandom(32)).decode() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return decode_key(path.read_text())


class Sealer:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}
        self._macs = {key_id: hmac.new(key, b"gateway idempotency fingerprint", hashlib.sha256).digest() for key_id, key in keys}
        self.current = keys[0][0]

    def seal(self, storage_key: str, plaintext: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE)
        return self.current, nonce + self._keys[self.current].encrypt(nonce, plaintext, storage_key.encode())

    def open(self, key_id: str, storage_key: str, sealed: bytes) -> bytes:
        aead = self._keys.get(key_id)
        if aead is None:
            raise SealError(f"the record was sealed with key `{key_id}`, which is no longer configured")
        try:
            return aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], storage_key.encode())
        except InvalidTag:
            raise SealError("the record does not decrypt: it was altered, or sealed under another key") from None

    def fingerprint(self, data: bytes, key_id: str | None = None) -> str:
        mac = self._macs.get(key_id or self.current)
        if mac is None:
            return ""
        return hmac.new(mac, data, hashlib.sha256).hexdigest()[:32]
