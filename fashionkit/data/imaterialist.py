"""Readers (and a writer) for the Kaggle iMaterialist (Fashion) CSV files.

**2020 (FGVC7)**: ``train.csv`` with ``ImageId, EncodedPixels, Height, Width, ClassId,
AttributesIds``. ``EncodedPixels`` are ``start length`` pairs, 1-based, pixels numbered
top-to-bottom then left-to-right (column-major, as COCO RLE). ``ClassId`` and ``AttributesIds``
(comma-separated) are Fashionpedia ids. ``label_descriptions.json`` beside the CSV, when present,
supplies the names; entries that agree with the built-in ontology (same id, same name) use it, so
the usual file yields exactly the built-in ontology.

**2019 (FGVC6)**: ``ImageId, EncodedPixels, Height, Width, ClassId`` with ``ClassId`` like
``"6_28_50"``: a category id followed by attribute ids of the 2019 label set (46 categories,
92 attributes). Both are mapped to Fashionpedia by name through the ontology's name lookup, from
``label_descriptions.json`` beside the CSV when present, else from the published 2019 names in
:data:`IMATERIALIST2019_ATTRIBUTES`. With the published names all 46 categories and all 92
attributes map (the 2019 attributes are Fashionpedia's "nickname" group, ids 0..91, whose ids
Fashionpedia kept). Attributes that do not map (possible with another label file) are removed
from their annotation and each removal is listed as a notice in the report; the 2019 set has no
silhouette, opening, length, textile, decoration or neckline attributes, so converted 2019 data
carries only nickname attributes. A name Fashionpedia uses in several groups (``kimono``) maps
to its nickname. :func:`imaterialist2019_mapping` returns the mapping and the
unmapped names.

Both: images are ``ImageId`` (2019 ids carry their ``.jpg``; 2020 ids get ``.jpg`` appended) in
``train/`` beside the CSV or in ``images_dir``; the files are checked only if that folder exists.
Image ids are 1..N in sorted ``ImageId`` order (stable for the same CSV whatever its row order);
the Kaggle id is kept as ``kaggle_id``. Annotation ids are 1..M, each row's position among the
CSV's data rows (so they stay put when other rows are skipped). Masks become
compressed COCO RLE, pixel-exact; ``bbox`` and ``area`` are computed from them.
Records are named by CSV line (line 1 is the header).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import numpy as np

from fashionkit.data.annotation_checks import validated_set
from fashionkit.data.annotations import AnnotationColumns, AnnotationSet, ImageInfo
from fashionkit.data.errors import OnInvalid, SkipReport, cannot_read, read_input
from fashionkit.data.masks import kaggle_to_rle, rle_areas, rle_to_kaggle
from fashionkit.errors import InvalidDataError, Problem
from fashionkit.ontology import Attribute, Category, Ontology, load_ontology

__all__ = [
    "read_imaterialist2020",
    "read_imaterialist2019",
    "write_imaterialist2020",
    "imaterialist2019_mapping",
    "IMATERIALIST2019_ATTRIBUTES",
]

# The 92 attribute names of the iMaterialist 2019 (FGVC6) label_descriptions.json, by 2019 id.
IMATERIALIST2019_ATTRIBUTES: tuple[str, ...] = (
    "classic (t-shirt)",
    "polo (shirt)",
    "undershirt",
    "henley (shirt)",
    "ringer (t-shirt)",
    "raglan (t-shirt)",
    "rugby (shirt)",
    "sailor (shirt)",
    "crop (top)",
    "halter (top)",
    "camisole",
    "tank (top)",
    "peasant (top)",
    "tube (top)",
    "tunic (top)",
    "smock (top)",
    "hoodie",
    "blazer",
    "pea (jacket)",
    "puffer (jacket)",
    "biker (jacket)",
    "trucker (jacket)",
    "bomber (jacket)",
    "anorak",
    "safari (jacket)",
    "mao (jacket)",
    "nehru (jacket)",
    "norfolk (jacket)",
    "classic military (jacket)",
    "track (jacket)",
    "windbreaker",
    "chanel (jacket)",
    "bolero",
    "tuxedo (jacket)",
    "varsity (jacket)",
    "crop (jacket)",
    "jeans",
    "sweatpants",
    "leggings",
    "hip-huggers (pants)",
    "cargo (pants)",
    "culottes",
    "capri (pants)",
    "harem (pants)",
    "sailor (pants)",
    "jodhpur",
    "peg (pants)",
    "camo (pants)",
    "track (pants)",
    "crop (pants)",
    "short (shorts)",
    "booty (shorts)",
    "bermuda (shorts)",
    "cargo (shorts)",
    "trunks",
    "boardshorts",
    "skort",
    "roll-up (shorts)",
    "tie-up (shorts)",
    "culotte (shorts)",
    "lounge (shorts)",
    "bloomers",
    "tutu (skirt)",
    "kilt",
    "wrap (skirt)",
    "skater (skirt)",
    "cargo (skirt)",
    "hobble (skirt)",
    "sheath (skirt)",
    "ball gown (skirt)",
    "gypsy (skirt)",
    "rah-rah (skirt)",
    "prairie (skirt)",
    "flamenco (skirt)",
    "accordion (skirt)",
    "sarong (skirt)",
    "tulip (skirt)",
    "dirndl (skirt)",
    "godet (skirt)",
    "blanket (coat)",
    "parka",
    "trench (coat)",
    "pea (coat)",
    "shearling (coat)",
    "teddy bear (coat)",
    "puffer (coat)",
    "duster (coat)",
    "raincoat",
    "kimono",
    "robe",
    "dress (coat )",
    "duffle (coat)",
)

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_COLUMNS_2020 = ("ImageId", "EncodedPixels", "Height", "Width", "ClassId", "AttributesIds")
_COLUMNS_2019 = ("ImageId", "EncodedPixels", "Height", "Width", "ClassId")


_MAX_LABEL_ID = 100_000


class _Label(msgspec.Struct):
    # Label ids are small (46 categories, at most a few hundred attributes); the bound keeps a
    # damaged 2019 file from asking for a name list of 10**18 entries.
    id: Annotated[int, msgspec.Meta(ge=0, le=_MAX_LABEL_ID)]
    name: str
    supercategory: str = ""
    level: int | None = None


class _LabelFile(msgspec.Struct):
    categories: list[_Label]
    attributes: list[_Label] = []


def _label_file(csv_path: Path) -> _LabelFile | None:
    """``label_descriptions.json`` beside the CSV, checked; ``None`` when there is none."""
    path = csv_path.parent / "label_descriptions.json"
    if not path.is_file():
        return None
    source = str(path)
    data = read_input(path)
    try:
        labels = msgspec.json.decode(data, type=_LabelFile)
    except msgspec.DecodeError as err:  # also ValidationError: JSON of the wrong shape
        raise InvalidDataError(
            [Problem(source, "file", f"not a label_descriptions file ({err})")]
        ) from None
    for kind, entries in (("category", labels.categories), ("attribute", labels.attributes)):
        seen: set[int] = set()
        for entry in entries:
            if entry.id in seen:
                raise InvalidDataError(
                    [Problem(source, f"{kind} id {entry.id}", "appears more than once")]
                )
            seen.add(entry.id)
    return labels


def _ontology_2020(labels: _LabelFile | None) -> Ontology:
    """The ontology named by a 2020 label file: built-in entries where they agree."""
    base = load_ontology()
    if labels is None:
        return base

    def same(name: str, known: Category | Attribute) -> bool:
        return name.strip().lower() == known.name.strip().lower()

    cats, atts = labels.categories, labels.attributes
    if (
        all(base.has_category(c.id) and same(c.name, base.category(c.id)) for c in cats)
        and all(base.has_attribute(a.id) and same(a.name, base.attribute(a.id)) for a in atts)
        and len(cats) == base.num_categories
        and len(atts) == base.num_attributes
    ):
        return base
    categories = [
        base.category(c.id)
        if base.has_category(c.id) and same(c.name, base.category(c.id))
        else Category(c.id, c.name, c.supercategory, 2 if c.level is None else c.level, "")
        for c in cats
    ]
    attributes = [
        base.attribute(a.id)
        if base.has_attribute(a.id) and same(a.name, base.attribute(a.id))
        else Attribute(a.id, a.name, a.supercategory, 1 if a.level is None else a.level, "")
        for a in atts
    ]
    return Ontology(categories, attributes, version=f"{base.version}+label_descriptions")


def imaterialist2019_mapping(
    attribute_names: Iterable[str] = IMATERIALIST2019_ATTRIBUTES,
    category_names: Iterable[str] | None = None,
    ontology: Ontology | None = None,
) -> tuple[dict[int, int], dict[int, int], dict[str, list[str]]]:
    """2019 ids → Fashionpedia ids by name.

    Returns ``(category_map, attribute_map, unmapped)``; ``unmapped`` has keys
    ``"categories"`` and ``"attributes"`` listing ``"<2019 id> <name>: <why>"``. Without
    ``category_names`` the 2019 categories are taken to be Fashionpedia's 46 in id order.
    """
    ontology = ontology or load_ontology()
    if category_names is None:
        category_names = [c.name for c in ontology.categories]
    unmapped: dict[str, list[str]] = {"categories": [], "attributes": []}
    cat_map: dict[int, int] = {}
    for i, name in enumerate(category_names):
        try:
            cat_map[i] = ontology.find_category(name).id
        except KeyError as err:
            unmapped["categories"].append(f"{i} {name}: {err.args[0]}")
    # Every 2019 attribute is a garment nickname; a name that Fashionpedia uses in several
    # groups ("kimono": nickname 88 and sleeve type 216) means its nickname.
    exact: dict[str, list[Attribute]] = {}
    for att in ontology.attributes:
        exact.setdefault(att.name.strip().lower(), []).append(att)
    att_map: dict[int, int] = {}
    for i, name in enumerate(attribute_names):
        same = exact.get(name.strip().lower(), [])
        nicknames = [a for a in same if a.supercategory == "nickname"]
        if len(same) == 1 or len(nicknames) == 1:
            att_map[i] = (same if len(same) == 1 else nicknames)[0].id
            continue
        try:
            att_map[i] = ontology.find_attribute(name).id
        except KeyError as err:
            unmapped["attributes"].append(f"{i} {name}: {err.args[0]}")
    return cat_map, att_map, unmapped


def _names_by_id(entries: list[_Label]) -> list[str]:
    by_id = {e.id: e.name for e in entries}
    return [by_id.get(i, f"<missing 2019 id {i}>") for i in range(max(by_id, default=-1) + 1)]


class _Rows:
    """Parsed CSV rows, built up column by column."""

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.numbers: list[int] = []  # position among the data rows, 1-based: the annotation id
        self.kaggle_ids: list[str] = []
        self.sizes: list[tuple[int, int]] = []
        self.category_ids: list[int] = []
        self.attribute_ids: list[list[int]] = []
        self.rles: list[dict] = []


def _parse_int(text: str, what: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{what} {text!r} is not an integer") from None
    if not -(2**31) <= value < 2**31:
        raise ValueError(f"{what} {value} is out of range")
    return value


_FIELD_LIMIT = 1 << 28


def _is_utf8(record: list[str]) -> bool:
    """False when the row holds bytes that were not UTF-8 (decoded as lone surrogates)."""
    try:
        "".join(record).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_csv(
    path: Path,
    version: Literal[2019, 2020],
    att_map: dict[int, int] | None,
    cat_map: dict[int, int] | None,
) -> tuple[_Rows, list[Problem], list[Problem]]:
    source = str(path)
    rows = _Rows()
    problems: list[Problem] = []
    notices: list[Problem] = []
    try:
        # utf-8-sig: a CSV saved by a spreadsheet starts with a BOM that would hide "ImageId".
        # surrogateescape: a byte that is not UTF-8 spoils its row (reported), not the file.
        handle = path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as err:
        raise cannot_read(path, err) from None
    # EncodedPixels of a large mask with many runs can exceed csv's default 128 KiB field limit.
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except csv.Error as err:
            header = [f"<not CSV: {err}>"]
        expected = _COLUMNS_2020 if version == 2020 else _COLUMNS_2019
        if header is None or tuple(h.strip() for h in header[: len(expected)]) != expected:
            raise InvalidDataError(
                [
                    Problem(
                        source,
                        "line 1",
                        f"header must start with {', '.join(expected)}; found {header!r}",
                    )
                ]
            )
        number = 0
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as err:  # the reader carries on at the next line
                number += 1
                problems.append(Problem(source, f"line {reader.line_num}", f"not CSV: {err}"))
                continue
            line = reader.line_num
            if not record:
                continue
            number += 1
            try:
                if not _is_utf8(record):
                    raise ValueError("holds bytes that are not UTF-8 text")
                if len(record) < len(expected):
                    raise ValueError(f"has {len(record)} fields, expected {len(expected)}")
                image_id, encoded = record[0].strip(), record[1]
                if not image_id:
                    raise ValueError("ImageId is empty")
                height = _parse_int(record[2], "Height")
                width = _parse_int(record[3], "Width")
                if height <= 0 or width <= 0:
                    raise ValueError(f"image size {width}x{height} is not positive")
                if version == 2020:
                    category = _parse_int(record[4], "ClassId")
                    attrs_text = record[5].strip()
                    attrs = [
                        _parse_int(t, "AttributesIds entry")
                        for t in attrs_text.split(",")
                        if attrs_text and attrs_text.lower() != "nan" and t.strip()
                    ]
                else:
                    parts = record[4].strip().split("_")
                    raw_cat = _parse_int(parts[0], "ClassId category")
                    raw_attrs = [_parse_int(t, "ClassId attribute") for t in parts[1:]]
                    assert cat_map is not None and att_map is not None
                    if raw_cat not in cat_map:
                        raise ValueError(f"ClassId category {raw_cat} has no Fashionpedia category")
                    category = cat_map[raw_cat]
                    attrs = []
                    for a in raw_attrs:
                        if a in att_map:
                            attrs.append(att_map[a])
                        else:
                            notices.append(
                                Problem(
                                    source,
                                    f"line {line}",
                                    f"2019 attribute {a} has no Fashionpedia attribute; "
                                    "removed from this annotation",
                                )
                            )
                rle = kaggle_to_rle(encoded, height, width)
            except ValueError as err:
                problems.append(Problem(source, f"line {line}", str(err)))
                continue
            rows.lines.append(line)
            rows.numbers.append(number)
            rows.kaggle_ids.append(image_id)
            rows.sizes.append((height, width))
            rows.category_ids.append(category)
            rows.attribute_ids.append(attrs)
            rows.rles.append(rle)
    return rows, problems, notices


def _build(
    path: Path,
    rows: _Rows,
    problems: list[Problem],
    notices: list[Problem],
    ontology: Ontology,
    images_dir: str | Path | None,
    on_invalid: OnInvalid,
    version: int,
) -> tuple[AnnotationSet, SkipReport]:
    from pycocotools import mask as mask_utils

    source = str(path)
    first_size: dict[str, tuple[int, int, int]] = {}
    extra: dict[int, list[str]] = {}
    for row, (kid, size, line) in enumerate(
        zip(rows.kaggle_ids, rows.sizes, rows.lines, strict=True)
    ):
        seen = first_size.setdefault(kid, (*size, line))
        if seen[:2] != size:
            extra[row] = [
                f"Height/Width {size[0]}/{size[1]} disagree with line {seen[2]} "
                f"({seen[0]}/{seen[1]}) for image {kid}"
            ]
    images = []
    image_id_of: dict[str, int] = {}
    for new_id, kid in enumerate(sorted(first_size), start=1):
        h, w, _ = first_size[kid]
        has_suffix = kid.lower().endswith(_IMAGE_SUFFIXES)
        file_name = kid if has_suffix else f"{kid}.jpg"
        kaggle_id = kid.rsplit(".", 1)[0] if has_suffix else kid
        images.append(ImageInfo(new_id, file_name, w, h, extra={"kaggle_id": kaggle_id}))
        image_id_of[kid] = new_id

    n = len(rows.lines)
    lengths = np.fromiter((len(a) for a in rows.attribute_ids), np.int64, n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    bboxes = (
        np.array(mask_utils.toBbox(rows.rles), np.float64).reshape(n, 4)
        if n
        else (np.zeros((0, 4)))
    )
    areas = rle_areas(rows.rles).astype(np.float64)
    columns = AnnotationColumns(
        ids=np.array(rows.numbers, np.int64),
        image_ids=np.array([image_id_of[k] for k in rows.kaggle_ids], np.int64),
        category_ids=np.array(rows.category_ids, np.int32),
        bboxes=bboxes,
        areas=areas,
        iscrowd=np.zeros(n, np.uint8),
        attribute_offsets=offsets,
        attribute_values=np.fromiter(
            (v for a in rows.attribute_ids for v in a), np.int32, int(offsets[-1])
        ),
        segmentations=[
            {"size": r["size"], "counts": r["counts"].decode("ascii")} for r in rows.rles
        ],
    )
    lines = rows.lines
    kids = [im.extra["kaggle_id"] for im in images]

    if images_dir is None and (path.parent / "train").is_dir():
        images_dir = path.parent / "train"
    ann_set, report = validated_set(
        images,
        columns,
        ontology,
        source,
        on_invalid="skip",
        images_dir=images_dir,
        early_problems=problems,
        row_where=lambda r: f"line {lines[r]}",
        image_where=lambda i: f"image {kids[i]}",
        extra_row_problems=extra,
        info={
            "description": f"converted from Kaggle iMaterialist (Fashion) {version}: {path.name}"
        },
    )
    # Parse errors and validation errors were found in two passes; list them in file order.
    report.problems.sort(key=_line_of)
    if report.problems and on_invalid == "raise":
        raise InvalidDataError(report.problems)
    report.notices[:0] = notices
    return ann_set, report


def _line_of(problem: Problem) -> int:
    """Sort key: CSV line of a ``"line N"`` record, 0 for image records (listed first)."""
    where = problem.where
    return int(where[5:]) if where.startswith("line ") else 0


def read_imaterialist2020(
    path: str | Path,
    images_dir: str | Path | None = None,
    on_invalid: OnInvalid = "raise",
) -> tuple[AnnotationSet, SkipReport]:
    """Read and validate a Kaggle iMaterialist 2020 ``train.csv`` (see module docstring)."""
    path = Path(path)
    ontology = _ontology_2020(_label_file(path))
    rows, problems, notices = _read_csv(path, 2020, None, None)
    return _build(path, rows, problems, notices, ontology, images_dir, on_invalid, 2020)


def read_imaterialist2019(
    path: str | Path,
    images_dir: str | Path | None = None,
    on_invalid: OnInvalid = "raise",
) -> tuple[AnnotationSet, SkipReport]:
    """Read a Kaggle iMaterialist 2019 ``train.csv``, mapping its ids to Fashionpedia by name."""
    path = Path(path)
    labels = _label_file(path)
    ontology = load_ontology()
    if labels is not None:
        cat_map, att_map, unmapped = imaterialist2019_mapping(
            _names_by_id(labels.attributes), _names_by_id(labels.categories), ontology
        )
    else:
        cat_map, att_map, unmapped = imaterialist2019_mapping(ontology=ontology)
    rows, problems, notices = _read_csv(path, 2019, att_map, cat_map)
    ann_set, report = _build(path, rows, problems, notices, ontology, images_dir, on_invalid, 2019)
    label_source = "label_descriptions.json" if labels is not None else "built-in 2019 names"
    for kind in ("categories", "attributes"):
        for entry in unmapped[kind]:
            report.notices.append(
                Problem(label_source, f"2019 {kind[:-1]}", f"not mapped to Fashionpedia: {entry}")
            )
    return ann_set, report


def write_imaterialist2020(ann_set: AnnotationSet, path: str | Path) -> None:
    """Write the set as a Kaggle 2020 ``train.csv`` (``ImageId`` is ``kaggle_id`` when the image
    has one, else the file name without its suffix)."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(_COLUMNS_2020)
        for im in ann_set.images:
            kid = im.extra.get("kaggle_id") or Path(im.file_name).stem
            for ann in ann_set.annotations(im.id):
                writer.writerow(
                    [
                        kid,
                        rle_to_kaggle(ann_set.rle(ann)),
                        im.height,
                        im.width,
                        ann.category_id,
                        ",".join(str(a) for a in ann.attribute_ids),
                    ]
                )
