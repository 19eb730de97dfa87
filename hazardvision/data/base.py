"""The declarative base every table of the data layer belongs to (one metadata, one set of migrations)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import DeclarativeBase


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass
