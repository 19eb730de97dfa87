"""Liveness and readiness."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Health(BaseModel):
    """The process answers."""

    model_config = ConfigDict(extra="forbid")

    status: str = Field(description="Always 'ok': the process answers (see `down` and /readyz for the models).")
    down: dict[str, str] | None = Field(default=None, description="Pack -> why it does not serve (its active "
                                        "version failed to load); left out while every pack serves.")


class Readiness(BaseModel):
    """Whether the models are loaded and scans can be served."""

    model_config = ConfigDict(extra="forbid")

    ready: bool = Field(description="True once the models are loaded.")
    models: dict[str, str] = Field(description="Pack -> version served (empty while loading).")
    similar_cases: bool = Field(description="Whether findings get similar cases (the bank has an index).")
    message: str | None = Field(default=None, description="Why the service is not ready, if it is not; while it "
                                "is, which packs do not serve (see `down`), if any.")
    down: dict[str, str] = Field(default_factory=dict, description="Pack -> why it does not serve (its active "
                                 "version failed to load: a model file that differs from its card's sha256, a "
                                 "damaged file); the others serve. Ready while at least one pack serves.")
