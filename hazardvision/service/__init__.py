"""The hazardvision HTTP service: `create_app(settings)` and `Settings`."""

from hazardvision.service.app import create_app
from hazardvision.service.settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]
