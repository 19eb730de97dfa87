from __future__ import annotations

import pytest

from hazardvision.catalogue import Severity, load_catalogue
from hazardvision.errors import CatalogueError, UnknownClass

VALID_ENTRY = """
  - class_name: no_helmet
    hazard: true
    code: PPE-HEAD-01
    name: {en: No helmet, zh: 未戴安全帽}
    category: ppe
    severity: high
    rules: [{ref: GB 2811-2019, summary: Safety helmets.}]
    advice: {en: Wear one., zh: 佩戴。}
"""


def write(tmp_path, text):
    path = tmp_path / "catalogue.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_catalogue_bundled_covers_hazards_and_context():
    catalogue = load_catalogue()
    assert catalogue.entry("no_helmet").hazard and catalogue.entry("no_helmet").severity is Severity.HIGH
    assert not catalogue.entry("helmet").hazard
    assert catalogue.entry("fire").severity is Severity.CRITICAL
    for entry in catalogue.classes:
        assert entry.name.zh and entry.name.en
        if entry.hazard:
            assert entry.rules and entry.advice is not None


def test_load_catalogue_user_file(tmp_path):
    catalogue = load_catalogue(write(tmp_path, "version: 1\nclasses:" + VALID_ENTRY))
    assert [e.class_name for e in catalogue.classes] == ["no_helmet"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nclasses:" + VALID_ENTRY + VALID_ENTRY, "must be unique"),
        ("version: 1\nclasses:" + VALID_ENTRY.replace("severity: high", "severity: extreme"), "severity"),
        ("version: 1\nclasses:" + VALID_ENTRY.replace("    advice: {en: Wear one., zh: 佩戴。}\n", ""),
         "needs at least one rule and advice"),
        ("version: 1\nclasses:" + VALID_ENTRY.replace("hazard: true", "hazard: true\n    colour: red"),
         "colour"),
        ("version: 1\nclasses: [", "not valid YAML"),
        ("version: 1\nclasses: []", "classes"),
    ],
    ids=["duplicate", "bad-severity", "hazard-without-advice", "unknown-field", "broken-yaml", "empty"],
)
def test_load_catalogue_invalid_file_names_the_problem(tmp_path, text, message):
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(write(tmp_path, text))


def test_load_catalogue_missing_file(tmp_path):
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "nope.yaml")


def test_catalogue_entry_unknown_class_lists_known_ones():
    with pytest.raises(UnknownClass, match=r"known: .*no_helmet"):
        load_catalogue().entry("unicorn")


def test_catalogue_require_names_the_source():
    with pytest.raises(UnknownClass, match="pack x emits classes \\['ladder'\\]"):
        load_catalogue().require(("helmet", "ladder"), "pack x")


def test_load_catalogue_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HAZARDVISION_CATALOGUE", str(write(tmp_path, "version: 1\nclasses:" + VALID_ENTRY)))
    assert [e.class_name for e in load_catalogue().classes] == ["no_helmet"]
