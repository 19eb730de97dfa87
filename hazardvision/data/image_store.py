"""Content-addressed image store: each photo lives once, under the SHA-256 of its bytes."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from hazardvision.home import private_folder, process_running, write_private_file

EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


class ImageStore:
    """Files at `root/<first two hex>/<sha256><ext>`, written atomically (temp file, fsync, rename); files mode
    600, folders 700."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / ".incoming"
        private_folder(self.incoming)

    def path(self, sha256: str, image_format: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}{EXTENSIONS.get(image_format, '.img')}"

    def put(self, sha256: str, image_format: str, data: bytes) -> Path:
        """Store the bytes unless they are already there; return the file's path."""
        target = self.path(sha256, image_format)
        if target.exists():
            return target
        private_folder(target.parent)
        # One name per write: two threads storing the same photo at once (a retried upload) must not share a file.
        temporary = self.incoming / f"{sha256}.{secrets.token_hex(4)}.{os.getpid()}"
        write_private_file(temporary, data, sync=True)
        os.replace(temporary, target)
        return target

    def remove(self, sha256: str) -> None:
        """Delete every file stored under `sha256` (whatever its extension)."""
        for path in (self.root / sha256[:2]).glob(f"{sha256}.*"):
            path.unlink(missing_ok=True)

    def files(self) -> Iterator[tuple[str, Path]]:
        """(sha256, path) of every stored file."""
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and len(folder.name) == 2:
                for path in sorted(folder.iterdir()):
                    yield path.name.split(".", 1)[0], path

    def clear_incoming(self) -> None:
        """Remove half-written temporary files left by writers that are no longer running."""
        for path in self.incoming.iterdir():
            pid = path.suffix.lstrip(".")
            if not pid.isdigit() or not process_running(int(pid)):
                path.unlink(missing_ok=True)
