"""`Home`: the one place that knows what lives where in a hazardvision home folder.

    HOME/
      bank.sqlite3        the database (unless HAZARDVISION_DATABASE_URL names a server)
      images/             the bank's photos, by SHA-256
      scans/              photos the service scanned, by the SHA-256 of the bytes kept (their GPS position
                          removed); in the bank only once reviewed
      frames/             camera frames that raised an alert, by SHA-256 (the alerts' snapshots)
      audit/              the audit log, its anchor and key
      keys/webhook.key    the key that encrypts webhook secrets in the database (mode 600)
      similar/<model>/    similar-case indexes, one per embedding model
      thumbnails/         thumbnails of similar cases
      snapshots/<id>/     frozen training datasets
      runs/<pack>-<key>/  training runs
      models/             the user's own model packs, layered over the bundled ones

The home is private to the service's user (mode 700), and so is what the service and the bank write
in it (the database, photo stores, keys, thumbnails, indexes, locks, videos): folders mode 700, files
mode 600, set explicitly at creation whatever the umask (`private_folder`, `private_file`). Training
runs, snapshots and model packs keep the umask's modes, behind the home's. What was written before homes were
private (or by hand) keeps its mode: `Home.exposed()` finds what group or others may read, `make_private()`
(`bank verify --tighten`) takes that away.

Writers write beside the final place and rename (`.incoming/<sha256>.<8 hex>.<pid>` in a photo store,
`.<name>.<pid>` elsewhere), so a writer killed mid-write leaves a temporary file tagged with its
process id: `Home.leftovers()` finds those whose process is gone.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_TAGGED = re.compile(r"^\..+\.(?P<pid>[0-9]+)(\.[0-9a-f]{8})?$")
"""`.<name>.<pid>`, or `.<name>.<pid>.<8 hex>` (the audit key's): a temporary file of the process `pid`."""


FOLDER_MODE = 0o700
FILE_MODE = 0o600
"""Modes of the folders and files a home holds: its photos, database and keys are no one else's to read."""


def private_folder(path: Path) -> Path:
    """Create `path` and any missing parent, each mode 700 whatever the umask; return `path`.

    Folders that exist already keep their mode (an operator may have chosen another)."""
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # another process made it meanwhile: its mode is that process's business
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: Path, *, exclusive: bool = False) -> int:
    """Open `path` for writing, created mode 600 whatever the umask (truncated if it exists, refused if
    `exclusive`); return the descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    descriptor = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
    except OSError:
        os.close(descriptor)
        raise
    return descriptor


def private_opener(path: str, flags: int) -> int:
    """An `opener` for `open()`: a file it creates is mode 600 whatever the umask."""
    descriptor = os.open(path, flags, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)
    return descriptor


def write_private_file(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Write `data` to `path` (mode 600), fsync'ed if `sync`."""
    with os.fdopen(private_file(path), "wb") as handle:
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


def default_home_folder() -> Path:
    """`HAZARDVISION_HOME`, else `~/.local/share/hazardvision`."""
    override = os.environ.get("HAZARDVISION_HOME")
    return Path(override) if override else Path.home() / ".local" / "share" / "hazardvision"


@dataclass(frozen=True)
class Home:
    """The paths of one home folder; nothing is created until a caller writes there."""

    root: Path

    @classmethod
    def at(cls, folder: Path | None = None) -> Home:
        """The home at `folder`, else the default one (see `default_home_folder`)."""
        return cls((folder or default_home_folder()).resolve())

    @property
    def database(self) -> Path:
        return self.root / "bank.sqlite3"

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{self.database}"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def scans(self) -> Path:
        return self.root / "scans"

    @property
    def frames(self) -> Path:
        return self.root / "frames"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def webhook_key(self) -> Path:
        return self.keys / "webhook.key"

    @property
    def similar(self) -> Path:
        return self.root / "similar"

    def similar_index(self, model_key: str) -> Path:
        return self.similar / model_key

    @property
    def thumbnails(self) -> Path:
        return self.root / "thumbnails"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def videos(self) -> Path:
        """Uploaded videos, one folder per job (its video and its events' best frames); `.incoming` while they
        arrive."""
        return self.root / "videos"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def writer_lock(self) -> Path:
        """flock of the one process adding cases at a time."""
        return self.root / ".writer.lock"

    @property
    def schema_lock(self) -> Path:
        """flock held while a process migrates the schema."""
        return self.root / ".schema.lock"

    @property
    def photo_stores(self) -> tuple[Path, ...]:
        """The content-addressed photo stores, each with its `.incoming/` folder of temporary files."""
        return self.images, self.scans, self.frames

    @property
    def private_parts(self) -> tuple[Path, ...]:
        """What the service and the bank write privately: the database and its locks, photo stores, audit log,
        keys, similar-case indexes, thumbnails and videos (not runs, snapshots or packs)."""
        database = [self.database.with_name(self.database.name + suffix) for suffix in ("", "-wal", "-shm",
                                                                                       "-journal")]
        return (*database, self.writer_lock, self.schema_lock, self.images, self.scans, self.frames, self.audit,
                self.keys, self.similar, self.thumbnails, self.videos)

    def exposed(self) -> list[Path]:
        """The home folder and what `private_parts` hold (symbolic links aside) that group or others may read,
        write or enter."""
        found = [self.root] if self.root.is_dir() and self.root.stat().st_mode & 0o077 else []
        for part in self.private_parts:
            for path in _tree(part):
                try:
                    if path.stat().st_mode & 0o077:
                        found.append(path)
                except FileNotFoundError:  # a writer at work renamed or removed it meanwhile
                    continue
        return found

    def make_private(self) -> list[Path]:
        """Set `exposed()` folders to mode 700 and files to 600; return what changed."""
        changed = []
        for path in self.exposed():
            try:
                os.chmod(path, FOLDER_MODE if path.is_dir() else FILE_MODE)
            except FileNotFoundError:  # gone meanwhile (a temporary file renamed into place is private already)
                continue
            changed.append(path)
        return changed

    def leftovers(self) -> list[Path]:
        """Temporary files (and snapshot folders) that writers left half-written when they stopped: a crash, a
        kill, a full disk. Those of processes still running are not leftovers; they are at work."""
        return sorted(path for path, pid in self._temporaries() if not process_running(pid))

    def remove_leftovers(self) -> list[Path]:
        """Delete `leftovers()`; return what was removed."""
        removed = []
        for path in self.leftovers():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
        return removed

    def _temporaries(self) -> Iterator[tuple[Path, int]]:
        for store in self.photo_stores:
            for path in _entries(store / ".incoming"):
                pid = path.suffix.lstrip(".")
                yield path, int(pid) if pid.isdigit() else 0
        folders = [self.thumbnails, self.snapshots, self.audit, self.keys, *_entries(self.similar)]
        folders += [path for path in self.models.rglob("*") if path.is_dir()] if self.models.is_dir() else []
        folders.append(self.models)
        for folder in folders:
            for path in _entries(folder):
                tagged = _TAGGED.match(path.name)
                if tagged:
                    yield path, int(tagged["pid"])


def _tree(path: Path) -> Iterator[Path]:
    """`path` and, for a folder, everything under it; symbolic links (and what they point to) left out."""
    if path.is_symlink() or not path.exists():
        return
    yield path
    if path.is_dir():
        for folder, folders, files in os.walk(path):
            for name in (*folders, *files):
                entry = Path(folder) / name
                if not entry.is_symlink():
                    yield entry


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def process_running(pid: int) -> bool:
    """Whether process `pid` exists on this machine (0 and negative ids: no process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
