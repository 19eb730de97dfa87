"""Partial labels across datasets: each photo teaches only the classes its dataset speaks for.

A merged snapshot mixes datasets that label different classes: a worker in a ppe-vest photo is
not labelled `person`, a helmet in a forklift-person photo is not labelled `helmet`. Trained
naively, every such object is a negative for its class. With a scope, the class loss of a photo
counts only the classes its dataset labels, plus those known to be absent from it (fire in a
warehouse photo: the hard negatives); other classes neither reward nor punish a prediction there.

Two pieces make that hold inside ultralytics' training:
- the class term of the loss is weighted per photo by its scope (1 in scope, 0 outside), through
  the weighting the loss already applies to its per-anchor class terms;
- mosaic, mixup and cutmix draw the photos they combine from the same dataset, so one training
  image never joins a tile whose people are labelled with a tile whose people are not.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LabelScope:
    """Which classes each photo of a snapshot speaks for, keyed by photo file stem (its SHA-256)."""

    classes: tuple[str, ...]
    by_source: Mapping[str, frozenset[str]]
    source_of: Mapping[str, str] = field(repr=False)

    def mask(self, stem: str) -> list[float]:
        """1.0 for each class the photo's dataset labels or knows absent, else 0.0; all 1.0 if unknown."""
        known = self.by_source.get(self.source_of.get(stem, ""))
        return [1.0 if known is None or name in known else 0.0 for name in self.classes]

    def describe(self) -> dict[str, list[str]]:
        return {source: [c for c in self.classes if c in known] for source, known in sorted(self.by_source.items())}


def build_scope(classes: Iterable[str], labelled: Mapping[str, Iterable[str]], absent: Mapping[str, Iterable[str]],
                files: Iterable[tuple[str, str]]) -> LabelScope:
    """Scope from each source's labelled and known-absent classes and the snapshot's (sha256, source) files."""
    names = tuple(classes)
    by_source = {source: frozenset(set(labelled[source]) | set(absent.get(source, ()))) & frozenset(names)
                 for source in labelled}
    return LabelScope(names, by_source, dict(files))


class ScopedCriterion:
    """Wraps an ultralytics detection loss so that a photo's class loss counts only its scope."""

    def __init__(self, inner: Any, scope: LabelScope) -> None:
        self.inner = inner
        self.scope = scope
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name in {"inner", "scope", "_cache"}:  # not set yet (unpickling): no recursion through inner
            raise AttributeError(name)
        return getattr(self.inner, name)  # update(), updates, hyp ... of the wrapped loss

    def _losses(self) -> list[Any]:
        nested = [getattr(self.inner, name, None) for name in ("one2many", "one2one")]
        return [loss for loss in nested if loss is not None] or [self.inner]

    def __call__(self, preds: Any, batch: dict[str, Any]) -> Any:
        import torch  # noqa: PLC0415  (the [train] extra)

        rows = []
        for file in batch["im_file"]:
            stem = Path(file).stem
            if stem not in self._cache:
                self._cache[stem] = torch.tensor(self.scope.mask(stem))
            rows.append(self._cache[stem])
        losses = self._losses()
        weights = torch.stack(rows).to(losses[0].device).unsqueeze(1)  # (batch, 1, classes)
        for loss in losses:
            loss.class_weights = weights
        return self.inner(preds, batch)


def same_source_mixing(transforms: Any, dataset_files: list[str], scope: LabelScope) -> int:
    """Make every mix transform (mosaic, mixup, cutmix, copy-paste) of `transforms` pick partners from the
    same source as the photo being augmented; returns how many transforms were changed."""
    from ultralytics.data.augment import BaseMixTransform, Compose  # noqa: PLC0415

    pools: dict[str, list[int]] = defaultdict(list)
    for index, file in enumerate(dataset_files):
        pools[scope.source_of.get(Path(file).stem, "")].append(index)
    changed = 0
    pending, seen = [transforms], set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Compose):
            pending.extend(item.transforms)
        elif isinstance(item, BaseMixTransform):
            if item.pre_transform is not None:
                pending.append(item.pre_transform)
            _draw_from_same_source(item, pools, scope)
            changed += 1
    return changed


def _draw_from_same_source(transform: Any, pools: Mapping[str, list[int]], scope: LabelScope) -> None:
    current: dict[str, str] = {}
    get_params: Callable[[dict[str, Any]], Any] = transform.get_params
    get_indexes: Callable[[], Any] = transform.get_indexes

    def params(labels: dict[str, Any]) -> Any:
        current["source"] = scope.source_of.get(Path(labels["im_file"]).stem, "")
        return get_params(labels)

    def indexes() -> Any:
        drawn = get_indexes()
        pool = pools.get(current.get("source", ""))
        if not pool:
            return drawn
        return random.choice(pool) if isinstance(drawn, int) else random.choices(pool, k=len(drawn))

    transform.get_params = params
    transform.get_indexes = indexes


def scoped_trainer(scope: LabelScope) -> type:
    """A DetectionTrainer class that trains with `scope`: scoped class loss, same-source mixing."""
    from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: PLC0415
    from ultralytics.utils.torch_utils import unwrap_model  # noqa: PLC0415

    class ScopedTrainer(DetectionTrainer):  # type: ignore[misc]
        label_scope = scope

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.add_callback("on_train_epoch_start", _install_criterion)

        def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None) -> Any:
            dataset = super().build_dataset(img_path, mode, batch)
            if mode == "train":
                same_source_mixing(dataset.transforms, list(dataset.im_files), self.label_scope)
                close = dataset.close_mosaic

                def close_mosaic(hyp: Any) -> None:
                    close(hyp)  # rebuilds the transforms (mosaic off, mixup off): keep partners per source
                    same_source_mixing(dataset.transforms, list(dataset.im_files), self.label_scope)

                dataset.close_mosaic = close_mosaic
            return dataset

    def _install_criterion(trainer: Any) -> None:
        model = unwrap_model(trainer.model)
        if not isinstance(getattr(model, "criterion", None), ScopedCriterion):
            model.criterion = ScopedCriterion(model.init_criterion(), scope)

    return ScopedTrainer
