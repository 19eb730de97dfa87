"""`Runtime`: everything one service instance works with, and the flows the routes call.

Blocking work never runs on the event loop: inference (and decoding) in bounded thread pools
through the micro-batchers (photo scans in one, camera frames in their own), database and file work
in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

import anyio.to_thread

from hazardvision.access import ApiKeys, KeyRecord, Permission, SignedIn, check
from hazardvision.annotate import HazardAnnotator, encode_jpeg
from hazardvision.bank.bank import SampleBank
from hazardvision.catalogue import load_catalogue
from hazardvision.data.cameras import Cameras
from hazardvision.data.generations import Generations, Kind
from hazardvision.data.scans import Visibility
from hazardvision.data.service_records import CameraRecord
from hazardvision.data.similar_cases import SimilarCaseRecords
from hazardvision.data.stream_leases import StreamLeases
from hazardvision.data.webhook_failures import WebhookFailures
from hazardvision.datasets.label_names import label_classes
from hazardvision.detections import Detections
from hazardvision.errors import (
    Forbidden,
    HazardVisionError,
    ImageTooLarge,
    Unauthenticated,
    UnknownCase,
    UnknownModel,
)
from hazardvision.images import DecodedImage, decode_image, read_header
from hazardvision.packs.promotion import ClassComparison
from hazardvision.packs.promotion import Comparison as PromotionComparison
from hazardvision.packs.registry import PackRegistry
from hazardvision.packs.tiling import TilingMode
from hazardvision.resources import default_datasets
from hazardvision.results import Box, ModelRef, QualityInfo, ScanResult
from hazardvision.scan import result_detections
from hazardvision.service.archive import ScanArchive
from hazardvision.service.audit_trail import DeniedRequests, audit_log
from hazardvision.service.batcher import MicroBatcher
from hazardvision.service.camera_streams import CameraStreams
from hazardvision.service.cameras import CameraHub, CameraStream
from hazardvision.service.errors import error_body, status_of
from hazardvision.service.index_sync import IndexSync
from hazardvision.service.inspection import SiteInspections
from hazardvision.service.metrics import ServiceMetrics
from hazardvision.service.profiles import ClientPrediction, ClientProfile, Recording, client_view
from hazardvision.service.promotions import record_promotion, record_refusal
from hazardvision.service.rectification import HazardRectifications
from hazardvision.service.retention import RETENTION_ACTOR, ScanRetention
from hazardvision.service.review import FindingReviews
from hazardvision.service.schemas.cameras import (
    CameraConfig,
    CameraDeleted,
    CameraReset,
    CameraStatus,
    CameraView,
    FrameResponse,
    RaisedAlert,
    StreamView,
    TrackedObject,
)
from hazardvision.service.schemas.common import ErrorBody
from hazardvision.service.schemas.models import ActivateRequest, ActivateResponse, Comparison
from hazardvision.service.schemas.scans import BatchItem, BatchResponse, ScanContext, ScanResponse
from hazardvision.service.scopes import reads_camera
from hazardvision.service.serving import ModelHost, ServingState
from hazardvision.service.settings import Settings
from hazardvision.service.sign_ins import FailedSignIns
from hazardvision.service.summaries import ScanSummaries
from hazardvision.service.thread_priority import lower_this_thread
from hazardvision.service.uploads import Upload
from hazardvision.service.video_jobs import VideoJobQueue
from hazardvision.service.webhook_failures import FailedDeliveries
from hazardvision.similar.query import SimilarQuery
from hazardvision.similar.thumbnails import thumbnail_path
from hazardvision.video.sources import DEFAULT_STREAM_NETWORKS, StreamPolicy
from hazardvision.video.webhooks import WebhookSender

log = logging.getLogger("hazardvision.service")

STREAM_ACTOR = "camera-stream"
"""Who the audit log names for the alerts of a stream the service reads itself."""
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class ScanOptions:
    """How a photo is scanned; photos of a batch that ask alike share one scanner call."""

    tiling: TilingMode | None = None
    confidence: float | None = None
    """Overrides every class's operating threshold."""
    packs: tuple[str, ...] | None = None
    """Only these packs (None: every pack that serves)."""
    similar: bool = True
    """Search similar cases (when the service has an index); off is the fast path."""


