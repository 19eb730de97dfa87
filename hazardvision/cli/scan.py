"""`hazardvision scan`: hazards in site photos, as a table or as JSON."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import cv2
import typer
from rich.console import Console
from rich.table import Table

from hazardvision.annotate import HazardAnnotator
from hazardvision.catalogue import load_catalogue
from hazardvision.cli.common import HomeOption, err, fail
from hazardvision.errors import HazardVisionError, InvalidModel
from hazardvision.images import DecodedImage, load_image
from hazardvision.packs.card import Precision
from hazardvision.packs.registry import loadable_packs
from hazardvision.packs.tiling import tiling_mode
from hazardvision.results import ScanError, ScanResult
from hazardvision.scan import Scanner, result_detections
from hazardvision.similar.query import SimilarQuery
from hazardvision.similar.search import open_search


def scan(
    images: Annotated[list[Path], typer.Argument(help="Photos to scan (JPEG, PNG, WebP, BMP, TIFF).")],
    model: Annotated[
        list[Path] | None,
        typer.Option("--model", help="ONNX file or model pack folder; repeat for several. "
                     "Default: every bundled pack."),
    ] = None,
    conf: Annotated[
        float | None,
        typer.Option("--conf", min=0.0, max=1.0, help="Confidence threshold for findings and objects. "
                     "Default: each pack's operating threshold."),
    ] = None,
    annotate: Annotated[
        Path | None,
        typer.Option("--annotate", help="Write annotated JPEGs: a file for one photo, else a folder."),
    ] = None,
    catalogue: Annotated[
        Path | None, typer.Option("--catalogue", help="Hazard catalogue YAML. Default: the bundled one.")
    ] = None,
    precision: Annotated[
        Precision | None, typer.Option(help="Run the packs' float32 or int8 models (see each card for both). "
                                       "Default: each pack's default precision.")
    ] = None,
    tiling: Annotated[str | None, typer.Option(help="Tiled inference of large photos (small, distant workers): "
                                               "on, off or auto. Default: each pack's default (see its card).")
                      ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON scan result per line.")] = False,
    home: HomeOption = None,
    similar: Annotated[int, typer.Option(min=0, max=100, help="Similar past cases per finding, from the "
                                         "sample bank's index (0: none).")] = 5,
    similar_any_class: Annotated[bool, typer.Option(help="Similar cases of any class, not only the "
                                                    "finding's own.")] = False,
    similar_site: Annotated[str | None, typer.Option(help="Similar cases from this site only.")] = None,
    similar_enterprise: Annotated[str | None, typer.Option(help="Similar cases of this enterprise only.")] = None,
    similar_min_score: Annotated[float | None, typer.Option(min=-1, max=1, help="Similar cases at least this "
                                                             "similar (cosine).")] = None,
) -> None:
    """Scan site photos for hazards.

    A model pack that does not load (a damaged model file, a hash mismatch, a bad card) is named in a
    warning and left out; the others scan. Findings carry similar past cases when the sample bank has an
    index for the packs (`hazardvision bank reindex` builds it).

    Exit codes: 0 every photo scanned; 1 some photo could not be scanned; 2 nothing was scanned: no
    model pack loads, or an option, the catalogue or the index is unusable.
    """
    try:
        mode = tiling_mode(tiling)
        packs, down = loadable_packs(model, precision, home=home)
        if not packs:
            raise InvalidModel("no model pack could be loaded: " + "; ".join(f"{name}: {why}"
                                                                             for name, why in down.items()))
        for name, why in down.items():
            err.print(f"[yellow]warning:[/yellow] pack {name} is left out of this scan: {why}", highlight=False)
        chosen = load_catalogue(catalogue)
        search = open_search(home, packs, chosen) if similar else None
        query = SimilarQuery(k=similar or 1, same_class=not similar_any_class, site=similar_site,
                             enterprise=similar_enterprise, min_score=similar_min_score)
        scanner = Scanner(packs, chosen, similar=search, similar_query=query)
    except HazardVisionError as error:
        fail(error)
    failed = 0
    for index, path in enumerate(images):
        start = time.perf_counter()
        try:
            decoded = load_image(path)
            decode_ms = (time.perf_counter() - start) * 1000
            result = scanner.scan([decoded], [str(path)], confidence=conf, decode_ms=[decode_ms], tiling=mode)[0]
        except HazardVisionError as error:
            failed += 1
            problem = ScanError(source=str(path), error=type(error).__name__, message=str(error))
            if as_json:
                print(problem.model_dump_json(), flush=True)
            err.print(f"[red]{path}:[/red] {error}", highlight=False)
            continue
        if annotate is not None:
            _write_annotated(scanner, decoded, result, annotate, single=len(images) == 1, index=index)
        if as_json:
            print(result.model_dump_json(), flush=True)
        else:
            _print_table(result)
    if failed:
        raise typer.Exit(1)


def _write_annotated(
    scanner: Scanner, decoded: DecodedImage, result: ScanResult, target: Path, *, single: bool, index: int
) -> None:
    annotator = HazardAnnotator(scanner.catalogue)
    picture = annotator.annotate(decoded.pixels, result_detections(result))
    if single and target.suffix.lower() in {".jpg", ".jpeg", ".png"}:
        out = target
    else:
        out = target / f"{index:03d}_{Path(result.source).stem}.jpg"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), picture):
        err.print(f"[yellow]could not write {out}[/yellow]")


def _print_table(result: ScanResult) -> None:
    console = Console(file=sys.stdout)
    models = ", ".join(f"{m.pack} {m.version}" for m in result.models)
    context = len(result.objects) - len(result.findings)
    summary = (f"{len(result.findings)} hazard(s), {context} other object(s), "
               f"{result.timings_ms.get('total', 0):.0f} ms")
    title = f"{result.source}  ({result.image.width}x{result.image.height}; {models})"
    if not result.findings:
        console.print(f"{title}\nno hazards found; {summary}", highlight=False)
        return
    table = Table(title=title)
    for column in ("severity", "hazard", "class", "conf", "box", "rule", "advice"):
        table.add_column(column)
    for finding in result.findings:
        b = finding.box
        table.add_row(finding.hazard.severity.value, finding.hazard.name.en, finding.class_name,
                      f"{finding.confidence:.2f}", f"{b.x1:.0f},{b.y1:.0f},{b.x2:.0f},{b.y2:.0f}",
                      finding.hazard.rules[0].ref if finding.hazard.rules else "", finding.hazard.advice.en)
    console.print(table)
    for number, finding in enumerate(result.findings, 1):
        for case in finding.similar_cases:
            where = ", ".join(filter(None, [case.site, case.enterprise, case.source]))
            console.print(f"  finding {number} ({finding.class_name}) looks like case {case.case_id} "
                          f"[{case.class_name}, score {case.score:.2f}; {where}] {case.thumbnail or ''}",
                          highlight=False, markup=False)
    console.print(summary, highlight=False)
