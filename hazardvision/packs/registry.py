"""`PackRegistry`: which model packs and versions exist, which version of each is active, which are staged
or replaced; the one place that reads and writes the models folders.

Two layers of folders, each `<pack>/<version>/card.json` plus `<pack>/ACTIVE` and `<pack>/REPLACED_BY`:

    bundled  the released packs: the repository's (or the wheel's) models/, or --models / $HAZARDVISION_MODELS
    home     the user's own packs and decisions: HOME/models, layered over the bundled ones

A version lives in one layer. The same pack and version in both is the bundled one: a release is never
shadowed by a local folder of the same name (`models bundle` refuses to overwrite a bundled version, and a
build refuses a version name either layer holds). The home's ACTIVE overrides the bundled one, and with it
the bundled state: a pack is replaced where the home's REPLACED_BY says so, or where the bundled one does and
the home has no ACTIVE of its own. Every write (activation, staging, retirement, new versions) goes to the
home; only `bundle` writes into the bundled layer, for a release.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hazardvision.errors import HazardVisionError, InvalidModel, UnknownModel
from hazardvision.home import Home
from hazardvision.packs.card import CARD_FILE, ModelCard, Precision
from hazardvision.packs.detector import OnnxDetector
from hazardvision.packs.integrity import verify_files
from hazardvision.packs.model_pack import ModelPack, load_pack
from hazardvision.resources import bundled_path

ACTIVE_FILE = "ACTIVE"
"""Names the version in use; empty for a pack that is staged (built, not promoted yet)."""
REPLACED_FILE = "REPLACED_BY"
"""Present in a pack retired in favour of another (`models promote --replaces`): it no longer serves."""
_INSTALLED = Path(__file__).resolve().parents[1] / "_bundled"


def default_models_dir() -> Path:
    """The bundled layer: `HAZARDVISION_MODELS` when set, else the packs bundled with the code."""
    override = os.environ.get("HAZARDVISION_MODELS")
    return Path(override) if override else bundled_path("models")


@dataclass(frozen=True)
class PackVersion:
    """One version of a pack, where it lives."""

    pack: str
    version: str
    folder: Path
    bundled: bool
    """Whether it comes from the bundled layer (a release) rather than the home."""
    require_hashes: bool | None = None
    """Whether loading refuses a card without model file hashes (None: $HAZARDVISION_REQUIRE_MODEL_HASHES)."""

    def card(self) -> ModelCard:
        return ModelCard.read(self.folder / CARD_FILE)

    def load(self, precision: Precision | None = None) -> ModelPack:
        """The pack, its ONNX file checked against the card's sha256."""
        return load_pack(self.folder, precision, require_hashes=self.require_hashes)


