"""`Home`: the one place that knows what lives where in a hazardvision home folder.

    HOME/
      bank.sqlite3        the database (unless HAZARDVISION_DATABASE_URL names a server)
      images/             the bank's photos, by SHA-256
      scans/              photos the service scanned, by SHA-256 (in the bank only once reviewed)
      frames/             camera frames that raised an alert, by SHA-256 (the alerts' snapshots)
      audit/              the audit log, its anchor and key
      similar/<model>/    similar-case indexes, one per embedding model
      thumbnails/         thumbnails of similar cases
      snapshots/<id>/     frozen training datasets
      runs/<pack>-<key>/  training runs
      models/             the user's own model packs, layered over the bundled ones
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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
