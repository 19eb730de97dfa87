"""A Label Studio project's labelling config (its XML): which box controls label which image, with which labels."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from hazardvision.errors import InvalidLabelConfig

MAX_CONFIG_CHARS = 1_000_000
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True)
class BoxControl:
    """A `<RectangleLabels>` control: its name, the `<Image>` it draws on, and its labels in config order."""

    name: str
    to_name: str
    image_key: str
    """The task's data field holding the image's URL (the `<Image value="$image">` variable)."""
    labels: tuple[str, ...]


def _tag(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1].lower()


def box_controls(config: str) -> list[BoxControl]:
    """The config's `<RectangleLabels>` controls on `<Image>` tags; `InvalidLabelConfig` when there are none or the
    XML cannot be read."""
    if len(config) > MAX_CONFIG_CHARS:
        raise InvalidLabelConfig(f"the label config is {len(config)} characters; at most {MAX_CONFIG_CHARS}")
    if _DECLARATION.search(config):  # a label config never needs them; entities are how XML bombs work
        raise InvalidLabelConfig("the label config declares a DOCTYPE or ENTITY; Label Studio configs have neither")
    try:
        root = ET.fromstring(config)
    except ET.ParseError as error:
        raise InvalidLabelConfig(f"the label config is not valid XML: {error}") from error
    images = {element.get("name", ""): element.get("value", "") for element in root.iter() if _tag(element) == "image"}
    controls = []
    for element in root.iter():
        if _tag(element) != "rectanglelabels":
            continue
        name, to_name = element.get("name", ""), element.get("toName", "")
        value = images.get(to_name, "")
        if not name or not value.startswith("$"):
            continue  # not a box control on an image of the task's data
        labels = tuple(label.get("value", "") for label in element.iter() if _tag(label) == "label")
        controls.append(BoxControl(name, to_name, value[1:], tuple(label for label in labels if label)))
    if not controls:
        raise InvalidLabelConfig("the label config has no <RectangleLabels> control on an <Image value=\"$...\">; "
                                 "hazardvision pre-annotates boxes, e.g. <View><Image name=\"image\" value=\"$image\"/>"
                                 "<RectangleLabels name=\"label\" toName=\"image\"><Label value=\"no_helmet\"/>"
                                 "</RectangleLabels></View>")
    return controls
