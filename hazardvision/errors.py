"""Domain exceptions; each message tells the user what to fix.

The HTTP layer maps these classes to status codes in one table, so raise the most specific one.
"""


class HazardVisionError(Exception):
    """Base of every error hazardvision raises on purpose."""


class InvalidImage(HazardVisionError):
    """The bytes are not a photo we can decode (empty, truncated, unknown format...)."""


class ImageTooLarge(InvalidImage):
    """The photo exceeds the configured pixel or byte limit."""


class InvalidModel(HazardVisionError):
    """A model file or model pack cannot be loaded or is not a detection model."""


class ModelIntegrityError(InvalidModel):
    """A model file differs from the SHA-256 its card records, or the card records none where one is required."""


class InferenceError(HazardVisionError):
    """A loaded model failed while running (a broken or incompatible graph)."""


class UnknownModel(HazardVisionError):
    """No model pack or version of that name exists."""


class CatalogueError(HazardVisionError):
    """The hazard catalogue file is missing or fails validation."""


class UnknownClass(CatalogueError):
    """A detector class has no entry in the hazard catalogue."""


class DatasetError(HazardVisionError):
    """A dataset to import cannot be read as a whole (not per-file problems, which are reported)."""


class ClassMappingError(HazardVisionError):
    """Dataset classes are neither mapped onto the catalogue nor dropped."""


class BankError(HazardVisionError):
    """The sample bank cannot be opened or is inconsistent."""


class UnknownCase(BankError):
    """No case of that id exists in the bank."""


class InvalidLabels(BankError):
    """A label file for a case cannot be read: a bad line, or a class id out of range."""


class PromotionRefused(HazardVisionError):
    """A candidate model is worse than the active one (or cannot be compared with it)."""


class InvalidFrame(HazardVisionError):
    """A video frame arrived out of order: its timestamp is older than the camera's last frame."""


class UnknownCamera(HazardVisionError):
    """No camera of that id was configured or has sent frames to this service."""


class UnknownAlert(HazardVisionError):
    """No alert of that id was recorded by the service."""


class AlertConflict(HazardVisionError):
    """The alert was acknowledged already; an acknowledgement is final."""


class UnknownWebhookFailure(HazardVisionError):
    """No failed webhook delivery of that id was recorded by the service."""


class WebhookFailureConflict(HazardVisionError):
    """The failed delivery cannot be sent again now (delivered already, or its camera has no webhook)."""


class InvalidWebhook(HazardVisionError):
    """A webhook cannot be sent as given (not an http or https URL, or no signing secret)."""


class AuditError(HazardVisionError):
    """The audit log cannot be written or read, or its tail does not match its anchor."""


class Unauthenticated(HazardVisionError):
    """No API key was given, or the key is unknown or revoked."""


class Forbidden(HazardVisionError):
    """The API key's role does not hold the permission the request needs."""


class ApiKeyError(HazardVisionError):
    """An API key cannot be created or revoked as asked (for example, an invalid name)."""


class UnknownApiKey(ApiKeyError):
    """No active API key of that name or id exists."""


class ApiKeyConflict(ApiKeyError):
    """An active API key of that name already exists."""


class UnknownScan(HazardVisionError):
    """No scan of that id was recorded by the service."""


class ScanProtected(HazardVisionError):
    """The scan is kept: filed in an inspection, its photo a case of the sample bank, or a rectification open."""


class UnknownFinding(HazardVisionError):
    """No finding of that id was recorded by the service."""


class ReviewConflict(HazardVisionError):
    """The finding was reviewed already; a review is final."""


class InvalidReview(HazardVisionError):
    """A review cannot be recorded as given (for example, a corrected box outside the photo)."""


class IdempotencyKeyReused(HazardVisionError):
    """An Idempotency-Key already named a scan of another photo (a key names one request, never two)."""


class DuplicateIdempotencyKey(HazardVisionError):
    """Data layer: a scan with this actor and Idempotency-Key was stored meanwhile (a concurrent retry)."""


class PlaceConflict(HazardVisionError):
    """A site is named with an enterprise other than the one the sample bank files it under."""


class InvalidUpload(HazardVisionError):
    """The request does not carry its photo as the service expects (a missing `image` field, too many files)."""


class UnsupportedUpload(InvalidUpload):
    """The request body is neither multipart/form-data nor an image/* type."""


class UploadTimeout(InvalidUpload):
    """The client sent its request body too slowly."""


class ModelsLoading(HazardVisionError):
    """The service has not loaded its models yet, or could not load them."""


class RequestTimeout(HazardVisionError):
    """The service could not answer within its request time limit (busy, or a long model swap)."""


class InvalidSetting(HazardVisionError):
    """A setting has a value it cannot take (the message names the ones it can)."""


class VideoError(HazardVisionError):
    """A video file, folder of frames or stream cannot be opened or read."""


class VideoDamaged(VideoError):
    """A video file stops decoding part-way (truncated or corrupt); what came before it was read."""


class StreamRefused(VideoError):
    """A stream URL is not allowed: a scheme other than rtsp, rtsps, http or https, or a host outside the
    networks the administrator allows."""


class UnknownVideoJob(HazardVisionError):
    """No video job has this id (or the job has no such event or snapshot)."""


class VideoJobConflict(HazardVisionError):
    """The video job is not in a state that allows this (a finished job cannot be cancelled)."""


class UnknownInspection(HazardVisionError):
    """No inspection has this id."""


class InspectionConflict(HazardVisionError):
    """A scan is filed under another inspection already."""


class UnknownRectification(HazardVisionError):
    """No rectification has this id."""


class RectificationConflict(HazardVisionError):
    """The rectification is not in the state the step needs (or the finding is not a confirmed hazard)."""


class UnsupportedAspectRatio(InvalidImage):
    """The photo is too long and thin for the detector (its aspect ratio is above the limit)."""


class UnknownHome(BankError):
    """A check was pointed at a home folder that does not exist or holds no bank (it is never created for one)."""


class TooManySignIns(HazardVisionError):
    """Too many failed sign-ins from one client address: wait `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidLabelConfig(HazardVisionError):
    """A Label Studio label config cannot be read, or has no box control on an image."""


class TaskImageUnavailable(HazardVisionError):
    """A Label Studio task's image cannot be fetched: no or another host, a redirect away, too large, an HTTP
    error."""
