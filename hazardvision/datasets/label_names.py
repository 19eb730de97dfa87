"""Label names people write (in Label Studio, say) to catalogue classes: one rule for pre-annotation and import.

A label is its catalogue class when it is an explicit mapping's key, the class's own name, or the
class's English name, compared without case and with spaces and hyphens read as underscores
('No helmet', 'no-helmet' and 'NO_HELMET' are all `no_helmet`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from hazardvision.catalogue import Catalogue
from hazardvision.errors import ClassMappingError

_SEPARATORS = re.compile(r"[\s\-]+")


def _folded(text: str) -> str:
    return _SEPARATORS.sub("_", text.strip()).casefold()


def label_classes(labels: Iterable[str], catalogue: Catalogue, explicit: Mapping[str, str] | None = None
                  ) -> dict[str, str | None]:
    """Each label's catalogue class (None: no class); `ClassMappingError` for an explicit target the catalogue
    lacks."""
    known = {entry.class_name for entry in catalogue.classes}
    wrong = sorted({target for target in (explicit or {}).values() if target not in known})
    if wrong:
        raise ClassMappingError(f"the label mapping names classes the catalogue does not have: {', '.join(wrong)}; "
                                f"classes are {', '.join(sorted(known))}")
    by_name: dict[str, str] = {}
    for entry in catalogue.classes:
        by_name.setdefault(_folded(entry.name.en), entry.class_name)
    for entry in catalogue.classes:  # a class's own name wins over another class's English name
        by_name[_folded(entry.class_name)] = entry.class_name
    return {label: (explicit or {}).get(label) or by_name.get(_folded(label)) for label in labels}
