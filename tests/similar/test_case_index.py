from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from hazardvision.data.bank_records import Annotation, Origin
from hazardvision.packs.model_pack import load_pack
from hazardvision.similar import case_index
from hazardvision.similar.case_index import CaseIndex, EmbeddingModel, IndexError_
from hazardvision.similar.index_files import INDEX_FILE, deltas
from hazardvision.similar.maintenance import sync_indexes, update_cases, verify_indexes
from tests.bank.conftest import import_path
from tests.conftest import pack_for
from tests.similar.conftest import PHOTOS, copy_labelled, indexed_bank

REPO = Path(__file__).resolve().parents[2]


def ppe(packs):
    return pack_for("no_helmet", packs)


def test_sync_indexes_every_labelled_instance_and_every_photo(bank, packs):
    index = CaseIndex(bank.home, ppe(packs))
    with bank.database.session() as session:
        boxes = session.scalars(select(Annotation.id).where(Annotation.class_name.in_(ppe(packs).card.classes))).all()
    assert index["instances"].ids() == set(boxes)
    assert len(index["photos"]) == PHOTOS and len(index["rejected"]) == 0
    assert verify_indexes(bank, packs) == []
    manifest = json.loads((index.folder / "manifest.json").read_text())
    assert manifest["embedding_model"]["sha256"] == ppe(packs).sha256
    assert all((bank.home / "thumbnails" / f"{i}.jpg").is_file() for i in boxes)


def test_sync_keeps_rejected_findings_apart_as_known_false_alarms(tmp_path, ppe_photos, packs):
    bank = indexed_bank(tmp_path, ppe_photos, packs)
    with bank.database.session() as session:
        first = session.scalars(select(Annotation).where(Annotation.class_name == "no_vest")).first()
        assert first is not None
        rejected = first.id
        session.execute(update(Annotation).where(Annotation.id == rejected).values(origin=Origin.REJECTED.value))
    assert any("rejected" in problem for problem in verify_indexes(bank, packs))
    report = sync_indexes(bank, packs)[ppe(packs).name]
    assert report.added["rejected"] == 1 and report.removed["instances"] == 1
    index = CaseIndex(bank.home, ppe(packs))
    assert rejected in index["rejected"].ids() and rejected not in index["instances"].ids()
    assert verify_indexes(bank, packs) == []


def test_an_index_belongs_to_one_embedding_model(tmp_path, bank, packs):
    """Another version of a pack (another ONNX file) has its own index folder, never a mix."""
    copy = tmp_path / ppe(packs).name / "9.9.9"
    shutil.copytree(ppe(packs).folder, copy)
    card = json.loads((copy / "card.json").read_text())
    (copy / "card.json").write_text(json.dumps(card | {"version": "9.9.9"}))
    other = load_pack(copy)
    assert EmbeddingModel.of(other).key != EmbeddingModel.of(ppe(packs)).key
    assert not CaseIndex(bank.home, other).exists
    assert "no index" in verify_indexes(bank, [other], required=True)[0]


KILLED_AT_INDEX_WRITE = textwrap.dedent("""
    import os, signal, sys
    from hazardvision.similar import case_index
    # The process dies after the bank has committed and before an index file (base or delta) is written.
    case_index.save_base = case_index.write_delta = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
    from hazardvision.cli import main
    sys.argv = ["hazardvision", *sys.argv[1:]]
    main()
""")


def hazardvision(*args: str, kill_at_index_write: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", KILLED_AT_INDEX_WRITE] if kill_at_index_write else [
        sys.executable, "-m", "hazardvision"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=REPO, timeout=300, check=False)


def test_a_kill_between_bank_and_index_writes_is_found_by_verify_and_repaired_by_reindex(
    tmp_path, ppe_photos, packs, datasets
):
    home = tmp_path / "home"
    indexed_bank(home, ppe_photos, packs)
    more = copy_labelled(tmp_path / "more", "ppe-vest", "train", 3, start=PHOTOS)

    added = hazardvision("bank", "import", str(more), "--home", str(home), kill_at_index_write=True)
    assert added.returncode == -signal.SIGKILL, added.stderr
    deleted = hazardvision("bank", "delete", "1", "2", "--home", str(home), kill_at_index_write=True)
    assert deleted.returncode == -signal.SIGKILL, deleted.stderr

    verify = hazardvision("bank", "verify", "--home", str(home))
    assert verify.returncode == 1
    assert "missing from the index" in verify.stderr and "not in the bank" in verify.stderr

    repaired = hazardvision("bank", "reindex", "--home", str(home))
    assert repaired.returncode == 0, repaired.stderr
    assert hazardvision("bank", "verify", "--home", str(home)).returncode == 0


def test_an_unreadable_index_file_is_reported_and_rebuilt(tmp_path, ppe_photos, packs):
    bank = indexed_bank(tmp_path, ppe_photos, packs[:1])
    index = CaseIndex(bank.home, packs[0])
    (index.folder / "index.npz").write_bytes(b"not an index")
    damaged = CaseIndex(bank.home, packs[0])
    assert not damaged.exists
    assert "reindex --rebuild" in verify_indexes(bank, packs[:1])[0]
    with pytest.raises(IndexError_, match="reindex --rebuild"):
        damaged.sync(bank)
    damaged.sync(bank, rebuild=True)
    assert verify_indexes(bank, packs[:1]) == []


def test_update_cases_appends_only_their_change_and_reads_no_vectors_until_a_compaction(
    tmp_path, ppe_photos, packs, monkeypatch
):
    pack = ppe(packs)
    bank = indexed_bank(tmp_path / "home", ppe_photos, [pack])
    folder = CaseIndex(bank.home, pack).folder
    base = (folder / INDEX_FILE).stat().st_mtime_ns
    stale = bank.cases()[0].id
    bank.delete_cases([stale])  # a change nobody told the index of: left for `bank verify` and `bank reindex`
    imported = import_path(bank, copy_labelled(tmp_path / "more", "ppe-vest", "train", 2, start=PHOTOS), name="more")
    assert len(imported.changed_cases) == 2 and "changed_cases" not in imported.model_dump()

    report = update_cases(bank, [pack], imported.changed_cases)[pack.name]
    assert (report.photos_embedded, report.added["photos"], report.removed["photos"]) == (2, 2, 0)
    ids_only = CaseIndex(bank.home, pack, vectors=False)
    assert set(imported.changed_cases) <= ids_only["photos"].ids() and stale in ids_only["photos"].ids()
    with pytest.raises(ValueError, match="ids only"):
        ids_only["photos"].search(np.zeros((1, ids_only["photos"].dim), np.float32), 1)
    assert (folder / INDEX_FILE).stat().st_mtime_ns == base and len(deltas(folder)) == 1

    monkeypatch.setattr(case_index, "COMPACT_AFTER", 1)  # the next change rewrites the base: it reads the vectors
    gone = imported.changed_cases[0]
    bank.delete_cases([gone])
    assert update_cases(bank, [pack], [gone])[pack.name].removed["photos"] == 1
    assert (folder / INDEX_FILE).stat().st_mtime_ns != base and deltas(folder) == []
    loaded = CaseIndex(bank.home, pack)
    assert gone not in loaded["photos"].ids() and imported.changed_cases[1] in loaded["photos"].ids()
    assert len(loaded["photos"]) == PHOTOS + 1 == len(loaded["photos"].ids())  # the stale case's vector is still there
    assert [p for p in verify_indexes(bank, [pack]) if "photos" in p] == [
        f"{EmbeddingModel.of(pack).key}: 1 photos in the index but not in the bank: case ids {stale}"]
