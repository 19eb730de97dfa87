"""hazardvision: finds hidden safety hazards in site photos and video, backed by a sample bank."""

from hazardvision.detections import Detections

__all__ = ["Detections", "__version__"]
__version__ = "0.1.0"
