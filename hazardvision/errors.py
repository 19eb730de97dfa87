"""Domain exceptions; each message tells the user what to fix.

The HTTP layer maps these classes to status codes in one table, so raise the most specific one.
"""


class HazardVisionError(Exception):
    """Base of every error hazardvision raises on purpose."""


class InvalidImage(HazardVisionError):
    """The bytes are not a photo we can decode (empty, truncated, unknown format...)."""


class ImageTooLarge(InvalidImage):
    """The photo exceeds the configured pixel or byte limit."""


class InvalidModel(HazardVisionError):
    """A model file or model pack cannot be loaded or is not a detection model."""


class InferenceError(HazardVisionError):
    """A loaded model failed while running (a broken or incompatible graph)."""


class UnknownModel(HazardVisionError):
    """No model pack or version of that name exists."""


class CatalogueError(HazardVisionError):
    """The hazard catalogue file is missing or fails validation."""


class UnknownClass(CatalogueError):
    """A detector class has no entry in the hazard catalogue."""


class DatasetError(HazardVisionError):
    """A dataset to import cannot be read as a whole (not per-file problems, which are reported)."""


class ClassMappingError(HazardVisionError):
    """Dataset classes are neither mapped onto the catalogue nor dropped."""


class BankError(HazardVisionError):
    """The sample bank cannot be opened or is inconsistent."""


class UnknownCase(BankError):
    """No case of that id exists in the bank."""


class PromotionRefused(HazardVisionError):
    """A candidate model is worse than the active one (or cannot be compared with it)."""
