"""`hazardvision bank`: import, inspect and snapshot the sample bank."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.importer import DEFAULT_BATCH, ImportReport, import_dataset
from hazardvision.bank.label_studio_export import ExportFormat, import_export, is_label_studio_export
from hazardvision.bank.labels import label_history, relabel
from hazardvision.bank.snapshot import SplitRule, make_snapshot, reproduce_snapshot
from hazardvision.catalogue import load_catalogue
from hazardvision.cli.bank_labels import class_counts, print_history, report_label_differences
from hazardvision.cli.common import HomeOption, JsonOption, err, fail, out, report_exposed, report_leftovers
from hazardvision.data.copy import DEFAULT_BATCH as COPY_BATCH
from hazardvision.data.copy import copy_bank
from hazardvision.datasets.classmap import build_class_map, parse_pairs
from hazardvision.datasets.readers import read_dataset
from hazardvision.errors import HazardVisionError
from hazardvision.packs.registry import active_packs
from hazardvision.similar.case_index import SyncReport
from hazardvision.similar.maintenance import PackProgress, sync_indexes, update_cases, verify_indexes

bank_app = typer.Typer(help="Import, inspect and snapshot the sample bank.", no_args_is_help=True)


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


class ImportFormat(StrEnum):
    AUTO = "auto"
    DATASET = "dataset"
    LABEL_STUDIO_YOLO = ExportFormat.YOLO.value
    LABEL_STUDIO_COCO = ExportFormat.COCO.value


@bank_app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="YOLO data.yaml (or its folder), a COCO .json file, or a Label Studio "
                                         "export (its zip, folder or result.json).")],
    home: HomeOption = None,
    name: Annotated[str | None, typer.Option(help="Source name to record. Default: the folder or file name.")] = None,
    images: Annotated[Path | None, typer.Option(help="COCO only: folder of the images. Default: beside the JSON.")]
    = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="SOURCE_CLASS=CATALOGUE_CLASS; repeatable.")] = None,
    drop: Annotated[list[str] | None, typer.Option(help="Source class to drop (its photos stay as backgrounds).")]
    = None,
    catalogue: Annotated[Path | None, typer.Option(help="Hazard catalogue YAML. Default: the bundled one.")] = None,
    site: Annotated[str | None, typer.Option(help="Site the photos were taken at.")] = None,
    enterprise: Annotated[str | None, typer.Option(help="Enterprise the site belongs to.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Photos per database transaction.")] = DEFAULT_BATCH,
    import_format: Annotated[ImportFormat, typer.Option("--format", help="auto: a Label Studio export when PATH looks "
                             "like one (a zip; a folder with classes.txt, notes.json or result.json), else a "
                             "dataset.")] = ImportFormat.AUTO,
    project: Annotated[str | None, typer.Option(help="Label Studio only: the project, when the export's name "
                                                "(project-<id>-at-...) does not say it.")] = None,
    exported_at: Annotated[dt.datetime | None, typer.Option(help="Label Studio only: when it was exported, when "
                                                            "its name does not say it.")] = None,
    update_labels: Annotated[bool, typer.Option("--update-labels", help="A photo already in the bank whose labels "
                             "here differ: make these labels a new label version of its case (the old version "
                             "stays; provenance: this import). Without it, differences are only reported.")] = False,
    label_report: Annotated[Path | None, typer.Option(help="Write every photo whose labels differ, and how, to this "
                                                      "JSON file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Import a labelled dataset or a Label Studio export (with its project and export time as provenance); every
    file problem is reported and the rest goes on (exit code 1 when files failed)."""
    try:
        if import_format is ImportFormat.AUTO:
            label_studio, export_format = is_label_studio_export(path), None  # an export says which it is
        else:
            label_studio = import_format is not ImportFormat.DATASET
            export_format = ExportFormat(import_format.value) if label_studio else None
        bank = SampleBank(home)
        with Progress(TextColumn("importing {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err, disable=as_json) as progress:
            task = progress.add_task(name or path.name, total=None)
            if not label_studio:
                report = _import_dataset(bank, path, name, images, catalogue, map_, drop, site, enterprise,
                                         batch_size, lambda n: progress.update(task, total=n),
                                         lambda n: progress.advance(task, n), update_labels=update_labels)
            else:
                report = import_export(bank, path, load_catalogue(catalogue), export_format=export_format, name=name,
                                       project=project, exported_at=exported_at, mapping=parse_pairs(map_ or []),
                                       drop=drop or [], site=site, enterprise=enterprise, batch_size=batch_size,
                                       update_labels=update_labels,
                                       on_start=lambda n: progress.update(task, total=n),
                                       on_progress=lambda n: progress.advance(task, n))
        _update_indexes(bank, report.changed_cases, quiet=as_json)
        report_label_differences(report.label_differences, source=report.source, report=label_report,
                                 quiet=as_json)
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(report.model_dump_json(indent=2))
        raise typer.Exit(1 if report.failed else 0)
    for problem in report.problems:
        for line in problem.errors:
            err.print(f"[red]{problem.file}:[/red] {line}", highlight=False)
    for line in report.dataset_problems:
        err.print(f"[yellow]{report.source}:[/yellow] {line}", highlight=False)
    warned = sum(bool(p.warnings) for p in report.problems)
    differ = ""
    if report.labels_differ:
        differ = (f"; {report.labels_differ} of the photos already in the bank have different labels here ("
                  + (f"{report.labels_updated} relabelled)" if report.labels_updated else "bank left as it was)"))
    out.print(f"{report.source}: {report.files} files, {report.imported} imported, {report.already_in_bank} already "
              f"in the bank, {report.failed} failed, {report.backgrounds} backgrounds, {warned} repaired "
              f"(see --json); {report.groups} leakage groups in the bank{differ}", highlight=False)
    if report.failed:
        err.print(f"[red]{report.failed} of {report.files} files failed[/red] (listed above); fix them and import "
                  "again: what was imported stays", highlight=False)
        raise typer.Exit(1)


def _import_dataset(bank: SampleBank, path: Path, name: str | None, images: Path | None, catalogue: Path | None,
                    map_: list[str] | None, drop: list[str] | None, site: str | None, enterprise: str | None,
                    batch_size: int, on_start: Callable[[int], None], on_progress: Callable[[int], None], *,
                    update_labels: bool) -> ImportReport:
    dataset = read_dataset(path, name, images)
    class_map = build_class_map(dataset.classes, load_catalogue(catalogue), parse_pairs(map_ or []), drop or [])
    on_start(len(dataset.files))
    return import_dataset(bank, dataset, class_map, batch_size=batch_size, site=site, enterprise=enterprise,
                          on_progress=on_progress, update_labels=update_labels)


@bank_app.command()
def stats(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Counts of cases, photos, boxes and groups, per source and split."""
    try:
        summary = SampleBank(home).stats()
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(summary.model_dump_json(indent=2))
        return
    out.print(f"bank {summary.home}: {summary.cases} cases, {summary.images} photos, {summary.groups} groups; "
              f"boxes per class: {class_counts(summary.annotations) or 'none'}", highlight=False)
    table = Table("source", "licence", "split", "cases", "backgrounds", "boxes per class")
    for source in summary.sources:
        for split, count in sorted(source.cases.items()):
            table.add_row(source.name, source.licence or "", split, str(count),
                          str(source.backgrounds.get(split, 0)), class_counts(source.classes.get(split, {})))
    out.print(table)


@bank_app.command("list")
def list_command(
    home: HomeOption = None,
    source: Annotated[str | None, typer.Option(help="Only cases of this source.")] = None,
    split: Annotated[str | None, typer.Option(help="Only cases of this source split.")] = None,
    class_name: Annotated[str | None, typer.Option("--class", help="Only cases with this class.")] = None,
    site: Annotated[str | None, typer.Option(help="Only cases of this site.")] = None,
    enterprise: Annotated[str | None, typer.Option(help="Only cases of this enterprise.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOption = False,
) -> None:
    """List cases, oldest first."""
    try:
        cases = SampleBank(home).cases(source=source, split=split, class_name=class_name, site=site,
                                       enterprise=enterprise, limit=limit, offset=offset)
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(json.dumps([json.loads(c.model_dump_json()) for c in cases], indent=2))
        return
    table = Table("id", "source", "file", "split", "size", "labels", "boxes per class")
    for case in cases:
        classes = class_counts(Counter(a.class_name for a in case.annotations)) or "(background)"
        table.add_row(str(case.id), case.source, case.source_file, case.source_split or "",
                      f"{case.width}x{case.height}", f"v{case.label_version}", classes)
    out.print(table)


@bank_app.command()
def show(
    case_id: Annotated[int, typer.Argument(help="Case id (see `bank list`).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """One case: its photo, provenance and annotations."""
    try:
        case = SampleBank(home).case(case_id)
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(case.model_dump_json(indent=2))
        return
    out.print(f"case {case.id}: {case.source}/{case.source_file} ({case.source_split or 'no split'}), "
              f"{case.width}x{case.height}, group {case.group_id}\nphoto: {case.image_path}\nlabels: version "
              f"{case.label_version}" + (" (`bank history` shows the earlier ones)" if case.label_version > 1 else ""))
    for annotation in case.annotations:
        box = ", ".join(f"{v:.0f}" for v in annotation.box)
        out.print(f"  {annotation.class_name} ({annotation.source_class}) [{box}] {annotation.origin}")


@bank_app.command("relabel")
def relabel_command(
    case_id: Annotated[int, typer.Argument(help="Case id (see `bank list`).")],
    labels: Annotated[Path, typer.Option(help="YOLO label file: one 'class_id cx cy w h' line per box, normalised "
                                         "(an empty file makes the case a background).")],
    reason: Annotated[str, typer.Option(help="Why the labels change; kept with the new version.")],
    home: HomeOption = None,
    classes: Annotated[str | None, typer.Option(help="Comma-separated catalogue classes the class ids index, e.g. "
                                                "a snapshot's names. Default: the catalogue's classes in order.")]
    = None,
    by: Annotated[str | None, typer.Option(help="Who corrects them. Default: the user running the command.")] = None,
    catalogue: Annotated[Path | None, typer.Option(help="Hazard catalogue YAML. Default: the bundled one.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Correct a case's labels as a new label version (who, when, why); the old version stays (`bank history`),
    snapshots take the new one, and the similar-case indexes follow."""
    try:
        bank = SampleBank(home)
        known = load_catalogue(catalogue)
        names = _csv(classes) or [entry.class_name for entry in known.classes]
        result = relabel(bank, case_id, labels, classes=names, catalogue=known, reason=reason, author=by)
        if result.changed:
            _update_indexes(bank, [case_id], quiet=True)
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(result.model_dump_json(indent=2))
    elif result.changed:
        out.print(f"case {case_id}: label version {result.version} ({result.difference.summary()})", highlight=False)
    else:
        out.print(f"case {case_id}: the labels are those of version {result.version} already; nothing changed",
                  highlight=False)


@bank_app.command()
def history(
    case_id: Annotated[int, typer.Argument(help="Case id (see `bank list`).")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every version of a case's labels, oldest first, with who made it, when and why."""
    try:
        versions = label_history(SampleBank(home), case_id)
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(json.dumps([json.loads(v.model_dump_json()) for v in versions], indent=2))
        return
    print_history(case_id, versions)


@bank_app.command()
def snapshot(
    classes: Annotated[str | None, typer.Option(help="Comma-separated classes, in model class order.")] = None,
    home: HomeOption = None,
    sources: Annotated[str | None, typer.Option(help="Comma-separated sources. Default: all.")] = None,
    split: Annotated[SplitRule, typer.Option(help="source: keep the sources' splits; group: seeded group split.")]
    = SplitRule.SOURCE,
    seed: Annotated[int, typer.Option(help="Seed of a group split.")] = 0,
    ratios: Annotated[str, typer.Option(help="train,val,test shares of a group split.")] = "0.8,0.1,0.1",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Parent folder. Default: HOME/snapshots.")] = None,
    reproduce: Annotated[str | None, typer.Option(help="Write this earlier snapshot again, from its record: the "
                                                  "cases it had, each at the label version it took (its other "
                                                  "options are the record's).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Freeze a YOLO dataset with a manifest; the same bank and arguments give the same id."""
    try:
        shares = [float(v) for v in _csv(ratios)]
        if reproduce:
            manifest = reproduce_snapshot(SampleBank(home), reproduce, out=out_dir)
        else:
            manifest = make_snapshot(SampleBank(home), classes=_csv(classes), sources=_csv(sources) or None,
                                     split_rule=split, seed=seed, ratios=shares, out=out_dir)
    except ValueError:
        err.print(f"[red]error:[/red] --ratios {ratios!r} must be three numbers such as 0.8,0.1,0.1")
        raise typer.Exit(2) from None
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(manifest.model_dump_json(indent=2, exclude={"files"}))
        return
    out.print(f"snapshot {manifest.id} at {manifest.path}")
    for split_name, counts in manifest.counts.items():
        boxes = ", ".join(f"{k} {v}" for k, v in counts.boxes.items())
        out.print(f"  {split_name}: {counts.images} photos ({counts.backgrounds} backgrounds); {boxes}")


@bank_app.command()
def verify(
    home: HomeOption = None,
    clean: Annotated[bool, typer.Option("--clean", help="First remove the temporary files that writers no longer "
                                        "running left behind.")] = False,
    tighten: Annotated[bool, typer.Option("--tighten", help="First make what the home keeps private (database, "
                                          "photos, audit log, keys, indexes, videos) mode 700 (folders) and 600 "
                                          "(files) where group or others could read it.")] = False,
) -> None:
    """Check the bank's invariants and its similar-case indexes (exit code 1 if any is broken, 2 if there is no
    bank there); report leftover temporary files (--clean removes them) and private files that group or others
    may read (--tighten makes them private)."""
    try:
        bank = SampleBank(home, create=False)
        removed = bank.layout.remove_leftovers() if clean else []
        tightened = bank.layout.make_private() if tighten else []
        problems = bank.verify() + verify_indexes(bank, active_packs(home=bank.home))
        leftovers = bank.layout.leftovers()
        exposed = bank.layout.exposed()
    except HazardVisionError as error:
        fail(error)
    for problem in problems:
        err.print(f"[red]{problem}[/red]", highlight=False)
    if removed:
        out.print(f"removed {len(removed)} leftover temporary file(s)", highlight=False)
    if tightened:
        out.print(f"made {len(tightened)} file(s) and folder(s) private (mode 600 and 700)", highlight=False)
    report_leftovers(leftovers)
    report_exposed(exposed)
    if problems:
        raise typer.Exit(1)
    out.print("bank is consistent")


@bank_app.command()
def reindex(
    home: HomeOption = None,
    rebuild: Annotated[bool, typer.Option(help="Re-embed everything instead of repairing what differs.")] = False,
) -> None:
    """Build or repair the similar-case index of every active model pack from the bank."""
    try:
        bank = SampleBank(home)
        reports = _sync_indexes(bank, rebuild=rebuild, only_existing=False, quiet=False, compact=True)
    except HazardVisionError as error:
        fail(error)
    for pack, report in reports.items():
        out.print(f"{pack}: added {report.added}, removed {report.removed}; {report.photos_embedded} photos embedded",
                  highlight=False)


@bank_app.command()
def delete(
    case_ids: Annotated[list[int], typer.Argument(help="Ids of the cases to delete.")],
    home: HomeOption = None,
) -> None:
    """Delete cases with their annotations and photos (and their similar-case vectors)."""
    try:
        bank = SampleBank(home)
        deleted = bank.delete_cases(case_ids)
        _update_indexes(bank, case_ids, quiet=True)
    except HazardVisionError as error:
        fail(error)
    out.print(f"deleted {deleted} case(s)")


@bank_app.command()
def copy(
    to: Annotated[str, typer.Option("--to", help="URL of the empty target database, e.g. "
                                    "postgresql://USER:PASSWORD@HOST/DATABASE.")],
    home: HomeOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per insert.")] = COPY_BATCH,
    as_json: JsonOption = False,
) -> None:
    """Copy the home's SQLite bank (cases and the service's records) into an empty database, such as
    PostgreSQL. The photos stay in HOME/images: afterwards, run with HAZARDVISION_DATABASE_URL set to the
    target and the same home."""
    try:
        with Progress(TextColumn("copying {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err, disable=as_json) as progress:
            tasks: list[TaskID] = []  # the bar appears once the target is accepted and the rows counted
            report = copy_bank(
                home, to, batch_size=batch_size,
                on_start=lambda counts: tasks.append(progress.add_task("tables", total=sum(counts.values()))),
                on_progress=lambda table, rows: progress.update(tasks[0], advance=rows, description=table))
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(json.dumps({"target": report.target, "rows": report.rows}, indent=2))
        return
    copied = ", ".join(f"{table} {rows}" for table, rows in report.rows.items() if rows)
    out.print(f"copied {sum(report.rows.values())} rows to {report.target} ({copied or 'an empty bank'}); "
              "every table's count matches", highlight=False)


def _update_indexes(bank: SampleBank, case_ids: list[int], *, quiet: bool) -> None:
    """After a change to these cases of the bank, bring the indexes that exist up to date for them (new indexes
    need `reindex`, and so does a difference that a killed command left)."""
    with _indexing(quiet) as step:
        update_cases(bank, active_packs(home=bank.home), case_ids, progress=step)


def _sync_indexes(bank: SampleBank, *, rebuild: bool, only_existing: bool, quiet: bool,
                  compact: bool = False) -> dict[str, SyncReport]:
    with _indexing(quiet) as step:
        return sync_indexes(bank, active_packs(home=bank.home), rebuild=rebuild, only_existing=only_existing,
                            progress=step, compact=compact)


@contextlib.contextmanager
def _indexing(quiet: bool) -> Iterator[PackProgress]:
    """A progress bar per pack while photos are embedded."""
    with Progress(TextColumn("indexing {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, disable=quiet) as progress:
        tasks: dict[str, TaskID] = {}

        def step(pack: str, done: int, total: int) -> None:
            if pack not in tasks:
                tasks[pack] = progress.add_task(pack, total=total)
            progress.update(tasks[pack], completed=done, total=total)

        yield step