@dataclass(frozen=True)
class _Photo:
    image: DecodedImage
    source: str
    decode_ms: float
    options: ScanOptions = ScanOptions()


@dataclass(frozen=True)
class ClientScan:
    """A photo scanned for a protocol client (DeepStack, Roboflow Inference), and what its profile lets it see."""

    result: ScanResult
    profile: ClientProfile
    class_ids: dict[str, int]
    """Class name -> its id among the packs that scanned (in their classes' order)."""
    scan_id: str | None
    """The recorded scan, when the profile keeps scans."""

    @property
    def predictions(self) -> list[ClientPrediction]:
        return client_view(self.result, self.profile, self.class_ids, stored=self.scan_id is not None)


Item = TypeVar("Item")
Key = TypeVar("Key", bound=Hashable)
Done = TypeVar("Done")


def per_tiling_mode(items: Sequence[Item], mode_of: Callable[[Item], Key],
                    run: Callable[[list[Item], Key], Sequence[Done]]) -> list[Done]:
    """`run` once per tiling mode (or other way of scanning) the batch's items ask for, results back in the
    batch's order."""
    results: dict[int, Done] = {}
    for mode in dict.fromkeys(map(mode_of, items)):
        chosen = [i for i, item in enumerate(items) if mode_of(item) == mode]
        results.update(zip(chosen, run([items[i] for i in chosen], mode), strict=True))
    return [results[i] for i in range(len(items))]


def _scan_batch(state: ServingState, photos: Sequence[_Photo]) -> list[ScanResult]:
    """Scan a batch, one scanner call per way of scanning asked for."""
    return per_tiling_mode(photos, lambda photo: photo.options, lambda chosen, how: state.scanner_for(
        how.packs, similar=how.similar).scan(
        [p.image for p in chosen], [p.source for p in chosen], decode_ms=[p.decode_ms for p in chosen],
        confidence=how.confidence, tiling=how.tiling))


