from __future__ import annotations

import numpy as np
import pytest

from hazardvision.bank.groups import Member, assign_groups, compare_groupings, name_keys, near_duplicate_pairs


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("images/train/00121_jpg.rf.1947e4884f926129bf01dbcff3c69fcf.jpg", ["s:orig:00121_jpg"]),
        ("fire1_mp4-23_jpg.rf.ae8ce7517eb013738134e37dd8792de2.jpg", ["s:orig:fire1_mp4-23_jpg", "s:video:fire1_mp4"]),
        ("site_photo.jpg", []),
    ],
)
def test_name_keys(name, keys):
    assert name_keys("s", name) == keys


@pytest.mark.parametrize("distance", [0, 1, 3, 6])
def test_near_duplicate_pairs_equal_brute_force(distance):
    rng = np.random.default_rng(distance)
    base = rng.integers(0, 2**63, 40, dtype=np.int64)
    hashes = [int(h) for h in base]
    for h in base[:20]:  # near copies: flip a few bits
        hashes.append(int(h) ^ (1 << int(rng.integers(0, 62))) ^ (1 << int(rng.integers(0, 62))))
    found = set(near_duplicate_pairs(hashes, distance))
    brute = {(a, b) for a in range(len(hashes)) for b in range(a + 1, len(hashes))
             if ((hashes[a] ^ hashes[b]) & (2**64 - 1)).bit_count() <= distance}
    assert found == brute


def test_assign_groups_joins_names_and_near_duplicates():
    members = [
        Member("a" * 64, "s", "x_jpg.rf." + "1" * 32 + ".jpg", 0b1111, 1),
        Member("b" * 64, "s", "x_jpg.rf." + "2" * 32 + ".jpg", 0xFF00, 2),
        Member("c" * 64, "s", "other.jpg", 0b1110, 3),  # one bit from the first
        Member("d" * 64, "s", "far.jpg", 0xF0F0F0, 4),
        Member("e" * 64, "t", "copy.jpg", 0xABCDEF, 4),  # same bilinear hash as "far"
    ]
    groups = assign_groups(members, distance=1)
    assert groups["a" * 64] == groups["b" * 64] == groups["c" * 64] == "a" * 64
    assert groups["d" * 64] == groups["e" * 64] == "d" * 64


def test_compare_groupings_counts_pairs():
    quality = compare_groupings({"1": "A", "2": "A", "3": "A", "4": "B"}, {"1": "x", "2": "x", "3": "y", "4": "y"})
    assert quality.precision == pytest.approx(1 / 3) and quality.recall == pytest.approx(1 / 2)