class PackRegistry:
    """The packs of a bundled models folder with a home's models folder layered over it."""

    def __init__(self, bundled: Path, home: Path | None = None, *, require_hashes: bool | None = None) -> None:
        """`home`: the home's models folder (None: a read-only registry of the bundled packs alone).
        `require_hashes`: refuse to load a card without model file hashes (None: $HAZARDVISION_REQUIRE_MODEL_HASHES)."""
        self.bundled = bundled
        self.home = home
        self.require_hashes = require_hashes

    @classmethod
    def at(cls, home: Path | None = None, models: Path | None = None, *,
           require_hashes: bool | None = None) -> PackRegistry:
        """The registry of the home at `home` (default: the default home) over `models` (default: the bundled)."""
        return cls(models or default_models_dir(), Home.at(home).models, require_hashes=require_hashes)

    def __repr__(self) -> str:
        return f"PackRegistry(bundled={self.bundled}, home={self.home})"

    def _layers(self) -> list[tuple[Path, bool]]:
        """(folder, bundled) of each layer, bundled first: the first holder of a version wins."""
        return [(self.bundled, True), *([(self.home, False)] if self.home is not None else [])]

    def _where(self) -> str:
        return f"{self.bundled}" + (f" or {self.home}" if self.home is not None else "")

    # -- reading

    def packs(self) -> list[str]:
        """Names of every pack with at least one version, in either layer."""
        names = {pack.name for root, _ in self._layers() if root.is_dir() for pack in root.iterdir()
                 if pack.is_dir() and any((v / CARD_FILE).is_file() for v in pack.iterdir())}
        return sorted(names)

    def nothing_serves(self) -> UnknownModel:
        """The error of a registry where no pack serves, naming pack folders that hold no version."""
        empty = sorted({pack.name for root, _ in self._layers() if root.is_dir() for pack in root.iterdir()
                        if pack.is_dir() and pack.name not in self.packs()})
        hint = (f"; these pack folders hold no version (a folder with a {CARD_FILE}): {', '.join(empty)}"
                if empty else "")
        return UnknownModel(f"no model packs serve in {self._where()}{hint}")

    def versions(self, pack: str) -> list[PackVersion]:
        """Every version of `pack`, by name; a version in both layers is the bundled one."""
        found: dict[str, PackVersion] = {}
        for root, bundled in self._layers():
            folder = root / pack
            if folder.is_dir():
                for version in folder.iterdir():
                    if (version / CARD_FILE).is_file() and version.name not in found:
                        found[version.name] = PackVersion(pack, version.name, version, bundled,
                                                          self.require_hashes)
        return [found[name] for name in sorted(found)]

    def version(self, pack: str, version: str) -> PackVersion:
        """One version of a pack; UnknownModel, naming what there is, when there is no such version."""
        versions = self.versions(pack)
        for candidate in versions:
            if candidate.version == version:
                return candidate
        if not versions:
            raise UnknownModel(f"no pack {pack!r} in {self._where()}; packs: {self.packs()}")
        raise UnknownModel(f"no version {version!r} of pack {pack!r} in {self._where()}; versions: "
                           f"{[v.version for v in versions]}")

    def _marker(self, pack: str, name: str) -> Path | None:
        """The home's `pack/name` file if there is one, else the bundled one, else None."""
        for root, _ in reversed(self._layers()):
            if (root / pack / name).is_file():
                return root / pack / name
        return None

    def active(self, pack: str) -> PackVersion:
        """The version of `pack` in use (named by ACTIVE, or the only version there is)."""
        versions = self.versions(pack)
        if not versions:
            raise UnknownModel(f"no pack {pack!r} in {self._where()}; packs: {self.packs()}")
        marker = self._marker(pack, ACTIVE_FILE)
        if marker is not None:
            name = marker.read_text(encoding="utf-8").strip()
            if not name:
                raise InvalidModel(f"pack {pack} is staged (its {ACTIVE_FILE} file is empty): promote a version with "
                                   f"`hazardvision models promote {pack} VERSION`")
            chosen = [v for v in versions if v.version == name]
            if not chosen:
                raise InvalidModel(f"{marker} names version {name!r}, which has no {CARD_FILE}")
            return chosen[0]
        if len(versions) != 1:
            raise InvalidModel(f"pack {pack} has {len(versions)} versions and no {ACTIVE_FILE} file naming one")
        return versions[0]

    def staged(self, pack: str) -> bool:
        """Whether the pack is built but not promoted yet (an empty ACTIVE)."""
        marker = self._marker(pack, ACTIVE_FILE)
        return marker is not None and not marker.read_text(encoding="utf-8").strip()

    def replaced_by(self, pack: str) -> str | None:
        """`<pack> <version>` that retired this pack, or None while it is not retired."""
        home_active = self.home is not None and (self.home / pack / ACTIVE_FILE).is_file()
        for root, bundled in reversed(self._layers()):
            marker = root / pack / REPLACED_FILE
            if marker.is_file() and not (bundled and home_active):
                return marker.read_text(encoding="utf-8").strip() or "another pack"
        return None

    def serves(self, pack: str) -> bool:
        """Whether the pack takes part in scans: it has versions, and is neither staged nor replaced."""
        return bool(self.versions(pack)) and not self.staged(pack) and self.replaced_by(pack) is None

    def serving(self) -> list[PackVersion]:
        """The active version of every pack that takes part in scans, by pack name."""
        return [self.active(pack) for pack in self.packs() if self.serves(pack)]

    def active_packs(self, precision: Precision | None = None) -> list[ModelPack]:
        """The serving packs, loaded (at `precision`, else each card's default)."""
        packs = [version.load(precision) for version in self.serving()]
        if not packs:
            raise self.nothing_serves()
        return packs

    def loadable_packs(
        self, precision: Precision | None = None, *, load: Callable[[PackVersion], ModelPack] | None = None,
    ) -> tuple[list[ModelPack], dict[str, str]]:
        """The serving packs that load, their ONNX sessions open, and why each of the others does not, by pack
        name (a damaged or changed model file, a bad card, a broken ACTIVE): one damaged pack leaves the others to
        scan with. `load` opens an active version (default: `PackVersion.load` at `precision`; the service passes
        its pack cache). `nothing_serves()` when no pack serves at all."""
        packs: list[ModelPack] = []
        down: dict[str, str] = {}
        for name in self.packs():
            try:
                if self.serves(name):
                    version = self.active(name)
                    packs.append(_opened(load(version) if load is not None else version.load(precision)))
            except (HazardVisionError, OSError) as error:
                down[name] = str(error)
            except Exception as error:  # whatever else breaks one pack (onnxruntime's own errors) leaves the others
                down[name] = f"{type(error).__name__}: {error}"
        if not packs and not down:
            raise self.nothing_serves()
        return packs, down

    # -- writing (the home only, but for `bundle`)

    def _home_pack(self, pack: str) -> Path:
        if self.home is None:
            raise InvalidModel(f"this registry of {self.bundled} has no home folder to write to; pass --home")
        folder = self.home / pack
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def activate(self, pack: str, version: str) -> None:
        """Make `version` the active one of `pack` (in the home), and un-retire the pack."""
        self.version(pack, version)
        folder = self._home_pack(pack)
        _write_atomically(folder / ACTIVE_FILE, version + "\n")
        (folder / REPLACED_FILE).unlink(missing_ok=True)

    @contextmanager
    def preserved(self, *packs: str) -> Iterator[None]:
        """The home's ACTIVE and REPLACED_BY of `packs` as they were, put back if the block raises: an activation
        whose audit record could not be written is undone."""
        saved = {(pack, name): (self._home_pack(pack) / name).read_text(encoding="utf-8")
                 if (self._home_pack(pack) / name).is_file() else None
                 for pack in packs for name in (ACTIVE_FILE, REPLACED_FILE)}
        try:
            yield
        except BaseException:
            for (pack, name), text in saved.items():
                path = self._home_pack(pack) / name
                if text is None:
                    path.unlink(missing_ok=True)
                else:
                    _write_atomically(path, text)
            raise

    def stage(self, pack: str) -> None:
        """Keep the pack out of scans until a version is promoted (an empty ACTIVE in the home)."""
        _write_atomically(self._home_pack(pack) / ACTIVE_FILE, "")

    def retire(self, pack: str, by: str) -> None:
        """Take the pack out of scans in favour of `by` (`<pack> <version>`)."""
        _write_atomically(self._home_pack(pack) / REPLACED_FILE, by + "\n")

    def new_version(self, pack: str, version: str) -> Path:
        """The home folder to build a new version into; versions are never overwritten, in either layer."""
        for root, _ in self._layers():
            if (root / pack / version).exists():
                raise InvalidModel(f"{root / pack / version} exists; pick a new version (versions are never "
                                   "overwritten)")
        return self._home_pack(pack) / version

    def added(self, pack: str, version: str, *, staged: bool) -> None:
        """After a build: a new pack's first version becomes active (or the pack is staged, when `staged`); a
        pack that had one version and no ACTIVE keeps serving that one."""
        if self._marker(pack, ACTIVE_FILE) is not None:
            return
        others = [v for v in self.versions(pack) if v.version != version]
        if staged:
            self.stage(pack)
        elif len(others) == 1:
            _write_atomically(self._home_pack(pack) / ACTIVE_FILE, others[0].version + "\n")
        elif not others:
            _write_atomically(self._home_pack(pack) / ACTIVE_FILE, version + "\n")

    def bundle(self, pack: str, version: str) -> Path:
        """Copy a version of the home into the bundled layer, for a release; never over a bundled version.

        The bundled ACTIVE is not changed (but written, naming the one released version, where a pack had one
        version and no ACTIVE: several versions need one)."""
        chosen = self.version(pack, version)
        target = self.bundled / pack / version
        if chosen.bundled or target.exists():
            raise InvalidModel(f"{target} exists: bundled versions are never overwritten; build a new version")
        if self.bundled.resolve().is_relative_to(_INSTALLED):
            raise InvalidModel(f"{self.bundled} is inside the installed package; bundle from a source checkout, "
                               "or pass --models DIR")
        verify_files(chosen.folder, chosen.card(), require=self.require_hashes)  # only an intact version is released
        released = [v for v in self.versions(pack) if v.bundled]
        if len(released) == 1 and not (self.bundled / pack / ACTIVE_FILE).exists():
            # the release keeps serving what it served, until its maintainer names the new version
            _write_atomically(self.bundled / pack / ACTIVE_FILE, released[0].version + "\n")
        scratch = target.with_name(f".{version}.bundling")
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(chosen.folder, scratch)
        scratch.rename(target)
        return target