class Runtime:
    """The bank, keys, audit log, models, batchers, cameras and metrics of one service instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bank = SampleBank(settings.home, url=settings.database_url)
        self.audit = audit_log(self.bank, settings)
        self._adopt_file_audit_log()
        self.keys = ApiKeys(self.bank, self.audit)
        self.sign_ins = FailedSignIns(settings.failed_sign_in_limit, settings.failed_sign_in_window_seconds)
        self.denied = DeniedRequests(self.audit, settings.denied_audit_limit,
                                     address_header=settings.client_address_header)
        self.catalogue = load_catalogue(settings.catalogue)
        label_classes([], self.catalogue, settings.label_studio.labels)  # a class the catalogue lacks fails now
        self.registry = PackRegistry.at(self.bank.home, settings.models,  # activations write to the home
                                        require_hashes=settings.require_model_hashes)
        query = (SimilarQuery(k=settings.similar_cases, min_score=settings.similar_min_score,
                              false_alarm_score=settings.false_alarm_score,
                              false_alarm_scene=settings.false_alarm_scene,
                              false_alarm_place=settings.false_alarm_place,
                              suppress_false_alarms=settings.suppress_false_alarms)
                 if settings.similar_cases else None)
        # Photo scans yield the CPU to frames when frames have workers of their own (see thread_priority).
        photo_nice = settings.photo_nice if settings.frame_workers else 0
        self.host = ModelHost(self.registry, self.catalogue, self.bank, precision=settings.precision, query=query,
                              datasets=settings.datasets or default_datasets(), photo_nice=photo_nice,
                              model_threads=settings.threads_per_model_run)
        self.metrics = ServiceMetrics()
        self.inference = ThreadPoolExecutor(settings.inference_workers, thread_name_prefix="hazardvision-inference",
                                            initializer=lower_this_thread, initargs=(photo_nice,))
        window = settings.batch_window_ms / 1000
        self.scan_batches: MicroBatcher[ServingState, _Photo, ScanResult] = MicroBatcher(
            _scan_batch, self.inference, window_seconds=window, max_size=settings.max_batch_size,
            max_concurrent=settings.inference_workers, observe=self.metrics.batch("scan"))
        # Frames get workers of their own, so that a camera keeps its rate while photo scans queue.
        self.frame_inference = (ThreadPoolExecutor(settings.frame_workers, thread_name_prefix="hazardvision-frames")
                                if settings.frame_workers else self.inference)
        self.frame_batches: MicroBatcher[ServingState, tuple[DecodedImage, TilingMode | None], Detections] = \
            MicroBatcher(
            self._frame_batch, self.frame_inference, window_seconds=window, max_size=settings.max_batch_size,
            max_concurrent=settings.frame_workers or settings.inference_workers, observe=self.metrics.batch("frame"))
        self.archive = ScanArchive(self.bank, self.audit, keep_location=settings.keep_photo_location)
        self.retention = ScanRetention(self.bank, self.audit)
        self.index_sync = IndexSync(self._sync_index)
        self.host.on_index_replaced = self.index_sync.reload  # a rebuilt index is read off the scans' threads
        self.reviews = FindingReviews(self.bank, self.archive, self.audit, self.catalogue,
                                      on_change=self._after_review)
        self.inspections = SiteInspections(self.bank.database, self.audit)
        self.rectifications = HazardRectifications(self.bank.database, self.audit)
        self.webhooks = WebhookSender(settings.webhooks)
        self.metrics.watch_webhooks(self.webhooks.stats)
        self.webhook_failures = FailedDeliveries(Cameras(self.bank.database), WebhookFailures(self.bank.database),
                                                 self.webhooks, self.audit)
        self.stream_policy = StreamPolicy.of(settings.stream_networks.split(",") if settings.stream_networks
                                             else DEFAULT_STREAM_NETWORKS)
        self.cameras = CameraHub(self.bank, self.audit, self.catalogue, self.webhooks, tracker=settings.tracker,
                                 default_rule=settings.alert_rule, max_cameras=settings.max_cameras,
                                 frozen_seconds=settings.frozen_seconds, failures=self.webhook_failures,
                                 stream_policy=self.stream_policy)
        self.streams = CameraStreams(
            self.cameras.records, StreamLeases(self.bank.database), policy=self.stream_policy,
            selection=settings.stream_selection, lease_seconds=settings.stream_lease_seconds,
            analyse=self._stream_frame, ready=lambda: self.host.ready, max_pixels=settings.max_pixels)
        self.videos = VideoJobQueue(self.bank, self.audit, self.catalogue, self.host, workers=settings.video_workers,
                                    default_fps=settings.video_fps, max_pixels=settings.max_pixels)
        self.annotator = HazardAnnotator(self.catalogue)
        for name, profile in {"the default key": settings.default_client_profile, **settings.client_profiles}.items():
            profile.check(self.catalogue, name)
        self.summaries = ScanSummaries(self.audit)
        self._loading: asyncio.Future[ServingState] | None = None
        self._following: asyncio.Task[None] | None = None
        self._purging: asyncio.Task[None] | None = None
        self._witnessing: asyncio.Task[None] | None = None

    def _adopt_file_audit_log(self) -> None:
        """A home from before the database kept the audit chain: copy its file log in, or say why not."""
        try:
            adopted = self.audit.adopt()
        except HazardVisionError as error:
            log.warning("the audit log was not adopted: %s", error)
            return
        if adopted:
            log.info("adopted %d audit records from %s into the database", adopted, self.audit.legacy_path)

    # -- life cycle

    def start(self) -> None:
        """Load the models in the background; /readyz says when they are in. Loading runs on the event loop's
        default threads, not the inference workers: the frames' sessions must not be born at the photo scans'
        lower priority (see thread_priority)."""
        self._loading = asyncio.get_running_loop().run_in_executor(None, self.host.load)
        self._loading.add_done_callback(self._loaded)
        self.videos.resume()  # jobs wait for the models on their own threads
        self.streams.start()  # streams are taken once the models are in
        if self.settings.sync_seconds:
            self._following = asyncio.get_running_loop().create_task(self._follow_other_processes())
        if self.settings.scan_retention_days is not None:
            self._purging = asyncio.get_running_loop().create_task(self._purge_periodically(
                self.settings.scan_retention_days))
        if self.settings.audit_witness_seconds and self.audit.witnesses:
            self._witnessing = asyncio.get_running_loop().create_task(self._witness_periodically(
                self.settings.audit_witness_seconds))

    async def _witness_periodically(self, seconds: float) -> None:
        """Send the audit chain's head to the witnesses every `seconds` when it has moved."""
        while True:
            try:
                await self.offload(self.audit.export_head)
            except HazardVisionError as error:
                log.warning("the audit head was not sent to its witnesses: %s", error)
            await asyncio.sleep(seconds)

    async def _purge_periodically(self, days: float) -> None:
        """Delete what is past the retention period now, then every retention_check_seconds."""
        while True:
            try:
                report = await self.offload(self.retention.purge, older_than_days=days, actor=RETENTION_ACTOR)
                if report.scans_deleted or report.snapshots_removed or report.video_jobs_purged:
                    log.info("retention: deleted %d scans (%d photos), %d alert snapshots and the files of %d video "
                             "jobs older than %s days; kept %d", report.scans_deleted, report.photos_removed,
                             report.snapshots_removed, report.video_jobs_purged, days, len(report.scans_kept))
            except Exception as error:  # a database or file hiccup: say so, and try again next time
                log.warning("retention purge failed: %s: %s", type(error).__name__, error)
            await asyncio.sleep(self.settings.retention_check_seconds)

    async def _follow_other_processes(self) -> None:
        """Poll the database's generation counters; reload the models or the similar-case index when another
        process (a second service, `models promote`, `bank reindex`) changed them, and drop the trackers of
        cameras deleted or reset through another service process."""
        generations = Generations(self.bank.database)
        seen: dict[Kind, int] | None = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                now = await self.offload(generations.read)
                if seen is not None and self.host.ready:
                    if now[Kind.MODELS] != seen[Kind.MODELS]:
                        state = await loop.run_in_executor(None, self.host.follow_models)  # as in start()
                        if state is not None:
                            self.metrics.serving(state.versions)
                    if now[Kind.CASES] != seen[Kind.CASES]:
                        await loop.run_in_executor(None, self.host.follow_cases)
                    if now[Kind.CAMERAS] != seen[Kind.CAMERAS]:
                        await self._follow_camera_start_overs(seen[Kind.CAMERAS])
                if seen is None or self.host.ready:
                    seen = now
            except Exception as error:  # a database, file or model hiccup: say so, and try again next time
                log.warning("could not follow changes made by other processes: %s: %s", type(error).__name__, error)
            await asyncio.sleep(self.settings.sync_seconds)

    async def _follow_camera_start_overs(self, since: int) -> None:
        """Drop this process's trackers of the cameras deleted or reset (through any process) after the `cameras`
        generation `since`. The reader of a deleted camera's stream here stops first, as `delete_camera` does:
        a frame it had in analysis would track the deleted camera again."""
        started_over = await self.offload(self.cameras.epochs.since, since)
        reading = set(self.streams.readers) & set(started_over)
        if reading:
            await self.offload(self.streams.look)  # stops the readers of cameras deleted (or no longer streamed)
        for camera_id in sorted(reading - set(self.streams.readers)):
            stream = self.cameras.known(camera_id)  # made by a frame of the stopped reader, whatever its epoch
            if stream is not None:
                self.cameras.drop(camera_id, stream)
                log.info("camera %s was deleted: its stream is no longer read here, and its tracks are dropped",
                         camera_id)
        for camera_id in self.cameras.forget_started_over(started_over):
            log.info("camera %s was deleted or reset: its tracks start over", camera_id)

    def _loaded(self, future: asyncio.Future[ServingState]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.error("models not loaded: %s: %s", type(error).__name__, error)
            return
        self.metrics.serving(future.result().versions)
        self.index_sync.request()  # catch up with reviews a stopped (or killed) process did not index

    async def close(self) -> None:
        if self._following is not None:
            self._following.cancel()
        if self._purging is not None:
            self._purging.cancel()
        if self._witnessing is not None:
            self._witnessing.cancel()
            with contextlib.suppress(HazardVisionError):
                await self.offload(self.audit.export_head)  # the last head before the service stops
        if self._loading is not None and not self._loading.done():
            await asyncio.wait([self._loading])
        await self.offload(self.streams.close)  # their last frames' alerts still reach the webhook queue
        for summary in self.summaries.pending():
            await self.offload(self.summaries.write, summary)
        await self.offload(self.webhooks.close, 5.0)
        await self.offload(self.index_sync.close)
        await self.offload(self.videos.close)
        self.inference.shutdown(wait=True, cancel_futures=True)
        self.frame_inference.shutdown(wait=True, cancel_futures=True)
        self.bank.close()

    async def offload(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking work (database, files) in a worker thread.

        A request that times out stops waiting at once; the work itself finishes in its thread.
        """
        return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs), abandon_on_cancel=True)

    async def authenticate(self, key: str | None, address: str) -> KeyRecord:
        """The key's record; a key that fails counts against `address` (the client's), which past the limit
        gets `TooManySignIns` whatever key it sends."""
        if key is None:
            return await self.offload(self.keys.authenticate, key)
        self.sign_ins.check(address)
        try:
            return await self.offload(self.keys.authenticate, key)
        except Unauthenticated:
            self.sign_ins.failed(address)
            raise

    async def sign_in(self, key: str, address: str, lifetime: dt.timedelta) -> SignedIn:
        """A session of the key (POST /v1/session), under the same limit of failures per address."""
        self.sign_ins.check(address)
        try:
            return await self.offload(self.keys.sign_in, key, lifetime=lifetime)
        except Unauthenticated:
            self.sign_ins.failed(address)
            raise

    # -- scans

    def _decode(self, upload: Upload) -> _Photo:
        if len(upload.data) > self.settings.max_upload_bytes:
            raise ImageTooLarge(f"{upload.filename} is {len(upload.data)} bytes, above the limit of "
                                f"{self.settings.max_upload_bytes} bytes per photo")
        start = time.perf_counter()
        image = self._decode_bytes(upload.data)
        return _Photo(image, upload.filename, (time.perf_counter() - start) * 1000)

    def _decode_bytes(self, data: bytes) -> DecodedImage:
        return decode_image(data, max_pixels=self.settings.max_pixels, max_aspect_ratio=self.settings.max_aspect_ratio,
                            max_decode_bytes=self.settings.max_decode_bytes)

    async def scan(self, upload: Upload, context: ScanContext, actor: str) -> ScanResponse:
        """Scan one photo on the state current when the request came, and record it."""
        response, _ = await self.scan_once(upload, context, actor)
        return response

    async def scan_once(self, upload: Upload, context: ScanContext, actor: str,
                        idempotency_key: str | None = None) -> tuple[ScanResponse, bool]:
        """`scan`, except that a retry with the `idempotency_key` of a recorded scan of the same photo gets that
        scan back instead of a second one; also says whether it was such a replay."""
        state = self.host.current
        if idempotency_key is not None:
            sha256 = hashlib.sha256(upload.data).hexdigest()
            earlier = await self.offload(self.archive.replay, actor, idempotency_key, sha256)
            if earlier is not None:
                return earlier.response, True
        if context.site and context.enterprise:
            await self.offload(self.archive.check_place, context)
        photo = await asyncio.get_running_loop().run_in_executor(self.inference, self._decode, upload)
        options = ScanOptions(tiling=context.tiling, confidence=context.confidence)
        result = await self.scan_batches.submit(state, dataclasses.replace(photo, options=options))
        scan_id = uuid.uuid4().hex
        kept = await self.offload(self.archive.record, scan_id, actor, context, image=photo.image, data=upload.data,
                                  result=result, idempotency_key=idempotency_key)
        replayed = kept.response.scan_id != scan_id  # a concurrent retry was stored first
        if not replayed:
            self.metrics.scanned(result)
        return kept.response, replayed

    async def scan_batch(self, uploads: Sequence[Upload], context: ScanContext, actor: str) -> BatchResponse:
        """Scan several photos at once; each gets its result or its own error."""
        _ = self.host.current  # while the models load, the whole batch gets the 503

        async def scan(upload: Upload, refusal: ImageTooLarge | None) -> ScanResponse:
            if refusal is not None:
                raise refusal
            return await self.scan(upload, context, actor)

        outcomes = await asyncio.gather(*(scan(upload, refusal) for upload, refusal in
                                          zip(uploads, self._past_batch_budget(uploads), strict=True)),
                                        return_exceptions=True)
        items = []
        for upload, outcome in zip(uploads, outcomes, strict=True):
            if isinstance(outcome, HazardVisionError):
                body = ErrorBody.model_validate(error_body(type(outcome).__name__, str(outcome)))
                items.append(BatchItem(source=upload.filename, status=status_of(outcome), error=body))
            elif isinstance(outcome, Exception):  # a bug met by this photo alone: the others keep their answers
                log.error("internal error on %s: %s: %s", upload.filename, type(outcome).__name__, outcome,
                          exc_info=outcome)
                body = ErrorBody.model_validate(error_body("InternalError", "the service failed unexpectedly on this "
                                                           "photo; this is a bug, the log has the details"))
                items.append(BatchItem(source=upload.filename, status=500, error=body))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                items.append(BatchItem(source=upload.filename, status=200, scan=outcome))
        return BatchResponse(results=items)

    def profile(self, key: KeyRecord) -> ClientProfile:
        """The client profile of a key: its own, else the default one."""
        return self.settings.client_profiles.get(key.name, self.settings.default_client_profile)

    async def scan_for_client(self, upload: Upload, key: KeyRecord, protocol: str, *, pack: str | None = None,
                              min_confidence: float | None = None, profile: ClientProfile | None = None,
                              summary_target: str | None = None) -> ClientScan:
        """Scan one photo for a protocol client with `pack` (None: every pack) as the key's profile (or `profile`)
        says: kept as a scan (audited), or only counted in the key's audit summary of `summary_target` (default:
        the protocol; the fast path: no similar cases)."""
        state = self.host.current
        packs = [p for p in state.packs if pack is None or p.name == pack]
        if not packs:
            raise UnknownModel(f"no model {pack!r} serves here; the models are "
                               f"{', '.join(p.name for p in state.packs)}")
        profile = profile or self.profile(key)
        keep = profile.record is Recording.SCANS
        options = ScanOptions(confidence=profile.confidence(min_confidence),
                              packs=None if pack is None else (pack,), similar=keep)
        photo = await asyncio.get_running_loop().run_in_executor(self.inference, self._decode, upload)
        result = await self.scan_batches.submit(state, dataclasses.replace(photo, options=options))
        self.metrics.scanned(result)
        class_ids = {name: i for i, name in enumerate(dict.fromkeys(c for p in packs for c in p.card.classes))}
        if not keep:
            summary = self.summaries.add(key.name, protocol, result, profile.summary_seconds, target=summary_target)
            if summary is not None:
                await self.offload(self.summaries.write, summary)
            return ClientScan(result, profile, class_ids, None)
        scan_id = uuid.uuid4().hex
        kept = await self.offload(self.archive.record, scan_id, key.name, ScanContext(note=f"via {protocol}"),
                                  image=photo.image, data=upload.data, result=result)
        return ClientScan(kept.response, profile, class_ids, scan_id)

    def _past_batch_budget(self, uploads: Sequence[Upload]) -> list[ImageTooLarge | None]:
        """The refusal of each photo of a batch beyond its pixel budget (`max_batch_pixels`), read from the headers
        before anything is decoded: a batch never holds more decoded pixels than that at once."""
        budget, total, refusals = self.settings.max_batch_pixels, 0, []
        for upload in uploads:
            try:
                header = read_header(upload.data)
            except HazardVisionError:
                header = None  # its own decode says what is wrong with it
            pixels = header.width * header.height if header is not None else 0
            refusal = None
            if pixels <= self.settings.max_pixels:  # else its decode refuses it alone
                if total + pixels > budget:
                    refusal = ImageTooLarge(
                        f"{upload.filename} ({pixels / 1e6:.1f} megapixels) would take the batch's photos above "
                        f"{budget / 1e6:.0f} megapixels in all, the limit per request; send it in another request")
                else:
                    total += pixels
            refusals.append(refusal)
        return refusals

    async def annotated(self, scan_id: str) -> bytes:
        """The scan's photo with its detections drawn, as JPEG."""
        scan = await self.offload(self.archive.get, scan_id)
        data = await self.offload(self.archive.photo, scan)

        def draw() -> bytes:
            image = self._decode_bytes(data)
            return encode_jpeg(self.annotator.annotate(image.pixels, result_detections(scan.response)))

        return await asyncio.get_running_loop().run_in_executor(self.inference, draw)

    def thumbnail(self, case_id: int, annotation_id: int) -> Path:
        if not SimilarCaseRecords(self.bank.database).has_annotation(case_id=case_id, annotation_id=annotation_id):
            raise UnknownCase(f"case {case_id} has no annotation {annotation_id}")
        path = thumbnail_path(self.bank.home, annotation_id)
        if not path.is_file():
            raise UnknownCase(f"annotation {annotation_id} of case {case_id} has no thumbnail yet (it is made when "
                              "the similar-case index takes the annotation in)")
        return path

    # -- reviews

    def _after_review(self, case_id: int) -> None:
        self.index_sync.request([case_id])  # the review has answered; the index follows in the background

    def _sync_index(self, case_ids: set[int] | None) -> None:
        if self.host.ready:
            self.host.update_search(case_ids)

    # -- frames

    def _frame_batch(self, state: ServingState, frames: Sequence[tuple[DecodedImage, TilingMode | None]]
                     ) -> list[Detections]:
        """Detections of a batch of frames, one detector call per tiling mode."""
        return per_tiling_mode(frames, lambda frame: frame[1], lambda chosen, mode: state.detect(
            [image for image, _ in chosen], self.settings.frame_confidence, tiling=mode))

    async def frame(self, camera_id: str, upload: Upload, timestamp: float, actor: str) -> FrameResponse:
        """Detect, track and aggregate one frame; record and send the alerts it raises."""
        state = self.host.current
        photo = await asyncio.get_running_loop().run_in_executor(self.frame_inference, self._decode, upload)
        raised: list[RaisedAlert] = []
        async with self._camera(camera_id) as stream:
            stream.admit(timestamp)  # an out-of-order frame changes nothing
            quality, alerts = stream.look(photo.image, timestamp)
            # A frame that shows no scene (or a frozen one) is not shown to the detector: its tracks age.
            detections = (await self.frame_batches.submit(state, (photo.image, stream.settings.tiling)) if quality.ok
                          else Detections.empty())
            tracked, hazards = stream.update(detections, timestamp)
            alerts += hazards
            if alerts:
                raised = await self.offload(self.cameras.record_alerts, stream, alerts, actor=actor,
                                            image=photo.image, data=upload.data, versions=state.versions)
                self.metrics.alerted(alerts)
            stream.analysed(timestamp)
        return FrameResponse(camera_id=camera_id, timestamp=timestamp, frame_quality=QualityInfo.of(quality),
                             objects=self._tracked(tracked), alerts=raised,
                             models=[ModelRef(pack=p.name, version=p.version, precision=p.precision.value)
                                     for p in state.packs])

    async def _stream_frame(self, camera_id: str, upload: Upload, timestamp: float) -> FrameResponse:
        """A frame of a camera stream the service reads, through the frame path."""
        return await self.frame(camera_id, upload, timestamp, STREAM_ACTOR)

    @asynccontextmanager
    async def _camera(self, camera_id: str) -> AsyncIterator[CameraStream]:
        """The camera's stream, its lock held: a camera's frames go one at a time, each on its current stream."""
        while True:
            stream = self.cameras.known(camera_id) or self.cameras.stream(
                camera_id, *await self.offload(self.cameras.opening, camera_id))
            async with stream.lock:
                if not stream.retired:  # else reset (or forgotten) while this frame waited for it
                    yield stream
                    return

    def _tracked(self, tracked: Detections) -> list[TrackedObject]:
        packs = tracked.data.get("pack")
        ids = tracked.tracker_id if tracked.tracker_id is not None else [0] * len(tracked)
        objects = []
        for i, class_name in enumerate(tracked.class_name.tolist()):
            x1, y1, x2, y2 = (round(float(v), 2) for v in tracked.xyxy[i])
            objects.append(TrackedObject(
                class_name=class_name, confidence=round(float(tracked.confidence[i]), 5),
                box=Box(x1=x1, y1=y1, x2=x2, y2=y2), pack=str(packs[i]) if packs is not None else "",
                tracker_id=int(ids[i]), is_hazard=self.catalogue.entry(class_name).hazard))
        return objects

    async def configure_camera(self, camera_id: str, config: CameraConfig, key: KeyRecord) -> CameraView:
        settings = await self.offload(self.cameras.configure, camera_id, config, key)
        stream = self.cameras.known(camera_id)
        if stream is not None:
            async with stream.lock:  # not in the middle of one of its frames
                self.cameras.apply(camera_id, settings)
        self.streams.wake()  # a new, changed or removed stream URL: start or stop its reader now
        return await self.camera_view(camera_id)

    async def camera_view(self, camera_id: str, visibility: Visibility | None = None) -> CameraView:
        """A camera's settings, and the state of its stream's reader if it has a stream; `Forbidden` if a key of
        `visibility` does not read it (`service.scopes.reads_camera`)."""
        def read() -> CameraView:
            row = self.cameras.records.get(camera_id=camera_id)
            if row is not None and not reads_camera(visibility, row.owner):
                raise Forbidden(f"camera {camera_id!r} belongs to the key {row.owner!r}: only that key or an "
                                "admin key reads it; GET /v1/cameras lists the cameras this key reads")
            streams = self.streams.views({camera_id: row}) if row is not None else {}
            return self.cameras.settings(camera_id).view(camera_id, streams.get(camera_id))

        return await self.offload(read)

    async def camera_statuses(self, visibility: Visibility | None = None) -> list[CameraStatus]:
        """The cameras a key of `visibility` reads (`service.scopes.reads_camera`)."""
        def read() -> tuple[list[CameraRecord], set[str], dict[str, StreamView]]:
            configured, alerted = self.cameras.stored()
            return configured, alerted, self.streams.views({row.id: row for row in configured})

        configured, alerted, streams = await self.offload(read)
        hidden = {row.id for row in configured if not reads_camera(visibility, row.owner)}
        return [status for status in self.cameras.statuses(configured, alerted, streams)
                if status.camera_id not in hidden]

    async def reset_camera(self, camera_id: str, key: KeyRecord) -> CameraReset:
        """Drop the camera's tracks and alert and picture state (audited); its settings stay."""
        stream = self.cameras.known(camera_id)
        if stream is None:
            await self.offload(self.cameras.check_known, camera_id)
            return await self.offload(self.cameras.reset, camera_id, key, None)
        async with stream.lock:  # not in the middle of one of its frames
            summary = await self.offload(self.cameras.reset, camera_id, key, stream)
            self.cameras.drop(camera_id, stream)
        return summary

    async def delete_camera(self, camera_id: str, key: KeyRecord) -> CameraDeleted:
        """Delete the camera's settings and forget its tracker (audited); its alerts stay. Its stream's reader
        stops: here at once, in another process at that one's next look at the leases."""
        stream = self.cameras.known(camera_id)
        if stream is None:
            summary = await self.offload(self.cameras.delete, camera_id, key, None)
        else:
            async with stream.lock:  # not in the middle of one of its frames
                summary = await self.offload(self.cameras.delete, camera_id, key, stream)
                self.cameras.drop(camera_id, stream)
        if await self.offload(self.streams.stop, camera_id):
            again = self.cameras.known(camera_id)  # made by a frame the reader had in analysis
            if again is not None:
                self.cameras.drop(camera_id, again)
        self.streams.wake()
        return summary

    # -- models

    async def activate(self, pack: str, request: ActivateRequest, key: KeyRecord) -> ActivateResponse:
        """Activate a version through the promotion gate and swap the serving state; audited, refusals too."""
        previous = self.host.versions.get(pack)

        def record(rows: Sequence[PromotionComparison | ClassComparison]) -> None:  # with the activation, or neither
            record_promotion(self.audit, key.name, pack, request.version, previous=previous, forced=request.force,
                             tolerance=request.tolerance, comparisons=rows, via="api",
                             serving={**self.host.versions, pack: request.version})

        try:
            if request.force:
                check(key, Permission.MODELS_FORCE)
            state, comparisons = await self.offload(self.host.activate, pack, request.version, force=request.force,
                                                    tolerance=request.tolerance, record=record)
        except HazardVisionError as error:
            await self.offload(record_refusal, self.audit, key.name, pack, request.version, error, previous=previous,
                               forced=request.force, tolerance=request.tolerance, via="api")
            raise
        self.metrics.serving(state.versions)
        return ActivateResponse(
            pack=pack, version=request.version, previous_version=previous, forced=request.force,
            comparisons=[Comparison(dataset=c.dataset, split_id=c.split_id, active=c.active, candidate=c.candidate,
                                    source=c.source) for c in comparisons],
            serving=state.versions)
