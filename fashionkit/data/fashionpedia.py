"""Reader for Fashionpedia JSON (``instances_attributes_{train,val}2020.json`` and our own output).

The file is decoded with msgspec into small structs; each annotation's ``segmentation`` is kept
as the raw JSON text (polygons, compressed or uncompressed RLE alike) and parsed only when the
annotation is asked for, so loading Fashionpedia train (45,623 images, 333,401 instances) needs
a fraction of the memory of ``json.load``. Everything is then validated
(:mod:`fashionkit.data.annotation_checks`).

Kept on a round trip: ``info``, ``licenses``, every image field (``original_url``, ``license``,
``time_captured``, ``isstatic``, ``kaggle_id`` …, in :attr:`ImageInfo.extra`) and every
annotation field (the format's, plus any other in :attr:`Annotation.extra`, copied as its JSON
text). Other top-level blocks are not kept. The ``categories``/``attributes`` written are the
ontology's; a file whose category names disagree with the ontology's for the same id is rejected
(its ids would mean something else).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
import numpy as np

from fashionkit.data.annotation_checks import validated_set
from fashionkit.data.annotations import AnnotationColumns, AnnotationSet, ImageInfo
from fashionkit.data.errors import OnInvalid, SkipReport, read_input
from fashionkit.errors import InvalidDataError, Problem
from fashionkit.ontology import Ontology, load_ontology

__all__ = ["read_fashionpedia", "decode_instances_file", "DecodedFile", "InstancesFile"]

_NAN4 = (float("nan"),) * 4


# Ranges that fit the numpy columns; a value outside is a per-record error, not an overflow.
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]


class _Annotation(msgspec.Struct, gc=False):
    # gc=False: these hold no cycles, and skipping GC tracking of 333k objects saves real time.
    id: _Int64
    image_id: _Int64
    category_id: _Int32
    segmentation: msgspec.Raw = msgspec.Raw(b"null")
    bbox: tuple[float, float, float, float] | None = None
    area: float | None = None
    iscrowd: Literal[0, 1] = 0
    attribute_ids: list[_Int32] = []


class _StrictAnnotation(_Annotation, forbid_unknown_fields=True, gc=False):
    """Fails on any other field, which sends the file down the path that keeps such fields."""


class InstancesFile(msgspec.Struct):
    """A COCO/Fashionpedia instances file, annotations decoded, images as plain dicts."""

    images: list[dict[str, Any]]
    annotations: Sequence[_Annotation]
    categories: list[dict[str, Any]] = []
    attributes: list[dict[str, Any]] = []
    info: dict[str, Any] | None = None
    licenses: list[Any] | None = None


class _LooseFile(msgspec.Struct):
    images: list[Any]
    annotations: list[msgspec.Raw]
    categories: list[dict[str, Any]] = []
    attributes: list[dict[str, Any]] = []
    info: dict[str, Any] | None = None
    licenses: list[Any] | None = None


class _Image(msgspec.Struct):
    id: _Int64
    file_name: str
    width: _Int32
    height: _Int32


class _StrictFile(InstancesFile):
    annotations: list[_StrictAnnotation]


_FILE_DECODER = msgspec.json.Decoder(_StrictFile)
_ANNOTATION_FIELDS = frozenset(_Annotation.__struct_fields__)


class DecodedFile(NamedTuple):
    """:func:`decode_instances_file`'s result.

    ``file`` without the malformed records; ``problems`` one per malformed record;
    ``invalid_image_ids`` ids of malformed image records (their annotations are invalid too);
    ``annotation_extras`` ``{index into file.annotations: {field: msgspec.Raw}}`` for
    annotations with fields beyond the format's.
    """

    file: InstancesFile
    problems: list[Problem]
    invalid_image_ids: set[int]
    annotation_extras: dict[int, dict[str, msgspec.Raw]]


def decode_instances_file(data: bytes, source: str) -> DecodedFile:
    """Decode a COCO-style instances file; records of the wrong shape become problems.

    The fast path decodes everything in one typed pass. Only if that fails (a malformed record,
    or annotations with fields beyond the format's) does it decode record by record, so that
    each malformed image or annotation is named (by its id when it has one), the rest can still
    be used under ``on_invalid="skip"``, and extra annotation fields are kept.
    """
    try:
        file: InstancesFile = _FILE_DECODER.decode(data)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as err:
        raise InvalidDataError([Problem(source, "file", f"not valid JSON ({err})")]) from None
    else:
        file.images, problems, bad_ids = _checked_images(file.images, source)
        return DecodedFile(file, problems, bad_ids, {})
    try:
        loose = msgspec.json.decode(data, type=_LooseFile)
    except msgspec.ValidationError as err:
        raise InvalidDataError(
            [Problem(source, "file", f"not an instances file ({err})")]
        ) from None
    except msgspec.DecodeError as err:  # the typed pass stopped at a bad record before this
        raise InvalidDataError([Problem(source, "file", f"not valid JSON ({err})")]) from None
    images, problems, bad_ids = _checked_images(loose.images, source)
    anns: list[_Annotation] = []
    extras: dict[int, dict[str, msgspec.Raw]] = {}
    for k, raw in enumerate(loose.annotations):
        try:
            ann = msgspec.json.decode(raw, type=_Annotation)
            fields = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
            extra = {key: v for key, v in fields.items() if key not in _ANNOTATION_FIELDS}
            for key, value in extra.items():
                _check_extra(key, value)
        except msgspec.DecodeError as err:  # and ValidationError, its subclass
            # The file-level pass does not look inside records' strings: bad UTF-8 shows here.
            problems.append(Problem(source, _record_name(raw, "annotation", k), str(err)))
            continue
        if extra:
            extras[len(anns)] = extra
        anns.append(ann)
    file = InstancesFile(
        images=images,
        annotations=anns,
        categories=loose.categories,
        attributes=loose.attributes,
        info=loose.info,
        licenses=loose.licenses,
    )
    return DecodedFile(file, problems, bad_ids, extras)


def _check_extra(key: str, value: msgspec.Raw) -> None:
    """An extra field is kept as its JSON text; it must still decode when it is read back
    (``1e999`` is valid JSON that no number holds)."""
    try:
        msgspec.json.decode(value)
    except msgspec.DecodeError as err:
        raise msgspec.ValidationError(f"field {key!r}: {err}") from None


def _checked_images(
    records: list[Any], source: str
) -> tuple[list[dict[str, Any]], list[Problem], set[int]]:
    """Image records with the required fields and types, a problem for each other one, and the
    ids of those others (where they have one)."""
    good: list[dict[str, Any]] = []
    problems: list[Problem] = []
    bad_ids: set[int] = set()
    for k, rec in enumerate(records):
        try:
            msgspec.convert(rec, _Image)
        except msgspec.ValidationError as err:
            rid = rec.get("id") if isinstance(rec, dict) else None
            if isinstance(rid, int) and -(2**63) <= rid < 2**63:
                where = f"image id {rid}"
                bad_ids.add(rid)
            else:
                where = f"image #{k} (0-based position in the file)"
            problems.append(Problem(source, where, str(err)))
            continue
        good.append(rec)
    return good, problems, bad_ids


def _record_name(raw: msgspec.Raw, kind: str, index: int) -> str:
    try:  # only the id is decoded: another field may be what is wrong with the record
        rid = msgspec.json.decode(msgspec.json.decode(raw, type=dict[str, msgspec.Raw])["id"])
        if isinstance(rid, int):
            return f"{kind} id {rid}"
    except (msgspec.DecodeError, KeyError):
        pass
    return f"{kind} #{index} (0-based position in the file)"


def images_from_dicts(records: list[dict[str, Any]]) -> list[ImageInfo]:
    """Image dicts (already shape-checked) → :class:`ImageInfo`, other fields kept in ``extra``."""
    core = ("id", "file_name", "width", "height")
    return [
        ImageInfo(
            id=r["id"],
            file_name=r["file_name"],
            width=r["width"],
            height=r["height"],
            extra={k: v for k, v in r.items() if k not in core},
        )
        for r in records
    ]


def columns_from_structs(
    anns: Sequence[_Annotation], extras: dict[int, dict[str, msgspec.Raw]] | None = None
) -> AnnotationColumns:
    """Decoded annotation structs (and their extra fields by index) → columns; a missing box or
    area becomes NaN (reported by validation)."""
    n = len(anns)
    lengths = np.fromiter((len(a.attribute_ids) for a in anns), np.int64, n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return AnnotationColumns(
        ids=np.fromiter((a.id for a in anns), np.int64, n),
        image_ids=np.fromiter((a.image_id for a in anns), np.int64, n),
        category_ids=np.fromiter((a.category_id for a in anns), np.int32, n),
        bboxes=np.array([a.bbox or _NAN4 for a in anns], np.float64).reshape(n, 4),
        areas=np.fromiter((np.nan if a.area is None else a.area for a in anns), np.float64, n),
        iscrowd=np.fromiter((a.iscrowd for a in anns), np.uint8, n),
        attribute_offsets=offsets,
        attribute_values=np.fromiter(
            (v for a in anns for v in a.attribute_ids), np.int32, int(offsets[-1])
        ),
        segmentations=[a.segmentation for a in anns],
        extras=dict(extras or {}),
    )


def check_category_names(
    categories: list[dict[str, Any]], ontology: Ontology, source: str
) -> list[Problem]:
    """Problems for declared categories whose name differs from the ontology's for that id."""
    problems = []
    for cat in categories:
        cid, name = cat.get("id"), cat.get("name")
        if not isinstance(cid, int) or not isinstance(name, str) or not ontology.has_category(cid):
            continue
        expected = ontology.category(cid).name
        if name.strip().lower() != expected.strip().lower():
            problems.append(
                Problem(
                    source,
                    f"category id {cid}",
                    f"is named {name!r} here but {expected!r} in the Fashionpedia ontology",
                )
            )
    return problems


def read_fashionpedia(
    path: str | Path,
    images_dir: str | Path | None = None,
    on_invalid: OnInvalid = "raise",
    ontology: Ontology | None = None,
) -> tuple[AnnotationSet, SkipReport]:
    """Read and validate a Fashionpedia JSON file.

    ``images_dir``: when given, image files are checked (missing ones are invalid; a real size
    different from the file's is a notice). Returns the set and what was skipped/noticed.
    Raises :class:`InvalidDataError` (with ``on_invalid="raise"``) naming file and record ids.
    """
    path = Path(path)
    source = str(path)
    ontology = ontology or load_ontology()
    file, problems, bad_image_ids, extras = decode_instances_file(read_input(path), source)
    fatal = check_category_names(file.categories, ontology, source)
    if fatal:
        raise InvalidDataError(fatal)
    images = images_from_dicts(file.images)
    columns = columns_from_structs(file.annotations, extras)
    file.annotations = []  # the structs are copied into columns; drop them early
    return validated_set(
        images,
        columns,
        ontology,
        source,
        on_invalid=on_invalid,
        images_dir=images_dir,
        early_problems=problems,
        invalid_image_ids=bad_image_ids,
        info=file.info,
        licenses=file.licenses,
    )
