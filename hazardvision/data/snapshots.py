"""`Snapshots`: the record of each frozen dataset made from the bank."""

from __future__ import annotations

from hazardvision.data.bank_records import SnapshotRecord
from hazardvision.data.database import Database


class Snapshots:
    def __init__(self, database: Database) -> None:
        self.database = database

    def record(self, *, snapshot_id: str, path: str, manifest: dict[str, object]) -> bool:
        """Keep a snapshot's manifest unless it is kept already (same id, same content); return whether it was new."""
        with self.database.session() as session:
            if session.get(SnapshotRecord, snapshot_id) is not None:
                return False
            session.add(SnapshotRecord(id=snapshot_id, path=path, manifest=manifest))
            return True

    def get(self, *, snapshot_id: str) -> SnapshotRecord | None:
        with self.database.session() as session:
            return session.get(SnapshotRecord, snapshot_id)
