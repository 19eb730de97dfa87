"""The pack registry: the home's packs and decisions layered over the bundled ones, writes to the home only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hazardvision.errors import InvalidModel, UnknownModel
from hazardvision.packs.card import CARD_FILE, ModelCard
from hazardvision.packs.registry import ACTIVE_FILE, REPLACED_FILE, PackRegistry
from tests.conftest import bundled_registry


def source_card() -> ModelCard:
    """The bundled fire-smoke card, a small real card to derive test versions from."""
    return bundled_registry().active("fire-smoke").card()


def add_version(root: Path, pack: str, version: str, **changes: object) -> Path:
    """A pack version folder under `root` with a real card (renamed) and links to the real ONNX files."""
    source = bundled_registry().active("fire-smoke").folder
    folder = root / pack / version
    folder.mkdir(parents=True)
    source_card().model_copy(update={"pack": pack, "version": version, **changes}).write(folder / CARD_FILE)
    for name in ("model.onnx", "model-int8.onnx"):
        (folder / name).symlink_to(source / name)
    return folder


def fingerprint(root: Path) -> dict[str, tuple[float, str]]:
    """mtime and SHA-256 of every file under `root`."""
    return {str(p.relative_to(root)): (p.lstat().st_mtime, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def layers(tmp_path) -> PackRegistry:
    """Bundled: fire-smoke v1 and v2 (ACTIVE v1), ppe v1 (no ACTIVE). Home: fire-smoke v3, and the pack ladders."""
    bundled, home = tmp_path / "bundled", tmp_path / "home" / "models"
    add_version(bundled, "fire-smoke", "v1")
    add_version(bundled, "fire-smoke", "v2")
    (bundled / "fire-smoke" / ACTIVE_FILE).write_text("v1\n")
    add_version(bundled, "ppe", "v1")
    add_version(home, "fire-smoke", "v3")
    add_version(home, "ladders", "1.0")
    return PackRegistry(bundled, home)


def test_registry_lists_the_packs_and_versions_of_both_layers(layers):
    assert layers.packs() == ["fire-smoke", "ladders", "ppe"]
    assert [(v.version, v.bundled) for v in layers.versions("fire-smoke")] == [
        ("v1", True), ("v2", True), ("v3", False)]
    assert layers.version("ladders", "1.0").card().pack == "ladders"


def test_registry_bundled_active_serves_until_the_home_names_another(layers):
    assert layers.active("fire-smoke").version == "v1"
    assert [(v.pack, v.version) for v in layers.serving()] == [("fire-smoke", "v1"), ("ladders", "1.0"), ("ppe", "v1")]
    (layers.home / "fire-smoke" / ACTIVE_FILE).write_text("v3\n")
    assert layers.active("fire-smoke").version == "v3"
    assert [p.version for p in layers.active_packs() if p.name == "fire-smoke"] == ["v3"]


def test_registry_same_version_in_both_layers_is_the_bundled_one(layers):
    add_version(layers.home, "fire-smoke", "v2", status="a local copy")
    chosen = layers.version("fire-smoke", "v2")
    assert chosen.bundled and chosen.card().status == source_card().status
    assert [v.version for v in layers.versions("fire-smoke")] == ["v1", "v2", "v3"]


def test_registry_activate_writes_only_to_the_home(layers):
    before = fingerprint(layers.bundled)
    layers.activate("fire-smoke", "v2")
    layers.activate("ppe", "v1")
    assert (layers.home / "fire-smoke" / ACTIVE_FILE).read_text() == "v2\n"
    assert layers.active("fire-smoke").version == "v2"
    assert fingerprint(layers.bundled) == before
    with pytest.raises(UnknownModel, match=r"no version 'v9' of pack 'ppe'.*versions: \['v1'\]"):
        layers.activate("ppe", "v9")


def test_registry_replaced_pack_serves_again_once_the_home_activates_it(layers):
    (layers.bundled / "ppe" / REPLACED_FILE).write_text("site 0.1.0\n")
    assert layers.replaced_by("ppe") == "site 0.1.0" and not layers.serves("ppe")
    layers.activate("ppe", "v1")  # the home's decision overrides the release's
    assert layers.replaced_by("ppe") is None and layers.serves("ppe")
    layers.retire("ppe", "ladders 1.0")
    assert layers.replaced_by("ppe") == "ladders 1.0" and "ppe" not in [v.pack for v in layers.serving()]


def test_registry_staged_pack_does_not_serve(layers):
    layers.stage("ladders")
    assert layers.staged("ladders") and not layers.serves("ladders")
    with pytest.raises(InvalidModel, match="ladders is staged"):
        layers.active("ladders")


def test_registry_several_versions_need_an_active_marker(layers):
    add_version(layers.home, "ppe", "v2")
    with pytest.raises(InvalidModel, match="2 versions and no ACTIVE"):
        layers.active("ppe")
    (layers.home / "ppe" / ACTIVE_FILE).write_text("v9\n")
    with pytest.raises(InvalidModel, match="names version 'v9'"):
        layers.active("ppe")


def test_registry_unknown_pack_names_the_packs_there_are(layers):
    with pytest.raises(UnknownModel, match=r"no pack 'cranes'.*packs: \['fire-smoke', 'ladders', 'ppe'\]"):
        layers.active("cranes")


def test_registry_new_version_goes_to_the_home_and_never_reuses_a_name(layers):
    assert layers.new_version("ppe", "v2") == layers.home / "ppe" / "v2"
    for taken in ("v1", "v3"):  # bundled, and the home's
        with pytest.raises(InvalidModel, match="versions are never overwritten"):
            layers.new_version("fire-smoke", taken)


def test_registry_added_version_keeps_the_single_bundled_version_active(layers):
    add_version(layers.home, "ppe", "v2")
    layers.added("ppe", "v2", staged=False)
    assert layers.active("ppe").version == "v1"
    add_version(layers.home, "cranes", "0.1")
    layers.added("cranes", "0.1", staged=True)
    assert layers.staged("cranes")


def test_registry_bundle_copies_a_home_version_and_refuses_to_overwrite(layers):
    target = layers.bundle("ladders", "1.0")
    assert target == layers.bundled / "ladders" / "1.0"
    assert ModelCard.read(target / CARD_FILE) == ModelCard.read(layers.home / "ladders" / "1.0" / CARD_FILE)
    assert layers.version("ladders", "1.0").bundled
    with pytest.raises(InvalidModel, match="never overwritten"):
        layers.bundle("ladders", "1.0")
    with pytest.raises(InvalidModel, match="never overwritten"):
        layers.bundle("fire-smoke", "v1")


def test_registry_without_a_home_refuses_to_write(layers):
    read_only = PackRegistry(layers.bundled)
    assert read_only.packs() == ["fire-smoke", "ppe"]
    before = fingerprint(layers.bundled)
    with pytest.raises(InvalidModel, match="no home folder"):
        read_only.activate("fire-smoke", "v2")
    assert fingerprint(layers.bundled) == before


def test_registry_at_layers_the_home_folder_over_the_bundled_packs(tmp_path):
    registry = PackRegistry.at(tmp_path)
    assert registry.home == tmp_path.resolve() / "models"
    assert registry.packs() == bundled_registry().packs()
