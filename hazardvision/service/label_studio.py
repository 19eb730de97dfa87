"""`LabelStudioBackend`: pre-annotations for Label Studio projects, as their ML backend.

A project's labels map onto catalogue classes (`hazardvision.datasets.label_names`); its task images
come from its Label Studio host only (`task_images`). Predictions are not kept as scans: the photos
live in Label Studio, and a bulk "retrieve predictions" would fill the scan archive and the review
queue. They are audited in one `scan.summary` record per key, project and period instead.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from hazardvision.access import KeyRecord
from hazardvision.datasets.label_names import label_classes
from hazardvision.errors import InvalidImage, InvalidLabelConfig, InvalidUpload, TaskImageUnavailable
from hazardvision.service.label_config import BoxControl, box_controls
from hazardvision.service.profiles import ClientPrediction, ClientProfile, Recording
from hazardvision.service.runtime import ClientScan, Runtime
from hazardvision.service.schemas.label_studio import (
    LabelMapping,
    PredictRequest,
    PredictResponse,
    RectangleValue,
    RegionMeta,
    RegionResult,
    SetupRequest,
    SetupResponse,
    Task,
    TaskPrediction,
)
from hazardvision.service.task_images import TaskImageSource, fetch_task_image, origin_of
from hazardvision.service.uploads import Upload

log = logging.getLogger("hazardvision.service")

PROTOCOL = "label-studio"
SETUP_ACTION = "label-studio.setup"
TASKS_AT_ONCE = 4
"""Task images fetched and scanned at once per request (the scans share model runs through the batcher)."""


def project_id(project: str) -> str:
    """Label Studio's project id out of its `<id>.<created-at>` name."""
    return project.split(".", 1)[0].strip() or "unknown"


def model_version(versions: dict[str, str]) -> str:
    """The serving packs' versions as one model version, e.g. 'fire@0.3.0+ppe@0.2.1'."""
    return "+".join(f"{pack}@{version}" for pack, version in sorted(versions.items()))


@dataclass(frozen=True)
class _Target:
    """Where a class's boxes go in the project: a control and one of its labels."""

    control: BoxControl
    label: str


