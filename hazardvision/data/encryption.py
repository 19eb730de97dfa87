"""`SecretBox`: secrets the service must read back (webhook secrets) kept encrypted at rest.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under a key file in the home,
`HOME/keys/webhook.key` (mode 600, folder 700), made on first use in one step: written beside its
place, then hard-linked there, so two processes starting at once end up with the same key. A stored
value is `fernet:` and the token; a value without that prefix is a secret stored in clear by an
older hazardvision, read as it is until `seal_clear` encrypts it.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from hazardvision.data.key_files import create_key_file
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
        try:
            created = create_key_file(self.key_path, key + b"\n")
        except OSError as error:
            raise BankError(f"cannot create the webhook secret key {self.key_path}: {error.strerror}") from error
        return key if created else self._read()

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
