"""The sample bank: labelled hazard photos, their provenance, groups and frozen snapshots."""

from hazardvision.bank.bank import SampleBank, default_home

__all__ = ["SampleBank", "default_home"]
