"""Reading a YAML file into a validated pydantic model, with errors a user can act on."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from hazardvision.errors import HazardVisionError


def describe(error: ValidationError) -> str:
    """One line per problem: where it is in the file, and what is wrong."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in error.errors())


Model = TypeVar("Model", bound=BaseModel)


def load_yaml_model(path: Path, model: type[Model], error: type[HazardVisionError], what: str) -> Model:
    """Parse `path` as YAML and validate it as `model`; any problem raises `error` naming `what` and the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as problem:
        raise error(f"cannot read {what} {path}: {problem.strerror or problem}") from problem
    except yaml.YAMLError as problem:
        raise error(f"{what} {path} is not valid YAML: {problem}") from problem
    try:
        return model.model_validate(raw)
    except ValidationError as problem:
        raise error(f"{what} {path} is invalid: {describe(problem)}") from problem
