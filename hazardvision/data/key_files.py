"""Key files made in one step: two processes creating the same key at once end up with one of them."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from hazardvision.home import private_file, private_folder


def create_key_file(path: Path, content: bytes) -> bool:
    """Write `content` to a new file at `path` (mode 600, its folder 700) in one step; False if a file was there
    already (it is left as it is). OSError for anything else."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        private_folder(path.parent)
        descriptor = private_file(temporary, exclusive=True)
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
