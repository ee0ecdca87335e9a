"""Reader for plain COCO instance JSON whose categories are Fashionpedia garments by name.

A COCO file numbers its categories as it likes; we map each declared category to the
Fashionpedia category of the same name (any comma form, case-insensitive: ``"t-shirt"`` →
``1 "top, t-shirt, sweatshirt"``). Annotations of a category that has no Fashionpedia
counterpart, or whose ``category_id`` is not declared, are invalid (named by annotation id).
``attribute_ids`` are kept when present (Fashionpedia ids), else empty. Images and segmentations
are handled exactly as in :mod:`fashionkit.data.fashionpedia`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from fashionkit.data.annotation_checks import validated_set
from fashionkit.data.annotations import AnnotationSet
from fashionkit.data.errors import OnInvalid, SkipReport, read_input
from fashionkit.data.fashionpedia import (
    columns_from_structs,
    decode_instances_file,
    images_from_dicts,
)
from fashionkit.ontology import Ontology, load_ontology

__all__ = ["read_coco", "category_mapping"]


def category_mapping(
    categories: list[dict], ontology: Ontology
) -> tuple[dict[int, int], dict[int, str]]:
    """COCO ``categories`` → (file id → Fashionpedia id, file id → why it does not map)."""
    mapping: dict[int, int] = {}
    unmapped: dict[int, str] = {}
    for cat in categories:
        cid, name = cat.get("id"), cat.get("name")
        if not isinstance(cid, int):
            continue
        if not isinstance(name, str):
            unmapped[cid] = f"category id {cid} has no name"
            continue
        try:
            mapping[cid] = ontology.find_category(name).id
        except KeyError as err:
            unmapped[cid] = f"category {name!r} (id {cid}): {err.args[0]}"
    return mapping, unmapped


def read_coco(
    path: str | Path,
    images_dir: str | Path | None = None,
    on_invalid: OnInvalid = "raise",
    ontology: Ontology | None = None,
) -> tuple[AnnotationSet, SkipReport]:
    """Read and validate a COCO instances file, mapping categories to Fashionpedia by name."""
    path = Path(path)
    source = str(path)
    ontology = ontology or load_ontology()
    file, problems, bad_image_ids, extras = decode_instances_file(read_input(path), source)
    mapping, unmapped = category_mapping(file.categories, ontology)
    columns = columns_from_structs(file.annotations, extras)
    extra: dict[int, list[str]] = {}
    file_ids = columns.category_ids.tolist()
    mapped = np.empty(len(file_ids), np.int32)
    for row, cid in enumerate(file_ids):
        if cid in mapping:
            mapped[row] = mapping[cid]
        else:
            # Keep the file's id so the message and the report show what the file said.
            mapped[row] = cid
            reason = unmapped.get(cid, f"category id {cid} is not declared in 'categories'")
            extra[row] = [f"{reason}; no Fashionpedia category"]
    columns = dataclasses.replace(columns, category_ids=mapped)
    return validated_set(
        images_from_dicts(file.images),
        columns,
        ontology,
        source,
        on_invalid=on_invalid,
        images_dir=images_dir,
        early_problems=problems,
        extra_row_problems=extra,
        invalid_image_ids=bad_image_ids,
        info=file.info,
        licenses=file.licenses,
    )
