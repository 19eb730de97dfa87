from __future__ import annotations

import numpy as np
import pytest

from hazardvision.catalogue import load_catalogue
from hazardvision.images import load_image
from hazardvision.scan import Scanner
from hazardvision.similar.query import SimilarQuery
from hazardvision.similar.search import Photo, SimilarCaseSearch, open_search, same_place
from hazardvision.similar.views import photo_views
from tests.conftest import pack_for


@pytest.fixture(scope="module")
def search(bank, packs) -> SimilarCaseSearch:
    return SimilarCaseSearch.open(bank, packs, load_catalogue())


def first_case(bank):
    return bank.cases(limit=1)[0]


def query_case(search, case, query, annotation=0):
    pack = pack_for("no_helmet", search.packs)
    maps = pack.feature_maps([load_image(case.image_path).pixels])[0]
    box = case.annotations[annotation]
    return search.for_boxes(pack.name, maps, np.array([box.box]), [box.class_name], query)[0]


def test_for_boxes_finds_the_instance_itself_first_with_its_case_details(bank, search):
    case = first_case(bank)
    found = query_case(search, case, SimilarQuery(k=3))
    best = found[0]
    assert best.case_id == case.id and best.annotation_id == case.annotations[0].id
    assert best.score == pytest.approx(1, abs=1e-4)
    assert best.class_name == case.annotations[0].class_name
    assert (best.site, best.enterprise, best.source) == ("Dock 3", "Acme Steel", "ppe-sample")
    assert best.thumbnail and load_image(best.thumbnail).width > 0
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)


def test_for_boxes_keeps_to_the_class_unless_told_otherwise(bank, search):
    case = first_case(bank)
    own = case.annotations[0].class_name
    same = query_case(search, case, SimilarQuery(k=20))
    assert same and all(c.class_name == own for c in same)
    anything = query_case(search, case, SimilarQuery(k=20, same_class=False))
    assert {c.class_name for c in anything} - {own}


@pytest.mark.parametrize(("query", "expected"), [
    (SimilarQuery(site="Dock 3"), True),
    (SimilarQuery(site="Elsewhere"), False),
    (SimilarQuery(enterprise="Acme Steel"), True),
    (SimilarQuery(enterprise="Other Corp"), False),
    (SimilarQuery(min_score=0.999), True),
])
def test_for_boxes_filters_by_site_enterprise_and_score(bank, search, query, expected):
    found = query_case(search, first_case(bank), query)
    assert bool(found) is expected
    if query.min_score:
        assert all(c.score >= query.min_score for c in found)


def test_for_photo_ranks_the_photo_itself_first_then_its_siblings(bank, search):
    case = first_case(bank)
    pixels = load_image(case.image_path).pixels
    maps = {p.name: p.feature_maps([pixels])[0] for p in search.packs}
    found = search.for_photo([(pixels, maps)], SimilarQuery(k=4))
    assert found[0].case_id == case.id and found[0].score == pytest.approx(1, abs=1e-4)
    assert found[0].annotation_id is None and found[0].thumbnail is None
    assert len(found) == 4


def test_a_scan_attaches_similar_cases_to_each_finding(bank, packs, search):
    scanner = Scanner(packs, load_catalogue(), similar=search, similar_query=SimilarQuery(k=2))
    cases = bank.cases()
    results = scanner.scan([load_image(case.image_path) for case in cases], ["photo"] * len(cases), confidence=0.1)
    # the first bank photo on which a PPE hazard is found (any model version finds one among ten)
    ppe = {"no_helmet", "no_vest"}
    result = next(r for r in results if any(finding.class_name in ppe for finding in r.findings))
    for finding in result.findings:
        if finding.class_name not in ppe:  # the bank holds no fire or smoke instance to match
            assert finding.similar_cases == []
            continue
        assert finding.similar_cases and len(finding.similar_cases) <= 2
        assert all(c.class_name == finding.class_name for c in finding.similar_cases)
    assert "similar" in result.timings_ms


def test_open_search_without_a_bank_or_an_index_finds_nothing(tmp_path, packs):
    assert open_search(tmp_path / "nowhere", packs, load_catalogue()) is None
    assert not (tmp_path / "nowhere").exists()  # looking does not create a bank


def test_eight_views_find_a_turned_and_mirrored_copy_of_a_photo(bank, search):
    case = first_case(bank)
    copy = np.ascontiguousarray(np.rot90(load_image(case.image_path).pixels)[:, ::-1])
    views = [(view, {p.name: p.feature_maps([view])[0] for p in search.packs}) for view in photo_views(copy)]
    found = search.for_photo(views, SimilarQuery(k=1))
    assert found[0].case_id == case.id and found[0].score == pytest.approx(1, abs=1e-3)


def test_photo_views_are_the_eight_turns_and_mirrors():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    views = photo_views(image)
    assert len(views) == 8 and np.array_equal(views[0], image)
    assert len({view.tobytes() for view in views}) == 8
    assert all(view.flags.c_contiguous for view in views)


def test_for_box_asks_every_pack_and_keeps_the_best(bank, search):
    case = first_case(bank)
    pixels = load_image(case.image_path).pixels
    maps = {p.name: p.feature_maps([pixels])[0] for p in search.packs}
    found = search.for_box(maps, case.annotations[0].box, None, SimilarQuery(k=3, same_class=False))
    assert found[0].annotation_id == case.annotations[0].id and len(found) == 3


def test_a_search_sees_an_index_that_another_process_rewrote(tmp_path, ppe_photos, packs):
    from hazardvision.similar.maintenance import sync_indexes
    from tests.similar.conftest import indexed_bank

    bank = indexed_bank(tmp_path, ppe_photos, packs[:0])  # a bank without any index yet
    search = SimilarCaseSearch.open(bank, packs, load_catalogue())
    assert search.indexes == {}
    sync_indexes(bank, packs)  # as `hazardvision bank reindex` would, from outside
    assert set(search.indexes) == {p.name for p in packs}
    assert query_case(search, first_case(bank), SimilarQuery(k=1))


def test_same_place_compares_where_in_the_frame_upright_or_mirrored():
    left = np.array([0.1, 0.2, 0.3, 0.6], np.float32)
    assert same_place(left, left) == pytest.approx(1)
    assert same_place(np.array([0.7, 0.2, 0.9, 0.6], np.float32), left) == pytest.approx(1)  # the mirrored place
    assert same_place(np.array([0.4, 0.2, 0.6, 0.6], np.float32), left) == 0


def test_photo_relative_box_is_a_fraction_of_its_size():
    photo = Photo.of(np.zeros((200, 400, 3), np.uint8))
    np.testing.assert_allclose(photo.relative(np.array([40.0, 20.0, 200.0, 200.0])), [0.1, 0.1, 0.5, 1.0])
