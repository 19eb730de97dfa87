"""Incremental index changes: a review or a deletion appends one delta file that other processes read,
a compaction folds the deltas into the base, and a crash at any step leaves a readable index."""

from __future__ import annotations

from sqlalchemy import select, update

from hazardvision.data.bank_records import Annotation, Origin
from hazardvision.similar.case_index import CaseIndex
from hazardvision.similar.index_files import INDEX_FILE, deltas
from hazardvision.similar.maintenance import verify_indexes
from tests.conftest import pack_for
from tests.similar.conftest import indexed_bank


def reject_one_box(bank, class_name: str) -> tuple[int, int]:
    """Turn one labelled box into a rejected finding (as a review does); (its id, its case id)."""
    with bank.database.session() as session:
        box = session.scalars(select(Annotation).where(Annotation.class_name == class_name)).first()
        assert box is not None
        box_id, case_id = box.id, box.case_id
        session.execute(update(Annotation).where(Annotation.id == box_id).values(origin=Origin.REJECTED.value))
    return box_id, case_id


def test_update_appends_a_delta_that_another_process_reads_and_compaction_folds_in(tmp_path, ppe_photos, packs):
    pack = pack_for("no_helmet", packs)
    bank = indexed_bank(tmp_path, ppe_photos, [pack])
    writer, reader = CaseIndex(bank.home, pack), CaseIndex(bank.home, pack)
    base = (writer.folder / INDEX_FILE).stat()

    box_id, case_id = reject_one_box(bank, "no_vest")
    report = writer.update(bank, [case_id])
    assert report.added["rejected"] == 1 and report.removed["instances"] == 1 and report.photos_embedded == 1
    assert len(deltas(writer.folder)) == 1
    assert (writer.folder / INDEX_FILE).stat().st_mtime_ns == base.st_mtime_ns  # the base is not rewritten
    reader.refresh()
    assert box_id in reader["rejected"].ids() and box_id not in reader["instances"].ids()

    bank.delete_cases([case_id])
    report = writer.update(bank, [case_id])
    assert report.removed["photos"] == 1 and report.photos_embedded == 0
    reader.refresh()
    assert case_id not in reader["photos"].ids() and box_id not in reader["rejected"].ids()
    assert verify_indexes(bank, [pack]) == []

    writer.sync(bank, compact=True)
    assert deltas(writer.folder) == []
    fresh = CaseIndex(bank.home, pack)
    assert {kind: fresh[kind].ids() for kind in ("instances", "rejected", "photos")} == \
        {kind: reader[kind].ids() for kind in ("instances", "rejected", "photos")}
    held = reader.indexes
    reader.refresh()
    assert reader.indexes is held  # a compaction changes nothing a reader holds: no reading it all again
    writer.sync(bank, rebuild=True)
    reader.refresh()
    assert reader.indexes is not held  # a rebuild is read again


def test_a_crash_during_a_compaction_or_a_delta_write_leaves_the_index_as_the_bank_says(
    tmp_path, ppe_photos, packs
):
    pack = pack_for("no_helmet", packs)
    bank = indexed_bank(tmp_path, ppe_photos, [pack])
    index = CaseIndex(bank.home, pack)
    _, case_id = reject_one_box(bank, "no_vest")
    index.update(bank, [case_id])  # delta 1 adds the rejected box ...
    first = deltas(index.folder)[0][1]
    kept = first.read_bytes()
    bank.delete_cases([case_id])
    index.update(bank, [case_id])  # ... delta 2 removes the whole case
    index.sync(bank, compact=True)
    # Killed after the new base was written and before its deltas were deleted: delta 1 is still there,
    # and so is the temporary file of a delta write that never finished.
    first.write_bytes(kept)
    (index.folder / ".delta-000000000009.npz.4242").write_bytes(b"half a delta")
    assert verify_indexes(bank, [pack]) == []
    assert case_id not in CaseIndex(bank.home, pack)["photos"].ids()
