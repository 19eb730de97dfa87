"""Groups against leakage: photos that must land in the same split.

Augmented copies of one original (Roboflow `<orig>.rf.<hash>.<ext>` names), frames of one video
(`<video>_mp4-<n>`) and near-duplicates (64-bit dHash within a small Hamming distance) are joined
into one group with a union-find; a group id is the smallest SHA-256 among its photos.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage

from hazardvision.images import BGRImage

DEFAULT_DISTANCE = 1
"""Hamming distance of the area hash for near-duplicates, chosen with benchmarks/grouping.py:
the smallest distance at which no reference cluster of the shared datasets is split."""

_ROBOFLOW = re.compile(r"^(?P<base>.+?)\.rf\.[0-9a-f]{32}$")
_VIDEO = re.compile(r"^(?P<video>.+?_mp4)-\d+")


def dhash(image: BGRImage) -> tuple[int, int]:
    """Two 64-bit difference hashes (is each pixel of a 9x8 grey thumbnail brighter than its left
    neighbour), from an area-averaged thumbnail and from a bilinear one.

    The area hash is steadier under re-encoding and small edits, so it finds near-duplicates
    within a Hamming distance; the bilinear one is the common dHash convention (Pillow's bilinear
    resize), used for exact matches. benchmarks/grouping.py shows why both are needed.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    area = np.asarray(cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    bilinear = np.asarray(PILImage.fromarray(rgb).convert("L").resize((9, 8), PILImage.Resampling.BILINEAR))
    return _bits(area), _bits(bilinear)


def _bits(thumbnail: NDArray[np.uint8]) -> int:
    small = thumbnail.astype(np.int16)
    value = int(np.packbits((small[:, 1:] > small[:, :-1]).flatten()).view(">u8")[0])
    return value - (1 << 64) if value >= 1 << 63 else value  # signed, to fit a BIGINT column


def original_name(file_name: str) -> str:
    """The original a Roboflow augmented copy was made from (`<orig>.rf.<hash>`), else the file's own stem."""
    stem = PurePath(file_name).stem
    match = _ROBOFLOW.match(stem)
    return match.group("base") if match else stem


def name_keys(source: str, file_name: str) -> list[str]:
    """Grouping keys a file name implies: its Roboflow original and its video, within one source."""
    stem = PurePath(file_name).stem
    keys = []
    match = _ROBOFLOW.match(stem)
    base = match.group("base") if match else stem
    if match:
        keys.append(f"{source}:orig:{base}")
    video = _VIDEO.match(base)
    if video:
        keys.append(f"{source}:video:{video.group('video')}")
    return keys


@dataclass(frozen=True)
class Member:
    """What grouping needs to know of one photo."""

    sha256: str
    source: str
    file_name: str
    dhash: int
    dhash_bilinear: int


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_duplicate_pairs(hashes: Sequence[int], distance: int) -> Iterable[tuple[int, int]]:
    """Index pairs whose hashes differ in at most `distance` bits.

    Multi-index hashing: split the 64 bits into `distance + 1` bands; by the pigeonhole principle two
    hashes within `distance` agree exactly on at least one band, so only photos sharing a band value
    are compared. This keeps the search near-linear on a large bank.
    """
    unsigned = [h & ((1 << 64) - 1) for h in hashes]
    bands = distance + 1
    edges = np.linspace(0, 64, bands + 1).astype(int)
    seen: set[tuple[int, int]] = set()
    for start, stop in itertools.pairwise(edges):
        mask = (1 << int(stop - start)) - 1
        buckets: dict[int, list[int]] = defaultdict(list)
        for index, value in enumerate(unsigned):
            buckets[(value >> int(start)) & mask].append(index)
        for members in buckets.values():
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    if (a, b) not in seen and (unsigned[a] ^ unsigned[b]).bit_count() <= distance:
                        seen.add((a, b))
                        yield a, b


def assign_groups(members: Sequence[Member], distance: int = DEFAULT_DISTANCE) -> dict[str, str]:
    """Group id of every photo, by SHA-256."""
    union = _UnionFind(len(members))
    first_with_key: dict[str, int] = {}
    for index, member in enumerate(members):
        for key in name_keys(member.source, member.file_name):
            union.union(first_with_key.setdefault(key, index), index)
    if distance >= 0:
        for a, b in near_duplicate_pairs([m.dhash for m in members], distance):
            union.union(a, b)
    first_with_hash: dict[int, int] = {}
    for index, member in enumerate(members):
        union.union(first_with_hash.setdefault(member.dhash_bilinear, index), index)
    smallest: dict[int, str] = {}
    for index, member in enumerate(members):
        root = union.find(index)
        smallest[root] = min(smallest.get(root, member.sha256), member.sha256)
    return {member.sha256: smallest[union.find(index)] for index, member in enumerate(members)}


@dataclass(frozen=True)
class GroupingQuality:
    """Pairwise agreement of a grouping with a reference one."""

    precision: float
    """Of the pairs we put together, the share the reference also puts together."""
    recall: float
    """Of the pairs the reference puts together, the share we put together."""
    groups: int
    reference_groups: int


def compare_groupings(ours: dict[str, str], reference: dict[str, str]) -> GroupingQuality:
    """Pairwise precision and recall of `ours` against `reference` (both: item -> group)."""
    items = sorted(set(ours) & set(reference))
    joint: dict[tuple[str, str], int] = defaultdict(int)
    our_sizes: dict[str, int] = defaultdict(int)
    ref_sizes: dict[str, int] = defaultdict(int)
    for item in items:
        joint[(ours[item], reference[item])] += 1
        our_sizes[ours[item]] += 1
        ref_sizes[reference[item]] += 1

    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    together_both = sum(pairs(n) for n in joint.values())
    together_ours = sum(pairs(n) for n in our_sizes.values())
    together_ref = sum(pairs(n) for n in ref_sizes.values())
    return GroupingQuality(
        precision=together_both / together_ours if together_ours else 1.0,
        recall=together_both / together_ref if together_ref else 1.0,
        groups=len(our_sizes),
        reference_groups=len(ref_sizes),
    )
