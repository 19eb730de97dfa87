"""Where the bundled hazard catalogue and model packs live.

A wheel carries them in `hazardvision/_bundled/` (see pyproject's force-include); a source
checkout or editable install reads them from the repository's `samples/` and `models/`.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled_path(relative: str) -> Path:
    """Path of a bundled file or folder such as `models` or `samples/catalogue.yaml`."""
    installed = _PACKAGE / "_bundled" / relative
    if installed.exists():
        return installed
    return _PACKAGE.parent / relative


def shared_path(relative: str) -> Path:
    """A folder of `../shared` beside the repository (datasets, pretrained weights; never in the repository)."""
    return _PACKAGE.parent.parent / "shared" / relative


def default_datasets() -> Path:
    """Labelled datasets for evaluation: `HAZARDVISION_DATASETS`, else `../shared/datasets` beside the repository."""
    override = os.environ.get("HAZARDVISION_DATASETS")
    return Path(override) if override else shared_path("datasets")
