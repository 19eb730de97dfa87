"""The service's settings: one object, read from `HAZARDVISION_*` environment variables or a `.env` file.

Nested settings take a double underscore: `HAZARDVISION_WEBHOOKS__MAX_ATTEMPTS=3`. Environment
variables win over the file; a misspelt key in the file is an error, not a silent default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hazardvision.images import DEFAULT_MAX_ASPECT_RATIO, DEFAULT_MAX_PIXELS
from hazardvision.packs.card import Precision
from hazardvision.service.native_heap import MAX_MMAP_THRESHOLD
from hazardvision.service.profiles import ClientProfile
from hazardvision.service.task_images import LabelStudioSettings
from hazardvision.video.alerts import AlertRule
from hazardvision.video.selection import SelectionSettings
from hazardvision.video.tracking import TrackerSettings
from hazardvision.video.webhooks import WebhookSettings

MIB = 1024 * 1024
FALSE_ALARM_SCORE, FALSE_ALARM_SCENE, FALSE_ALARM_PLACE = 0.85, 0.98, 0.5
"""Defaults of `false_alarm_score`, `false_alarm_scene` and `false_alarm_place`, chosen with
benchmarks/false_alarms.py on the val splits (README)."""


def _default_workers() -> int:
    # a few concurrent model runs keep the cores busy between the Python steps (each run then takes its share of
    # the cores, `Settings.threads_per_model_run`, rather than every core: their thread pools would thrash).
    return max(1, min(4, os.cpu_count() or 1))


class Settings(BaseSettings):
    """Everything the service can be told at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="HAZARDVISION_", env_nested_delimiter="__", extra="forbid", frozen=True,
    )

    home: Path | None = Field(
        default=None, description="Bank folder (sample bank, API keys, audit log, scans). "
        "Default: ~/.local/share/hazardvision.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the bank database. Default: SQLite in the bank folder.")
    models: Path | None = Field(
        default=None, description="Folder of released model packs (`<pack>/<version>/`, `<pack>/ACTIVE`), under "
        "the home's models/ (the user's packs; activations are written there). Default: the bundled packs.")
    require_model_hashes: bool = Field(
        default=False, description="Refuse to load a model pack whose card records no sha256 of its model files (a "
        "pack from before hashes were recorded); false loads it with a warning. A file whose sha256 differs from "
        "its card's is refused either way.")
    datasets: Path | None = Field(
        default=None, description="Labelled datasets root the promotion gate scores a candidate and the active "
        "version on (their cards' test splits); without them, the bank's test-split cases; with neither, "
        "activation needs force. Default: ../shared/datasets beside the repository.")
    catalogue: Path | None = Field(default=None, description="Hazard catalogue YAML. Default: the bundled one.")
    precision: Precision | None = Field(
        default=None, description="Run the packs' float32 or int8 models. Default: each pack's default precision "
        "(its card's default_precision: int8 where it is within 1.5 mAP50 points of float32).")
    host: str = Field(default="127.0.0.1", description="Address `hazardvision serve` listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `hazardvision serve` listens on (0: any free).")
    max_upload_bytes: int = Field(
        default=20 * MIB, ge=1024, le=1024 * MIB,
        description="Largest request body, in bytes (a photo with its form fields); a batch may carry "
        "`max_batch_images` times this. Larger bodies get 413 while they are read.")
    max_video_bytes: int = Field(
        default=2 * 1024 * MIB, ge=1024, le=1024 * 1024 * MIB,
        description="Largest video upload (POST /v1/videos), in bytes; it streams to disk under the home's videos/ "
        "folder, and a larger body gets 413 while it arrives (its partial file is removed).")
    video_upload_seconds: float = Field(
        default=3600.0, gt=0, le=86_400,
        description="How long a video upload may take to arrive (its request's deadline instead of "
        "request_timeout_seconds; 408 past it).")
    video_workers: int = Field(
        default=1, ge=1, le=16,
        description="Video upload jobs analysed at once, each on its own thread beside the inference workers, so "
        "that photo scans keep their workers while videos are analysed; the other jobs wait in the queue.")
    video_fps: float = Field(
        default=5.0, gt=0, le=120,
        description="Frames analysed per second of video in an upload job that asks no rate of its own (its fps "
        "field), as `hazardvision scan-video --fps`.")
    max_pixels: int = Field(
        default=DEFAULT_MAX_PIXELS, ge=10_000, le=400_000_000,
        description="Largest photo, in pixels, read from its header before decoding (413 above).")
    max_aspect_ratio: float = Field(
        default=DEFAULT_MAX_ASPECT_RATIO, ge=1, le=100_000,
        description="Longest over shortest side of a photo the detector takes, read from its header (422 above).")
    max_decode_bytes: int | None = Field(
        default=None, ge=1 * MIB, le=64 * 1024 * MIB,
        description="Most memory one photo's decode may hold, in bytes, estimated from its header (size, bit depth, "
        "channels) before decoding (413 above). Default: 3 times the 8-bit RGB size of a photo of max_pixels, which "
        "every decode of such a photo stays under.")
    max_batch_pixels: int = Field(
        default=4 * DEFAULT_MAX_PIXELS, ge=10_000, le=4_000_000_000,
        description="Most pixels of all the photos of one POST /v1/scans/batch together, read from their headers "
        "before decoding: the photos past it get 413 each, the others are scanned. Default: four photos of "
        "max_pixels.")
    max_batch_images: int = Field(default=16, ge=1, le=256, description="Most photos in one POST /v1/scans/batch.")
    request_timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600,
        description="A request still unanswered after this long gets 503 (408 while its body is still arriving).")
    activation_timeout_seconds: float = Field(
        default=900.0, gt=0, le=7200,
        description="The deadline of POST /v1/models/{pack}/activate, whose gate scores the candidate and the "
        "active version on every test split before it answers (minutes on a small machine).")
    inference_workers: int = Field(
        default_factory=_default_workers, ge=1, le=64,
        description="Model runs at once, in their own threads (onnxruntime releases the GIL). Default: the cores, "
        "at most 4.")
    model_threads: int = Field(
        default=0, ge=0, le=64,
        description="Threads each model run uses (onnxruntime's intra-op threads). 0: the cores shared among the "
        "inference workers, at least 1. Runs at once that each take every core (onnxruntime's default) fight over "
        "the cores: on two cores one thread each gave 8 clients 1.29x the images a second and one client 0.87x; "
        "set it to the cores where one client at a time is the rule.")
    frame_workers: int = Field(
        default=1, ge=0, le=16,
        description="Threads of their own for camera frames (posted, and read from streams): their decode and "
        "model runs, beside the inference workers, so that frames never queue behind photo scans and photo scans "
        "keep every inference worker. 0: frames share the inference workers with photo scans, in order of "
        "arrival.")
    photo_nice: int = Field(
        default=10, ge=0, le=19,
        description="How much lower the photo scans' threads run than the frames' (Linux nice; 0: the same), so "
        "that a camera's frame gets the CPU before photos when both want it; applies while frame_workers > 0.")
    malloc_arenas: int = Field(
        default=2, ge=0, le=64,
        description="Most malloc arenas the service's threads share (glibc; 0: glibc's default, up to eight a "
        "core). Memory freed in one arena stays there: with glibc's defaults the soak benchmark's server grew "
        "5.8% in ten minutes, with two and malloc_mmap_threshold_bytes at 4 MiB 1.2% (at 0.90x the images a "
        "second).")
    malloc_mmap_threshold_bytes: int = Field(
        default=4 * 1024 * 1024, ge=0, le=MAX_MMAP_THRESHOLD,
        description="Buffers of at least this many bytes (decoded photos, model tensors) are mapped for their "
        "own use and handed back to the system when freed (glibc; 0: glibc's default, a threshold that rises "
        "to 32 MiB, after which such buffers stay in the arenas).")
    batch_window_ms: float = Field(
        default=0.0, ge=0, le=1000,
        description="How long a photo waits for others to share its model run, in milliseconds. At 0, photos "
        "still share runs while every inference worker is busy (no added wait); more fills batches when idle.")
    max_batch_size: int = Field(
        default=8, ge=1, le=64, description="Most photos scanned in one model run (1 turns batching off).")
    similar_cases: int = Field(
        default=5, ge=0, le=100, description="Similar past cases per finding (0: none).")
    similar_min_score: float | None = Field(
        default=None, ge=-1, le=1, description="Only similar cases at least this similar (cosine).")
    false_alarm_score: float | None = Field(
        default=FALSE_ALARM_SCORE, ge=-1, le=1, description="A finding whose box matches a rejected finding of its "
        "class at least this closely (cosine of their detector features), on a photo of the same scene (see "
        "false_alarm_scene), is flagged `likely_false_alarm`; None: "
        "never (benchmarks/false_alarms.py chose the default on the val splits).")
    false_alarm_scene: float = Field(
        default=FALSE_ALARM_SCENE, ge=-1, le=1, description="...on a photo whose scene looks this alike (cosine of "
        "the photos' grey thumbnails, upright or mirrored; -1: any photo).")
    false_alarm_place: float = Field(
        default=FALSE_ALARM_PLACE, ge=-1, le=1, description="...at the same place in the frame: IoU of the two "
        "boxes in photo-relative coordinates, the rejected one upright or mirrored (-1: anywhere).")
    suppress_false_alarms: bool = Field(
        default=False, description="Leave findings flagged as likely false alarms out of scans (they stay among the "
        "scan's objects).")
    frame_confidence: float = Field(
        default=0.1, ge=0, le=1,
        description="Lowest detector confidence kept for video frames: low, because the tracker uses weak "
        "detections to keep tracks alive; tracks start and hold from each class's operating threshold.")
    tracker: TrackerSettings = Field(default_factory=TrackerSettings, description="How frames' detections "
                                     "become tracks (ByteTrack's defaults).")
    alert_rule: AlertRule = Field(default_factory=AlertRule, description="Alert rule of a camera that was "
                                  "never configured with PUT /v1/cameras/{camera_id}.")
    frozen_seconds: float = Field(
        default=10.0, gt=0, le=86_400, description="How long a camera's decoded picture must stay identical (no "
        "sensor noise) before the camera is reported frozen (a camera alert; frames then skip detection).")
    sync_seconds: float = Field(
        default=2.0, ge=0, le=3600, description="How often the service checks whether another service process of "
        "its database changed the active models or the similar-case index (then it reloads them); 0: never.")
    max_cameras: int = Field(
        default=256, ge=1, le=100_000,
        description="Cameras tracked in memory at once; the one idle longest is forgotten first.")
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings, description="How alert webhooks are "
                                      "queued and retried.")
    stream_networks: str | None = Field(
        default=None, max_length=10_000, pattern=r"^[0-9A-Fa-f.:/, ]+$",
        description="Networks (comma-separated CIDRs) the hosts of camera stream URLs must resolve into, e.g. "
        "'10.20.0.0/16,127.0.0.0/8'; none: private ranges and loopback (link-local, such as the metadata service "
        "169.254.169.254, is never in the default; 0.0.0.0/0 allows any IPv4 host).")
    stream_lease_seconds: float = Field(
        default=15.0, ge=1, le=3600,
        description="How long a service process holds a camera stream without renewing its lease (it renews every "
        "fifth of it); a process that stops renewing loses the stream to another process of the database then.")
    stream_selection: SelectionSettings = Field(
        default_factory=SelectionSettings, description="Which frames of a camera stream are analysed: rate target "
        "and motion gate.")
    client_profiles: dict[str, ClientProfile] = Field(
        default_factory=dict, description="API key name -> what that key's DeepStack or Roboflow Inference client "
        "is sent (labels, threshold, most predictions) and whether its requests are kept as scans or only audited "
        "in summaries, e.g. HAZARDVISION_CLIENT_PROFILES='{\"frigate\": {\"min_confidence\": 0.4, "
        "\"record\": \"summary\"}}'.")
    default_client_profile: ClientProfile = Field(
        default_factory=ClientProfile, description="The client profile of every key not in client_profiles.")
    label_studio: LabelStudioSettings = Field(
        default_factory=LabelStudioSettings, description="How the service answers Label Studio as its ML backend "
        "(/label-studio): its host and token for task images, label mapping, most tasks per request, e.g. "
        "HAZARDVISION_LABEL_STUDIO__URL=http://label-studio:8080.")
    session_hours: float = Field(default=12, gt=0, le=24 * 30, description="How long a signed-in page's "
                                 "session lasts (it ends sooner at sign-out or when its key is revoked).")
    secure_cookies: bool = Field(default=False, description="Mark the session cookie Secure even on plain HTTP "
                                 "(it always is on HTTPS): set it behind a TLS-terminating proxy.")
    metrics_public: bool = Field(
        default=False, description="Serve /metrics without an API key (for a Prometheus scraper on a private "
        "network); false (the default) asks for any valid key (a scraper's `authorization` bearer credentials).")
    failed_sign_in_limit: int = Field(
        default=10, ge=1, le=1_000_000, description="Failed sign-ins (unknown or revoked bearer keys, POST "
        "/v1/session) one client address may make within failed_sign_in_window_seconds; past it the address gets "
        "429 with Retry-After, whatever key it sends. Counted in each service process's memory.")
    failed_sign_in_window_seconds: float = Field(
        default=60, gt=0, le=86_400, description="The window of failed_sign_in_limit, in seconds.")
    client_address_header: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9-]+$",
        description="Header whose last entry is the client's address, set by a trusted reverse proxy (e.g. "
        "X-Forwarded-For), for the sign-in limit; none: the connection's peer. Never set it without such a proxy: "
        "clients could then pick their own address.")
    scan_scope: Literal["own", "all"] = Field(
        default="own", description="Which scans, photos, findings, reviews, inspections, rectifications and alerts "
        "a key reads and changes. own (the default): an admin's every one; any other key those it made (an alert: "
        "whose frame it sent), those at the sites it was created with (`keys create --site`; an inspector or ml key "
        "without sites reads every site; alerts have no site) and, for a pipeline, those of the cameras it owns; "
        "another's answers 404. all: every key reads every one (as before scopes existed).")
    client_timeout_seconds: float = Field(
        default=15, gt=0, le=3600, description="How long a connection may take to send a request's headers (from "
        "its opening, or from the first byte after a response), and the longest silence while its body arrives; "
        "then it is closed (408 once it sent part of a request). Cuts idle and slow (slowloris) connections.")
    keep_alive_seconds: int = Field(
        default=5, ge=1, le=3600, description="How long an idle keep-alive connection stays open after a response.")
    max_connections: int = Field(
        default=1024, ge=2, le=1_000_000, description="Most connections open at once (idle ones count); the one past "
        "it is answered 503 with Retry-After and closed, and so is a request past it in progress. Keep it under the "
        "process's open-file limit (`ulimit -n`).")
    max_header_bytes: int = Field(
        default=16384, ge=1024, le=1_048_576, description="Largest request line and headers; larger ones get 400.")
    keep_photo_location: bool = Field(
        default=False, description="Keep the EXIF and XMP GPS position of scanned photos in the copies the service "
        "stores. False (the default): the GPS IFD and the XMP GPS fields are removed before a photo is stored (the "
        "rest of EXIF and XMP, orientation included, and the pixels stay); the scan records the SHA-256 of the bytes "
        "uploaded and of those stored.")
    scan_retention_days: float | None = Field(
        default=None, gt=0, le=36_500, description="Delete scans older than this many days, with their photos: "
        "reviews and audit records stay, and so do scans filed in an inspection, whose photo is a sample-bank "
        "case or with a rectification not yet verified, and the frames of alerts not yet acknowledged. The files "
        "(video, event snapshots) of video jobs that finished before then go too; the jobs and their events stay. "
        "Checked every retention_check_seconds; each purge is audited as scan.purge. None (the default): kept for "
        "ever.")
    retention_check_seconds: float = Field(
        default=3600, ge=1, le=7 * 86_400, description="How often the service deletes what is past "
                                                       "scan_retention_days (the first time at start-up).")
    audit_key_file: Path | None = Field(
        default=None, description="The audit chain's MAC key (created on first use, mode 600). Default: "
        "HOME/audit/anchor.key. Keep it on another volume than the database so that whoever can write one cannot "
        "rewrite the chain; set it in the environment so that the CLI uses the same key.")
    audit_anchor_file: Path | None = Field(
        default=None, description="The audit anchor: the furthest head (record count and hash, MAC'ed) the chain "
        "ever committed, which `audit verify` requires the database to hold (a database restored from an older copy "
        "is caught). Default: HOME/audit/head.json.")
    audit_witness_file: Path | None = Field(
        default=None, description="An append-only JSON-lines file outside the home that gets each head (count, "
        "hash, time, MAC); `hazardvision audit verify --witness FILE` checks the chain against it, which catches a "
        "rollback of every file of the home. None (the default): no file witness.")
    audit_witness_syslog: bool = Field(
        default=False, description="Send each head to syslog too (facility auth, tag hazardvision-audit).")
    audit_witness_seconds: float = Field(
        default=0, ge=0, le=86_400, description="0 (the default): the witnesses get the head after each append "
        "commits; more: the service sends them the head every this many seconds when it has moved (fewer lines, "
        "and a rollback of that last interval goes unseen by them).")
    denied_audit_limit: int = Field(
        default=10, ge=0, le=10_000, description="Denied requests (401, 403) audited per client address and "
        "minute (`request.denied`: key or anonymous, method, path, reason); past it one `request.denied.limited` "
        "record, and the next minute's first record counts those left out. 0: none audited.")
    log_level: str = Field(
        default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="DEBUG, INFO, WARNING or ERROR.")

    @property
    def threads_per_model_run(self) -> int:
        """`model_threads`, or else the cores shared among the inference workers (at least 1)."""
        return self.model_threads or max(1, (os.cpu_count() or 1) // self.inference_workers)


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, then `env_file` (a `.env` file of HAZARDVISION_* lines), then defaults;
    `overrides` (command-line options) win over all of them."""
    chosen: dict[str, Any] = {key: value for key, value in overrides.items() if value is not None}
    return Settings(_env_file=env_file, **chosen)  # type: ignore[call-arg]  # pydantic-settings' own keyword
