"""`Cameras`: each camera's alert settings (its webhook secret encrypted), and the alerts raised from its frames."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Literal

from sqlalchemy import String, delete, func, literal, select, update

from hazardvision.data.base import utcnow
from hazardvision.data.camera_epochs import CameraEpochRecord
from hazardvision.data.database import Database
from hazardvision.data.encryption import SecretBox
from hazardvision.data.scans import Visibility, visible
from hazardvision.data.service_records import AlertRecord, CameraRecord
from hazardvision.video.alerts import Alert


class Cameras:
    def __init__(self, database: Database, secrets: SecretBox | None = None) -> None:
        self.database = database
        self.secrets = secrets or SecretBox(database.home.webhook_key)

    def secret(self, row: CameraRecord) -> str | None:
        """The camera's webhook secret, decrypted (`BankError` when the key file does not fit)."""
        return self.secrets.open(row.webhook_secret) if row.webhook_secret is not None else None

    def seal_clear(self) -> int:
        """Encrypt the webhook secrets an older hazardvision stored in clear; return how many."""
        with self.database.session() as session:
            rows = [row for row in session.scalars(select(CameraRecord).where(CameraRecord.webhook_secret.is_not(None)))
                    if row.webhook_secret is not None and not self.secrets.sealed(row.webhook_secret)]
            for row in rows:
                row.webhook_secret = self.secrets.seal(row.webhook_secret or "")
            return len(rows)

    def stream_url(self, row: CameraRecord) -> str | None:
        """The camera's stream URL with its credentials, decrypted (`BankError` when the key file does not fit)."""
        if row.stream_url is None or row.stream_credentials is None:
            return row.stream_url
        parts = urllib.parse.urlsplit(row.stream_url)
        credentials = self.secrets.open(row.stream_credentials)
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{credentials}@{parts.netloc}"))

    def streaming(self) -> list[CameraRecord]:
        """The configured cameras that have a stream URL, by id."""
        with self.database.session() as session:
            return list(session.scalars(select(CameraRecord).where(CameraRecord.stream_url.is_not(None))
                                        .order_by(CameraRecord.id)))

    def configured(self) -> list[CameraRecord]:
        """Every configured camera, by id."""
        with self.database.session() as session:
            return list(session.scalars(select(CameraRecord).order_by(CameraRecord.id)))

    def with_alerts(self) -> set[str]:
        """Ids of the cameras that raised an alert, configured or not."""
        with self.database.session() as session:
            return set(session.scalars(select(AlertRecord.camera_id).distinct()))

    def owned_by(self, *, owner: str) -> set[str]:
        """Ids of the cameras the key of this name owns."""
        with self.database.session() as session:
            return set(session.scalars(select(CameraRecord.id).where(CameraRecord.owner == owner)))

    @contextmanager
    def remove(self, *, camera_id: str) -> Iterator[tuple[CameraRecord | None, int]]:
        """Delete a camera's settings (its alerts stay) and yield what they were (None: never configured) and how
        many alerts it keeps, inside the transaction (the caller's ownership check and audit entry commit with it)."""
        with self.database.session() as session:
            row = session.get(CameraRecord, camera_id, with_for_update=True)
            kept = session.scalar(select(func.count()).select_from(AlertRecord)
                                  .where(AlertRecord.camera_id == camera_id)) or 0
            if row is not None:
                session.execute(delete(CameraRecord).where(CameraRecord.id == camera_id)
                                .execution_options(synchronize_session=False))
            yield row, int(kept)

    def get(self, *, camera_id: str) -> CameraRecord | None:
        """The camera's stored settings, if it was ever configured."""
        with self.database.session() as session:
            return session.get(CameraRecord, camera_id)

    def opening(self, *, camera_id: str) -> tuple[CameraRecord | None, int]:
        """The camera's stored settings (None: never configured) and its epoch (0: never deleted or reset), in
        one query: what a process reads when it starts tracking the camera (see `CameraEpochs`)."""
        key = select(literal(camera_id, String(100)).label("id")).subquery()
        query = (select(CameraRecord, CameraEpochRecord.epoch).select_from(key)
                 .outerjoin(CameraRecord, CameraRecord.id == key.c.id)
                 .outerjoin(CameraEpochRecord, CameraEpochRecord.camera_id == key.c.id))
        with self.database.session() as session:
            row, epoch = session.execute(query).one()
            return row, int(epoch or 0)

    @contextmanager
    def configure(self, *, camera_id: str, webhook_url: str | None, webhook_secret: str | None,
                  rule: dict[str, object], tiling: str | None, owner: str | None = None,
                  stream_url: str | None = None) -> Iterator[CameraRecord]:
        """Store a camera's settings (the secret, and the stream URL's credentials, encrypted) and yield them inside
        the transaction (what the caller does there, an ownership check or an audit entry, commits with them).
        `owner` is kept only for a camera configured for the first time; the row yielded carries the owner it had."""
        with self.database.session() as session:
            row = session.get(CameraRecord, camera_id, with_for_update=True) or CameraRecord(
                id=camera_id, rule={}, owner=owner)
            row.webhook_url = webhook_url
            row.webhook_secret = self.secrets.seal(webhook_secret) if webhook_secret is not None else None
            row.rule = rule
            row.tiling = tiling
            row.stream_url, credentials = _split_credentials(stream_url)
            row.stream_credentials = self.secrets.seal(credentials) if credentials is not None else None
            row.updated_at = utcnow()
            session.add(row)
            session.flush()
            yield row

    @contextmanager
    def add_alerts(self, *, alerts: Sequence[Alert], image_sha256: str, model_versions: dict[str, str],
                   image_format: str | None = None, actor: str | None = None) -> Iterator[None]:
        """Keep the alerts raised on one frame sent by the key named `actor`; the caller's work inside (audit
        entries) commits with them."""
        with self.database.session() as session:
            for alert in alerts:
                x1, y1, x2, y2 = alert.box
                session.add(AlertRecord(
                    id=alert.alert_id, kind=alert.kind, camera_id=alert.camera_id, class_name=alert.class_name,
                    tracker_id=alert.tracker_id, first_seen=alert.first_seen, raised_at=alert.raised_at,
                    frames=alert.frames, x1=x1, y1=y1, x2=x2, y2=y2, confidence=alert.confidence,
                    image_sha256=image_sha256, image_format=image_format, model_versions=model_versions,
                    actor=actor))
            session.flush()
            yield

    def expire_snapshots(self, *, cutoff: dt.datetime) -> tuple[int, list[tuple[str, str]]]:
        """Forget the frames of acknowledged alerts raised before `cutoff` (the alerts stay, without a snapshot);
        return how many alerts lost theirs and the (sha256, format) of the frames no alert keeps any more. Joins
        this thread's open transaction (a purge's), if any; an unacknowledged alert keeps its frame."""
        open_session = self.database.open_session()
        with nullcontext(open_session) if open_session is not None else self.database.session() as session:
            rows = session.scalars(select(AlertRecord).where(
                AlertRecord.acknowledged_at.is_not(None), AlertRecord.created_at < cutoff,
                AlertRecord.image_format.is_not(None))).all()
            frames = {row.image_sha256: str(row.image_format) for row in rows}
            for row in rows:
                row.image_format = None
            session.flush()
            still_kept = set(session.scalars(select(AlertRecord.image_sha256).where(
                AlertRecord.image_sha256.in_(frames), AlertRecord.image_format.is_not(None)))) if frames else set()
            return len(rows), [(sha, kind) for sha, kind in frames.items() if sha not in still_kept]

    def alert(self, *, alert_id: str, visibility: Visibility | None = None) -> AlertRecord | None:
        """The alert, if there is one and `visibility` admits it (None: every alert)."""
        with self.database.session() as session:
            row = session.get(AlertRecord, alert_id)
            return row if row is not None and _admits(visibility, row) else None

    @contextmanager
    def acknowledge(self, *, alert_id: str, actor: str, note: str | None, at: dt.datetime,
                    verdict: str | None = None,
                    visibility: Visibility | None = None) -> Iterator[tuple[AlertRecord | None, bool]]:
        """Acknowledge an alert unless it was already; yield it (None if there is no such alert, or `visibility`
        does not admit it) and whether this call changed it, inside the transaction (the caller's audit entry
        commits with it).

        With a `verdict` (true or false), the verdict is recorded unless the alert has one, and the alert is
        acknowledged too if nobody had: an alert acknowledged without a verdict may still get one, once."""
        with self.database.session() as session:
            # Who sent an alert's frame and its camera never change: checked once, before the update.
            found = session.get(AlertRecord, alert_id)
            if found is None or not _admits(visibility, found):
                yield None, False
                return
            # Conditional, so that of two concurrent acknowledgements (or verdicts) exactly one wins.
            unacknowledged = AlertRecord.acknowledged_at.is_(None)
            if verdict is not None:
                changed = session.execute(
                    update(AlertRecord).where(AlertRecord.id == alert_id, AlertRecord.verdict.is_(None))
                    .values(verdict=verdict, verdict_at=at, verdict_by=actor, verdict_note=note)
                    .execution_options(synchronize_session=False))
                if getattr(changed, "rowcount", 0):  # the row is this transaction's now
                    session.execute(update(AlertRecord).where(AlertRecord.id == alert_id, unacknowledged)
                                    .values(acknowledged_at=at, acknowledged_by=actor, ack_note=note)
                                    .execution_options(synchronize_session=False))
            else:
                changed = session.execute(
                    update(AlertRecord).where(AlertRecord.id == alert_id, unacknowledged)
                    .values(acknowledged_at=at, acknowledged_by=actor, ack_note=note)
                    .execution_options(synchronize_session=False))
            row = session.get(AlertRecord, alert_id, populate_existing=True)
            yield row, bool(getattr(changed, "rowcount", 0))

    def alerts(self, *, camera_id: str | None = None, since: dt.datetime | None = None,
               until: dt.datetime | None = None, acknowledged: bool | None = None, kind: str | None = None,
               classes: Collection[str] | None = None, verdict: Literal["true", "false", "none"] | None = None,
               limit: int = 50, offset: int = 0, visibility: Visibility | None = None) -> list[AlertRecord]:
        """Alerts, newest first, of one camera or of all, raised in a time span (since inclusive, until exclusive),
        acknowledged or not, of one kind, of some classes (an empty collection: none), with a verdict or without;
        of those `visibility` admits (None: every alert)."""
        query = select(AlertRecord).order_by(AlertRecord.created_at.desc(), AlertRecord.id).limit(limit).offset(offset)
        if camera_id:
            query = query.where(AlertRecord.camera_id == camera_id)
        if since is not None:
            query = query.where(AlertRecord.created_at >= since)
        if until is not None:
            query = query.where(AlertRecord.created_at < until)
        if acknowledged is not None:
            query = query.where(AlertRecord.acknowledged_at.is_not(None) if acknowledged
                                else AlertRecord.acknowledged_at.is_(None))
        if kind is not None:
            query = query.where(AlertRecord.kind == kind)
        if classes is not None:
            query = query.where(AlertRecord.class_name.in_(list(classes)))
        if verdict is not None:
            query = query.where(AlertRecord.verdict.is_(None) if verdict == "none" else AlertRecord.verdict == verdict)
        if visibility is not None:
            query = query.where(visibility.clause(actor=AlertRecord.actor, site=None, camera=AlertRecord.camera_id))
        with self.database.session() as session:
            return list(session.scalars(query))


def _admits(visibility: Visibility | None, row: AlertRecord) -> bool:
    """`Visibility.admits` for an alert: its frame's sender and its camera (an alert has no site)."""
    return visible(visibility, actor=row.actor, site=None, camera=row.camera_id)


def _split_credentials(url: str | None) -> tuple[str | None, str | None]:
    """(the URL without `user:password@`, that `user:password` or None)."""
    if url is None:
        return None, None
    parts = urllib.parse.urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), userinfo
