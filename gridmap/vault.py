"""Personal data encrypted at rest: the households register's names, ID numbers and phones.

The key comes from ``GRIDMAP_SECRET_KEY`` (else ``$GRIDMAP_HOME/secret.key``, which ``gridmap up``
writes once, readable by its owner only): one key or several separated by commas, each a Fernet
key (``gridmap households new-key`` prints one). The first key encrypts; every key decrypts, which
is how a key is rotated (docs: put the new key first, run ``gridmap households rekey``, then drop
the old one). Fernet (from ``cryptography``) is AES-128-CBC with HMAC-SHA256: a value changed in
the database fails to decrypt instead of reading as something else.

An ID number is also kept as a keyed hash (HMAC-SHA256 under a key derived from the first key), so
the same person is found again on the next import without decrypting every row; a rotation
recomputes those hashes (``rekey``). Nothing here touches the database.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gridmap.errors import Refusal


class VaultUnavailable(Refusal):
    """No key, or a key that cannot open what is stored: personal data cannot be read or written."""


def new_key() -> str:
    """A fresh key (32 random bytes, URL-safe base64), for ``GRIDMAP_SECRET_KEY``."""
    return Fernet.generate_key().decode("ascii")


class Vault:
    """Encrypts and decrypts personal values with the configured keys (see the module docstring)."""

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise VaultUnavailable(
                "personal data (the households register) needs a key: set GRIDMAP_SECRET_KEY "
                "(make one with `gridmap households new-key`)",
                "住户登记等个人信息需要密钥：请设置 GRIDMAP_SECRET_KEY（可用 `gridmap households new-key` 生成）")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise VaultUnavailable(
                    f"GRIDMAP_SECRET_KEY: key {position} is not a key (44 characters of URL-safe base64; "
                    "make one with `gridmap households new-key`)",
                    f"GRIDMAP_SECRET_KEY 中第 {position} 个密钥格式无效（应为 44 个 URL 安全 Base64 字符；"
                    "可用 `gridmap households new-key` 生成）") from None
        self._fernet = MultiFernet(fernets)
        self._index_keys = [_derive(k) for k in keys]

    def encrypt(self, value: str | None) -> bytes | None:
        return None if value is None else self._fernet.encrypt(value.encode("utf-8"))

    def decrypt(self, token: bytes | memoryview | None) -> str | None:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken:
            raise VaultUnavailable(
                "personal data was encrypted with a key GRIDMAP_SECRET_KEY does not hold (or was altered): "
                "add the key it was written with",
                "个人信息使用的密钥不在 GRIDMAP_SECRET_KEY 中（或数据已被改动）：请加入写入时使用的密钥") from None

    def rotate(self, token: bytes | memoryview | None) -> bytes | None:
        """The value encrypted again under the first key (what ``rekey`` stores)."""
        if token is None:
            return None
        try:
            return self._fernet.rotate(bytes(token))
        except InvalidToken:
            self.decrypt(token)  # raises the refusal that says so
            raise

    def index(self, value: str) -> str:
        """The keyed hash an ID number is found by (under the first key)."""
        return self.indexes(value)[0]

    def indexes(self, value: str) -> list[str]:
        """The keyed hashes of ``value`` under every key (rows not yet rekeyed carry an older one's)."""
        data = value.strip().upper().encode("utf-8")
        return [hmac.new(k, data, hashlib.sha256).hexdigest() for k in self._index_keys]


def _derive(key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gridmap register id index").derive(
        key.encode("ascii"))


__all__ = ["Vault", "VaultUnavailable", "new_key"]
