"""Key files made in one step: two processes creating the same key at once end up with one of them."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def create_key_file(path: Path, content: bytes) -> bool:
    """Write `content` to a new file at `path` (mode 600, its folder 700) in one step; False if a file was there
    already (it is left as it is). OSError for anything else."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, content)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.link(temporary, path)  # fails if a key exists: never replaces one
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True
