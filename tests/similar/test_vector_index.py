from __future__ import annotations

import io

import numpy as np
import pytest

from hazardvision.similar.vector_index import VectorIndex, load_indexes, save_indexes


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """2,000 vectors in 20 clusters of dimension 32, and their cluster labels."""
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(20, 32)))
    labels = rng.integers(0, 20, 2000)
    return unit(centres[labels] + rng.normal(scale=0.1, size=(2000, 32))), labels


@pytest.mark.parametrize("approximate", [False, True])
def test_vector_index_finds_a_stored_vector_first(clustered, approximate):
    vectors, labels = clustered
    ids = np.arange(100, 2100)
    index = VectorIndex.build(vectors, ids, ids // 10, [f"c{label}" for label in labels], approximate=approximate)
    assert index.approximate is approximate and len(index) == 2000
    hits = index.search(vectors[[5, 700]], 3)
    assert [row[0].id for row in hits] == [105, 800]
    assert hits[0][0].score == pytest.approx(1, abs=1e-5)
    assert hits[0][0].case_id == 10 and hits[0][0].class_name == f"c{labels[5]}"


def test_vector_index_search_keeps_to_the_allowed_ids(clustered):
    vectors, labels = clustered
    ids = np.arange(2000)
    index = VectorIndex.build(vectors, ids, ids, [f"c{label}" for label in labels])
    allowed = index.ids_where(class_name="c3")
    hits = index.search(vectors[:1], 10, allowed)[0]
    assert hits and all(hit.class_name == "c3" for hit in hits)
    assert index.search(vectors[:1], 10, np.array([], np.int64)) == [[]]
    assert set(index.ids_where(case_ids={1, 2, 3}).tolist()) == {1, 2, 3}


def test_vector_index_remove_and_re_add_replace_vectors(clustered):
    vectors, _ = clustered
    index = VectorIndex.build(vectors[:10], np.arange(10), np.arange(10), ["a"] * 10)
    index.remove(np.array([3, 99]))
    assert 3 not in index.ids() and len(index) == 9
    assert all(hit.id != 3 for hit in index.search(vectors[3:4], 9)[0])
    index.add(vectors[20:21], np.array([4]), np.array([40]), ["b"])
    assert len(index) == 9 and index.case_of[4] == 40
    assert index.search(vectors[20:21], 1)[0][0].id == 4


def test_vector_index_refuses_vectors_of_another_dimension(clustered):
    index = VectorIndex(32)
    with pytest.raises(ValueError, match="dimension 8"):
        index.add(np.ones((1, 8), np.float32), np.array([1]), np.array([1]), ["a"])


@pytest.mark.parametrize("approximate", [False, True])
def test_save_and_load_indexes_round_trip(clustered, approximate):
    vectors, labels = clustered
    ids = np.arange(2000)
    index = VectorIndex.build(vectors, ids, ids * 2, [f"c{label}" for label in labels], approximate=approximate)
    buffer = io.BytesIO()
    save_indexes(buffer, {"instances": index, "photos": VectorIndex(32)})  # type: ignore[arg-type]
    buffer.seek(0)
    loaded = load_indexes(buffer, ("instances", "photos"))  # type: ignore[arg-type]
    assert len(loaded["instances"]) == 2000 and len(loaded["photos"]) == 0
    assert loaded["instances"].search(vectors[7:8], 1)[0][0].case_id == 14
    loaded["instances"].remove(np.array([7]))  # the id map survives a round trip
    assert len(loaded["instances"]) == 1999


def test_vector_index_class_search_equals_the_selector_search(clustered):
    vectors, labels = clustered
    ids = np.arange(2000)
    index = VectorIndex.build(vectors, ids, ids, [f"c{label}" for label in labels])
    by_class = index.search(vectors[:3], 10, class_name="c3")
    by_selector = index.search(vectors[:3], 10, index.ids_where(class_name="c3"))
    assert [[h.id for h in row] for row in by_class] == [[h.id for h in row] for row in by_selector]
    np.testing.assert_allclose([h.score for h in by_class[0]], [h.score for h in by_selector[0]], atol=1e-5)
    index.remove(np.array([by_class[0][0].id]))  # the per-class copy follows changes
    assert by_class[0][0].id not in [h.id for h in index.search(vectors[:1], 10, class_name="c3")[0]]
    assert index.search(vectors[:1], 10, class_name="unknown") == [[]]
