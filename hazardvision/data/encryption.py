"""`SecretBox`: secrets the service must read back (webhook secrets) kept encrypted at rest.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under a key file in the home,
`HOME/keys/webhook.key` (mode 600, folder 700), made on first use in one step: written beside its
place, then hard-linked there, so two processes starting at once end up with the same key. A stored
value is `fernet:` and the token; a value without that prefix is a secret stored in clear by an
older hazardvision, read as it is until `seal_clear` encrypts it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from hazardvision.errors import BankError

PREFIX = "fernet:"


class SecretBox:
    """Encrypts and decrypts short secrets with the key in `key_path` (created when missing)."""

    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path
        self._fernet: Fernet | None = None

    @staticmethod
    def sealed(stored: str) -> bool:
        """Whether a stored value is encrypted (else it is a secret an older version stored in clear)."""
        return stored.startswith(PREFIX)

    def seal(self, secret: str) -> str:
        """The value to store for `secret`."""
        return PREFIX + self._key().encrypt(secret.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        """The secret of a stored value (one stored in clear as it is); `BankError` when the key does not fit."""
        if not self.sealed(stored):
            return stored
        try:
            return self._key().decrypt(stored.removeprefix(PREFIX).encode("ascii")).decode()
        except (InvalidToken, ValueError) as error:
            raise BankError(f"a stored webhook secret cannot be decrypted with {self.key_path}: the key file was "
                            "replaced or lost; restore it from its backup, or configure the camera again") from error

    def _key(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._read() if self.key_path.exists() else self._create())
        return self._fernet

    def _create(self) -> bytes:
        key = Fernet.generate_key()
        temporary = self.key_path.with_name(f".{self.key_path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            self.key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(descriptor, key + b"\n")
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.link(temporary, self.key_path)  # fails if a key exists: never replaces one
        except FileExistsError:
            return self._read()
        except OSError as error:
            raise BankError(f"cannot create the webhook secret key {self.key_path}: {error.strerror}") from error
        finally:
            temporary.unlink(missing_ok=True)
        return key

    def _read(self) -> bytes:
        try:
            key = self.key_path.read_bytes().strip()
        except OSError as error:
            raise BankError(f"cannot read the webhook secret key {self.key_path}: {error.strerror}") from error
        try:
            Fernet(key)
        except ValueError as error:
            raise BankError(f"the webhook secret key {self.key_path} is not a Fernet key; restore it from its "
                            "backup") from error
        return key
