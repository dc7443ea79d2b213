"""PII at rest: AES-256-GCM under a rotatable key ring, plus keyed blind indexes.

Ciphertext format (text, so it fits the existing ``*_encrypted`` columns)::

    v1.<key id>.<base64url(nonce(12) || ciphertext+tag)>

The key id travels with the value, so rows written under an old key still decrypt after
a new key is put first in PII_KEYS; ``msgworker pii rotate`` then re-encrypts them.

Lookups never decrypt: a blind index is HMAC-SHA256(PII_INDEX_KEY, kind || value), so
equal values match without the database ever seeing the plaintext. The index key is not
part of the rotating ring (rotating it would mean rebuilding every index).

The associated data binds a ciphertext to its kind ("phone", "email", ...), so a phone
ciphertext copied into an email column does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from worker.settings import Settings, get_settings

__all__ = ["KeyRing", "PiiError", "blind_index", "decrypt", "encrypt", "key_id_of", "keyring"]

_VERSION = "v1"


class PiiError(ValueError):
    """Raised for malformed keys or ciphertext, or a ciphertext under an unknown key."""


def _b64decode(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode())
    except (binascii.Error, ValueError) as exc:
        raise PiiError("not valid base64") from exc


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Encryption keys by id (first = current) and the blind-index key."""

    keys: tuple[tuple[str, bytes], ...]
    index_key: bytes
    # One AESGCM per key id, made on first use: making one costs twice what a phone
    # number's decryption does, and a report decrypts hundreds of thousands.
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, pii_keys: str, index_key: str) -> KeyRing:
        keys: list[tuple[str, bytes]] = []
        for part in pii_keys.split(","):
            part = part.strip()
            if not part:
                continue
            kid, sep, material = part.partition(":")
            if not sep or not kid or "." in kid:
                raise PiiError("PII_KEYS entries look like 'keyid:base64key' (no '.' in keyid)")
            raw = _b64decode(material)
            if len(raw) != 32:
                raise PiiError(f"PII key {kid!r} must be 32 bytes (AES-256), got {len(raw)}")
            keys.append((kid, raw))
        if not keys:
            raise PiiError("PII_KEYS holds no key")
        if len({k for k, _ in keys}) != len(keys):
            raise PiiError("PII_KEYS repeats a key id")
        idx = _b64decode(index_key)
        if len(idx) < 32:
            raise PiiError("PII_INDEX_KEY must be at least 32 bytes")
        return cls(keys=tuple(keys), index_key=idx)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        return cls.parse(settings.secret("PII_KEYS"), settings.secret("PII_INDEX_KEY"))

    @property
    def current_key_id(self) -> str:
        return self.keys[0][0]

    def _key(self, kid: str) -> bytes:
        for k, material in self.keys:
            if k == kid:
                return material
        raise PiiError(f"ciphertext is under key {kid!r}, which is not in PII_KEYS")

    def _cipher(self, kid: str) -> AESGCM:
        cipher = self._ciphers.get(kid)
        if cipher is None:
            cipher = self._ciphers[kid] = AESGCM(self._key(kid))
        return cipher

    def encrypt(self, plaintext: str, *, kind: str) -> str:
        kid, key = self.keys[0]
        nonce = os.urandom(12)
        ct = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), kind.encode())
        return f"{_VERSION}.{kid}.{base64.urlsafe_b64encode(nonce + ct).decode().rstrip('=')}"

    def decrypt(self, token: str, *, kind: str) -> str:
        version, kid, blob = _split(token)
        if version != _VERSION:
            raise PiiError(f"unknown ciphertext version {version!r}")
        raw = _b64decode(blob)
        if len(raw) < 12 + 16:
            raise PiiError("ciphertext too short")
        try:
            pt = self._cipher(kid).decrypt(raw[:12], raw[12:], kind.encode())
        except InvalidTag as exc:
            raise PiiError("ciphertext failed authentication (wrong key or kind)") from exc
        return pt.decode("utf-8")

    def blind_index(self, value: str, *, kind: str) -> bytes:
        return hmac.new(self.index_key, kind.encode() + b"\x00" + value.encode(), hashlib.sha256).digest()


def _split(token: str) -> tuple[str, str, str]:
    parts = token.split(".", 2)
    if len(parts) != 3:
        raise PiiError("not a msgworker ciphertext")
    return parts[0], parts[1], parts[2]


def key_id_of(token: str) -> str:
    """The key id a ciphertext was written under (for rotation progress)."""
    return _split(token)[1]


_cache: dict[tuple[str, str], KeyRing] = {}


def keyring(settings: Settings | None = None) -> KeyRing:
    """The key ring for the given (or process) settings, parsed once."""
    s = settings or get_settings()
    cache_key = (s.secret("PII_KEYS"), s.secret("PII_INDEX_KEY"))
    ring = _cache.get(cache_key)
    if ring is None:
        ring = KeyRing.parse(*cache_key)
        _cache[cache_key] = ring
    return ring


def encrypt(plaintext: str, *, kind: str) -> str:
    return keyring().encrypt(plaintext, kind=kind)


def decrypt(token: str, *, kind: str) -> str:
    return keyring().decrypt(token, kind=kind)


def blind_index(value: str, *, kind: str) -> bytes:
    return keyring().blind_index(value, kind=kind)