class LabelStudioBackend:
    """Setup and predictions of the Label Studio projects this service backs (their hosts, kept in memory)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.label_studio
        self._sources: dict[str, TaskImageSource] = {}
        self._seen: dict[str, tuple[TaskImageSource | None, tuple[tuple[str, str], ...], tuple[str, ...]]] = {}
        """Each project's last setup as audited."""

    @property
    def model_version(self) -> str:
        return model_version(self.runtime.host.current.versions)

    def mapping(self, controls: list[BoxControl]) -> LabelMapping:
        """How the controls' labels map onto catalogue classes."""
        labels = list(dict.fromkeys(label for control in controls for label in control.labels))
        classes = label_classes(labels, self.runtime.catalogue, self.settings.labels)
        return LabelMapping(labels={label: cls for label, cls in classes.items() if cls},
                            unmapped=[label for label, cls in classes.items() if cls is None])

    def _source(self, request: SetupRequest) -> TaskImageSource | None:
        token = self.settings.access_token.get_secret_value() if self.settings.access_token else None
        named = None
        if request.hostname:
            try:
                named = origin_of(request.hostname)
            except ValueError as error:
                raise InvalidUpload(f"setup's hostname: {error}; Label Studio sends its HOSTNAME setting") from None
        if self.settings.url:
            pinned = origin_of(self.settings.url)
            aliases = frozenset({named} - {pinned}) if named else frozenset()
            return TaskImageSource(pinned, token or request.access_token, aliases)
        return TaskImageSource(named, token or request.access_token) if named else None

    async def setup(self, request: SetupRequest, key: KeyRecord) -> SetupResponse:
        """Remember the project's Label Studio host and token; audited when they or the label mapping change."""
        project = project_id(request.project)
        mapping = self.mapping(box_controls(request.label_config)) if request.label_config else \
            LabelMapping(labels={}, unmapped=[])
        source = self._source(request)
        seen = (source, tuple(sorted(mapping.labels.items())), tuple(mapping.unmapped))
        if self._seen.get(project) != seen:  # Label Studio repeats setups; the audit log records changes
            # Audited first: a setup whose record failed is not taken (and is audited when it comes again).
            await self.runtime.offload(
                self.runtime.audit.append, key.name, SETUP_ACTION, f"label-studio project {project}",
                details={"image_host": source.origin if source else None,
                         "also_named": sorted(source.aliases) if source else [],
                         "token": bool(source and source.token), "labels": mapping.labels,
                         "unmapped": mapping.unmapped})
            self._seen[project] = seen
        if source is not None:
            self._sources[project] = source
        if mapping.unmapped:
            log.warning("Label Studio project %s: labels %s have no catalogue class and are never pre-annotated; "
                        "map them in settings label_studio.labels", project, ", ".join(mapping.unmapped))
        return SetupResponse(model_version=self.model_version, image_host=source.origin if source else None,
                             labels=mapping.labels, unmapped=mapping.unmapped)

    def _project_source(self, project: str) -> TaskImageSource | None:
        if project in self._sources:
            return self._sources[project]
        if self.settings.url:
            token = self.settings.access_token.get_secret_value() if self.settings.access_token else None
            return TaskImageSource(origin_of(self.settings.url), token)
        return None

    def _targets(self, controls: list[BoxControl]) -> dict[str, dict[str, _Target]]:
        """Image key -> catalogue class -> where its boxes go (the first control and label that take the class)."""
        classes = self.mapping(controls).labels
        targets: dict[str, dict[str, _Target]] = {}
        for control in controls:
            for label in control.labels:
                if label in classes:
                    targets.setdefault(control.image_key, {}).setdefault(classes[label], _Target(control, label))
        return targets

    async def predict(self, request: PredictRequest, key: KeyRecord) -> PredictResponse:
        """One prediction per task; a task whose image cannot be fetched or decoded gets its own error."""
        if not request.tasks:
            raise InvalidUpload("no tasks to pre-annotate: send {\"tasks\": [{\"id\": ..., \"data\": {\"image\": "
                                "...}}], ...}")
        if len(request.tasks) > self.settings.max_tasks:
            raise InvalidUpload(f"{len(request.tasks)} tasks sent; at most {self.settings.max_tasks} per request "
                                "(settings label_studio.max_tasks)")
        if not request.label_config:
            raise InvalidLabelConfig("no label_config: Label Studio sends the project's label config with each "
                                     "request")
        targets = self._targets(box_controls(request.label_config))
        if not targets:
            labels = self.mapping(box_controls(request.label_config)).unmapped
            raise InvalidLabelConfig(f"none of the project's labels ({', '.join(labels)}) is a catalogue class, its "
                                     "English name or mapped in settings label_studio.labels")
        version = self.model_version
        project = project_id(request.project)
        source = self._project_source(project)
        gate = asyncio.Semaphore(TASKS_AT_ONCE)

        async def one(task: Task) -> TaskPrediction:
            async with gate:
                try:
                    return await self._predict_task(task, targets, source=source, key=key, project=project,
                                                    version=version)
                except (TaskImageUnavailable, InvalidImage) as error:
                    log.info("Label Studio project %s, task %s: %s", project, task.id, error)
                    return TaskPrediction(model_version=version, result=[], error=str(error))

        return PredictResponse(results=list(await asyncio.gather(*(one(task) for task in request.tasks))),
                               model_version=version)

    async def _predict_task(self, task: Task, targets: dict[str, dict[str, _Target]], *,
                            source: TaskImageSource | None, key: KeyRecord, project: str, version: str
                            ) -> TaskPrediction:
        regions: list[RegionResult] = []
        for image_key, classes in targets.items():
            reference = task.data.get(image_key)
            if not isinstance(reference, str) or not reference.strip():
                raise TaskImageUnavailable(f"the task has no image URL under data.{image_key} (the label config's "
                                           f"${image_key})")
            if source is None:
                raise TaskImageUnavailable("no Label Studio host is known for this project: set label_studio.url "
                                           "or let Label Studio send its hostname at setup (reconnect the backend)")
            data = await self.runtime.offload(
                fetch_task_image, source, reference, max_bytes=self.runtime.settings.max_upload_bytes,
                timeout=self.settings.fetch_timeout_seconds)
            scan = await self.runtime.scan_for_client(
                Upload(data, f"task-{task.id}"), key, PROTOCOL, profile=self._profile(key),
                summary_target=f"label-studio project {project}")
            regions += [_region(p, classes[p.class_name], scan) for p in scan.predictions if p.class_name in classes]
        score = sum(r.score for r in regions) / len(regions) if regions else None
        return TaskPrediction(model_version=version, score=score, result=regions)

    def _profile(self, key: KeyRecord) -> ClientProfile:
        # The key's threshold, cap and hazards_only apply; labels come from the project, records are summaries.
        return self.runtime.profile(key).model_copy(update={"labels": None, "record": Recording.SUMMARY})


def _percent(value: float, size: int) -> float:
    return round(min(100.0, max(0.0, value / size * 100)), 4)


def _region(prediction: ClientPrediction, target: _Target, scan: ClientScan) -> RegionResult:
    width, height = scan.result.image.width, scan.result.image.height
    box = prediction.box
    x, y = _percent(box.x1, width), _percent(box.y1, height)
    meta = None
    if prediction.hazard is not None:
        hazard = prediction.hazard
        meta = RegionMeta(text=[f"{hazard.code} ({hazard.severity.value}): {hazard.name.en}", hazard.advice.en])
    return RegionResult(
        id=uuid.uuid4().hex[:10], from_name=target.control.name, to_name=target.control.to_name,
        original_width=width, original_height=height,
        value=RectangleValue(x=x, y=y, width=min(100 - x, _percent(box.x2 - box.x1, width)),
                             height=min(100 - y, _percent(box.y2 - box.y1, height)), rectanglelabels=[target.label]),
        score=round(prediction.confidence, 5), meta=meta)