def resolve_model(spec: str | Path, precision: Precision | None = None) -> ModelPack:
    """A pack from `--model`: a pack version folder, a pack folder, or a bare ONNX file (run as it is)."""
    path = Path(spec)
    if path.is_file() and path.suffix == ".onnx":
        detector = OnnxDetector(path)
        name = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")
        card = ModelCard(pack=name if name[:1].isalpha() else f"model-{name}", version="file",
                         architecture="unknown", model_file=path.name, classes=detector.class_names)
        pack = ModelPack(path.parent, card)
        pack.__dict__["detector"] = detector  # reuse the session opened to read the class names
        return pack
    if (path / CARD_FILE).is_file():
        return load_pack(path, precision)
    if path.is_dir():
        return PackRegistry(path.parent).active(path.name).load(precision)
    raise UnknownModel(f"--model {spec}: no such ONNX file, pack folder or pack version folder")


def loadable_packs(specs: Sequence[str | Path] | None = None, precision: Precision | None = None, *,
                   home: Path | None = None, models: Path | None = None) -> tuple[list[ModelPack], dict[str, str]]:
    """The packs named by `specs` (see `resolve_model`), or else the serving packs of the home at `home` over
    `models`, that load; and why each of the others does not (by pack name, or by the spec that named it)."""
    if not specs:
        return PackRegistry.at(home, models).loadable_packs(precision)
    packs: list[ModelPack] = []
    down: dict[str, str] = {}
    for spec in specs:
        try:
            packs.append(_opened(resolve_model(spec, precision)))
        except (HazardVisionError, OSError) as error:
            down[str(spec)] = str(error)
    return packs, down


def _opened(pack: ModelPack) -> ModelPack:
    """The pack with its ONNX session open: a model file that is not a loadable model says so now."""
    _ = pack.detector
    return pack


def active_packs(precision: Precision | None = None, *, home: Path | None = None,
                 models: Path | None = None) -> list[ModelPack]:
    """The serving packs of the home at `home` (default home) over `models` (default: the bundled packs)."""
    return PackRegistry.at(home, models).active_packs(precision)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)  # readers see the old or the new file, never a half-written one
