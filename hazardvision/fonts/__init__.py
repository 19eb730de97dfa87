"""The TrueType fonts the package ships, for the inspection record and the page (credits: README.md here)."""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
CJK_FONT = FOLDER / "DroidSansFallbackFull.ttf"  # Chinese, Japanese, Korean; no Latin letters
LATIN_FONT = FOLDER / "DejaVuSans.ttf"  # Latin and symbols, used first
