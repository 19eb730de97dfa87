"""Sign-in: an API key exchanged for a page's session cookie."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.access import Permission, Role


class SignInRequest(BaseModel):
    """The key to sign in with; it is checked once and never stored by the page."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200, description="An API key (`hv_...`).")


class SessionView(BaseModel):
    """Who is signed in, what the role may do, and the CSRF token the page sends with every write."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Name of the signed-in key: the reviewer, inspector and verifier of records.")
    role: Role = Field(description="The key's role.")
    permissions: list[Permission] = Field(description="What the role may do: the page shows nothing else.")
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every write (POST, PUT, DELETE).")
    expires_at: dt.datetime = Field(description="When the session ends at the latest (UTC).")
