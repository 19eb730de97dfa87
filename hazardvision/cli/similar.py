"""`hazardvision similar`: past cases of the sample bank that look like a box or a whole photo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hazardvision.catalogue import load_catalogue
from hazardvision.cli.common import HomeOption, JsonOption, err, fail, out
from hazardvision.errors import BankError, HazardVisionError
from hazardvision.images import BGRImage, load_image
from hazardvision.packs.registry import active_packs
from hazardvision.results import SimilarCase
from hazardvision.similar.query import SimilarQuery
from hazardvision.similar.search import SimilarCaseSearch, open_search
from hazardvision.similar.views import photo_views

Box = tuple[float, float, float, float]


def _box(value: str | None) -> Box | None:
    if value is None:
        return None
    parts = value.split(",")
    try:
        x1, y1, x2, y2 = (float(part) for part in parts)
    except ValueError:
        raise typer.BadParameter("give the box as four numbers x1,y1,x2,y2 in pixels, e.g. 10,20,110,220") from None
    if x2 <= x1 or y2 <= y1:
        raise typer.BadParameter(f"the box {value} is empty: x2 must exceed x1 and y2 must exceed y1")
    return x1, y1, x2, y2


def similar(
    image: Annotated[Path, typer.Argument(help="A photo (JPEG, PNG, WebP, BMP, TIFF).")],
    box: Annotated[str | None, typer.Option(help="x1,y1,x2,y2 in pixels: search instances like this box. "
                                            "Without it, the whole photo is compared with the cases' photos.")]
    = None,
    class_name: Annotated[str | None, typer.Option("--class", help="With --box: only instances of this class.")]
    = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many cases.")] = 5,
    site: Annotated[str | None, typer.Option(help="Only cases from this site.")] = None,
    enterprise: Annotated[str | None, typer.Option(help="Only cases of this enterprise.")] = None,
    min_score: Annotated[float | None, typer.Option(min=-1, max=1, help="Only cases at least this similar.")]
    = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the bank's cases that look like a box of a photo, or like the whole photo."""
    region = _box(box)
    try:
        packs = active_packs(home=home)
        search = open_search(home, packs, load_catalogue())
        if search is None:
            raise BankError("the sample bank has no similar-case index; import cases, then run "
                            "`hazardvision bank reindex`")
        photo = load_image(image)
        query = SimilarQuery(k=k, same_class=class_name is not None, site=site, enterprise=enterprise,
                             min_score=min_score)
        cases = _query(search, photo.pixels, region, class_name, query)
    except HazardVisionError as error:
        fail(error)
    if as_json:
        print(json.dumps({"similar_cases": [case.model_dump(mode="json") for case in cases]}))
        return
    if not cases:
        err.print("no similar cases")
    for case in cases:
        where = ", ".join(filter(None, [case.site, case.enterprise, case.source]))
        label = f"{case.class_name} " if case.class_name else ""
        out.print(f"case {case.case_id}: {label}score {case.score:.3f} ({where}) {case.thumbnail or ''}",
                  highlight=False, markup=False)


def _query(
    search: SimilarCaseSearch, pixels: BGRImage, region: Box | None, class_name: str | None, query: SimilarQuery,
) -> list[SimilarCase]:
    """A box is searched in the upright photo; a whole photo in its eight views (turns and mirrors)."""
    if region is not None:
        return search.for_box({pack.name: pack.feature_maps([pixels])[0] for pack in search.packs}, region,
                              class_name, query)
    views = [(view, {pack.name: pack.feature_maps([view])[0] for pack in search.packs}) for view in photo_views(pixels)]
    return search.for_photo(views, query)
