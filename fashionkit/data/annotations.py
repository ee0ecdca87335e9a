"""The in-memory annotation set every reader returns and every consumer reads.

Records use Fashionpedia ids and COCO conventions:

- :class:`ImageInfo`: ``id``, ``file_name`` (relative to the images folder), ``width``,
  ``height`` (as the annotation file states them; masks are in this size), and ``extra``: the
  image's other fields from the file (Fashionpedia's ``original_url``, ``license``,
  ``time_captured``, ``isstatic``, ``kaggle_id`` …), written back unchanged.
- :class:`Annotation`: ``bbox`` is XYWH in pixels, ``area`` the mask's pixel count,
  ``segmentation`` a list of polygons (``[[x0, y0, x1, y1, ...], ...]``) or an RLE dict
  (``{"size": [h, w], "counts": str | list[int]}``, compressed or uncompressed),
  ``attribute_ids`` Fashionpedia attribute ids, ``extra`` the record's other fields.

Storage is columnar so that Fashionpedia-train scale (333k instances) loads in a fraction of
the memory of one Python dict per annotation: ids, boxes, areas and attribute ids live in numpy
arrays (:class:`AnnotationColumns`), and each segmentation stays as the JSON text it was read
from (a ``msgspec.Raw`` slice of the file) until an :class:`Annotation` is asked for. Masks are
decoded only on request (:meth:`AnnotationSet.mask`, :meth:`AnnotationSet.rle`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from fashionkit.ontology import Ontology, load_ontology

__all__ = ["ImageInfo", "Annotation", "AnnotationSet", "AnnotationColumns"]

Segmentation = list | dict


@dataclass(frozen=True, slots=True)
class ImageInfo:
    id: int
    file_name: str
    width: int
    height: int
    # Excluded from the hash only because dicts are unhashable; equality still compares it.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Annotation:
    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    area: float
    segmentation: Segmentation
    iscrowd: int = 0
    attribute_ids: tuple[int, ...] = field(default_factory=tuple)
    # Other fields of the record in the file (e.g. the synthetic world's colours), kept for the
    # round trip. Not hashed (dicts are unhashable); compared.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, eq=False)  # eq on numpy fields would be ambiguous; compare by identity
class AnnotationColumns:
    """All annotations of a set as arrays, row ``i`` being the ``i``-th annotation in input order.

    ``ids``, ``image_ids``: ``(N,) int64``; ``category_ids``: ``(N,) int32``; ``bboxes``:
    ``(N, 4) float64`` XYWH; ``areas``: ``(N,) float64``; ``iscrowd``: ``(N,) uint8``;
    attribute ids of row ``i`` are ``attribute_values[attribute_offsets[i]:attribute_offsets[i+1]]``
    (``attribute_offsets``: ``(N+1,) int64``, ``attribute_values``: ``(M,) int32``);
    ``segmentations``: length-N list of ``msgspec.Raw`` JSON text or decoded polygon/RLE objects;
    ``extras``: ``{row: {field: value or msgspec.Raw}}`` for rows with fields beyond these.
    """

    ids: np.ndarray
    image_ids: np.ndarray
    category_ids: np.ndarray
    bboxes: np.ndarray
    areas: np.ndarray
    iscrowd: np.ndarray
    attribute_offsets: np.ndarray
    attribute_values: np.ndarray
    segmentations: list
    extras: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_annotations(cls, anns: Sequence[Annotation]) -> AnnotationColumns:
        n = len(anns)
        lengths = np.fromiter((len(a.attribute_ids) for a in anns), np.int64, n)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.fromiter((v for a in anns for v in a.attribute_ids), np.int32, int(offsets[-1]))
        return cls(
            ids=np.fromiter((a.id for a in anns), np.int64, n),
            image_ids=np.fromiter((a.image_id for a in anns), np.int64, n),
            category_ids=np.fromiter((a.category_id for a in anns), np.int32, n),
            bboxes=np.array([a.bbox for a in anns], np.float64).reshape(n, 4),
            areas=np.fromiter((a.area for a in anns), np.float64, n),
            iscrowd=np.fromiter((a.iscrowd for a in anns), np.uint8, n),
            attribute_offsets=offsets,
            attribute_values=values,
            segmentations=[a.segmentation for a in anns],
            extras={i: dict(a.extra) for i, a in enumerate(anns) if a.extra},
        )

    def take(self, rows: np.ndarray) -> AnnotationColumns:
        """The given rows (int indices, in the given order)."""
        rows = np.asarray(rows, np.int64)
        starts = self.attribute_offsets[rows]
        lengths = self.attribute_offsets[rows + 1] - starts
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Gather each kept row's attribute slice with one vectorised index.
        gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(int(offsets[-1]))
        return AnnotationColumns(
            ids=self.ids[rows],
            image_ids=self.image_ids[rows],
            category_ids=self.category_ids[rows],
            bboxes=self.bboxes[rows],
            areas=self.areas[rows],
            iscrowd=self.iscrowd[rows],
            attribute_offsets=offsets,
            attribute_values=self.attribute_values[gather],
            segmentations=[self.segmentations[i] for i in rows.tolist()],
            extras={
                new: self.extras[old] for new, old in enumerate(rows.tolist()) if old in self.extras
            },
        )


def _decoded(seg: Any) -> Segmentation:
    if isinstance(seg, msgspec.Raw):
        return msgspec.json.decode(seg)
    return seg


def _segmentation_for_json(seg: Any) -> Any:
    if isinstance(seg, dict) and isinstance(seg.get("counts"), bytes):
        return {"size": [int(v) for v in seg["size"]], "counts": seg["counts"].decode("ascii")}
    return seg


class AnnotationSet:
    """Images and their annotations, indexed by image id.

    ``images`` keep their input order; ``annotations(image_id)`` returns that image's
    annotations in input order. ``source`` names the file it was read from (for messages);
    ``info`` and ``licenses`` are the file's top-level blocks, written back unchanged.
    """

    def __init__(
        self,
        images: Sequence[ImageInfo],
        annotations: Sequence[Annotation],
        ontology: Ontology | None = None,
        source: str | None = None,
        info: dict[str, Any] | None = None,
        *,
        licenses: list[Any] | None = None,
    ):
        self._setup(
            images,
            AnnotationColumns.from_annotations(list(annotations)),
            ontology,
            source,
            info,
            licenses,
        )

    @classmethod
    def from_columns(
        cls,
        images: Sequence[ImageInfo],
        columns: AnnotationColumns,
        ontology: Ontology | None = None,
        source: str | None = None,
        info: dict[str, Any] | None = None,
        licenses: list[Any] | None = None,
    ) -> AnnotationSet:
        """Build a set straight from columns (the readers' path: no per-annotation objects)."""
        self = cls.__new__(cls)
        self._setup(images, columns, ontology, source, info, licenses)
        return self

    def _setup(self, images, columns, ontology, source, info, licenses) -> None:
        self.ontology = ontology or load_ontology()
        self.source = source
        self.info = dict(info or {})
        self.licenses = list(licenses) if licenses is not None else None
        self._images = list(images)
        self._image_by_id = {im.id: im for im in self._images}
        self._cols = columns
        # A stable sort by image id gives every image a contiguous block of rows that keeps
        # input order; lookups are two binary searches instead of a dict of lists.
        self._order = np.argsort(columns.image_ids, kind="stable")
        self._sorted_image_ids = columns.image_ids[self._order]

    # -- images ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._images)

    @property
    def images(self) -> Sequence[ImageInfo]:
        return self._images

    @property
    def image_ids(self) -> list[int]:
        return [im.id for im in self._images]

    def image(self, image_id: int) -> ImageInfo:
        try:
            return self._image_by_id[image_id]
        except KeyError:
            raise KeyError(f"no image with id {image_id} in {self.source or 'this set'}") from None

    # -- annotations -----------------------------------------------------------------------
    @property
    def num_annotations(self) -> int:
        return len(self._cols)

    @property
    def columns(self) -> AnnotationColumns:
        """The annotations as arrays (read them, do not modify them)."""
        return self._cols

    def rows(self, image_id: int) -> np.ndarray:
        """Row indices into :attr:`columns` of one image's annotations, in input order."""
        lo = np.searchsorted(self._sorted_image_ids, image_id, side="left")
        hi = np.searchsorted(self._sorted_image_ids, image_id, side="right")
        return self._order[lo:hi]

    def annotation_at(self, row: int) -> Annotation:
        """The annotation in row ``row`` of :attr:`columns` (segmentation decoded)."""
        c = self._cols
        lo, hi = c.attribute_offsets[row], c.attribute_offsets[row + 1]
        x, y, w, h = c.bboxes[row].tolist()
        return Annotation(
            id=int(c.ids[row]),
            image_id=int(c.image_ids[row]),
            category_id=int(c.category_ids[row]),
            bbox=(x, y, w, h),
            area=float(c.areas[row]),
            segmentation=_decoded(c.segmentations[row]),
            iscrowd=int(c.iscrowd[row]),
            attribute_ids=tuple(c.attribute_values[lo:hi].tolist()),
            extra={k: _decoded(v) for k, v in c.extras.get(row, {}).items()},
        )

    def annotations(self, image_id: int) -> list[Annotation]:
        return [self.annotation_at(int(r)) for r in self.rows(image_id)]

    def iter_annotations(self) -> Iterator[Annotation]:
        return (self.annotation_at(i) for i in range(len(self._cols)))

    # -- masks -----------------------------------------------------------------------------
    def rle(self, ann: Annotation) -> dict:
        """Compressed RLE (pycocotools form, ``counts`` as bytes) in the image's size."""
        from fashionkit.data.masks import segmentation_to_rle

        im = self.image(ann.image_id)
        return segmentation_to_rle(ann.segmentation, im.height, im.width)

    def mask(self, ann: Annotation) -> np.ndarray:
        """The annotation's mask, ``H×W bool``."""
        from pycocotools import mask as mask_utils

        return mask_utils.decode(self.rle(ann)).astype(bool)

    # -- output ----------------------------------------------------------------------------
    def _images_json(self) -> list[dict]:
        return [
            {
                "id": im.id,
                "file_name": im.file_name,
                "width": im.width,
                "height": im.height,
                **{k: v for k, v in im.extra.items() if k not in _IMAGE_CORE},
            }
            for im in self._images
        ]

    def _annotation_dicts(self, decode: bool, lo: int = 0, hi: int | None = None) -> list[dict]:
        """Annotation records of rows ``lo:hi`` as JSON-ready dicts."""
        c = self._cols
        hi = len(c) if hi is None else hi
        offs = c.attribute_offsets[lo : hi + 1].tolist()
        attrs = c.attribute_values[offs[0] : offs[-1]].tolist()
        base = offs[0]
        segs = c.segmentations[lo:hi]
        extras = c.extras
        out = []
        for i, (aid, iid, cid, bbox, area, crowd) in enumerate(
            zip(
                c.ids[lo:hi].tolist(),
                c.image_ids[lo:hi].tolist(),
                c.category_ids[lo:hi].tolist(),
                c.bboxes[lo:hi].tolist(),
                c.areas[lo:hi].tolist(),
                c.iscrowd[lo:hi].tolist(),
                strict=True,
            )
        ):
            seg = _decoded(segs[i]) if decode else segs[i]
            record = {
                "id": aid,
                "image_id": iid,
                "category_id": cid,
                "segmentation": _segmentation_for_json(seg),
                "bbox": bbox,
                "area": area,
                "iscrowd": crowd,
                "attribute_ids": attrs[offs[i] - base : offs[i + 1] - base],
            }
            extra = extras.get(lo + i)
            if extra:
                for key, value in extra.items():
                    if key not in record:
                        record[key] = _decoded(value) if decode else value
            out.append(record)
        return out

    def _document(self, annotations: Any) -> dict:
        doc: dict[str, Any] = {"info": self.info}
        if self.licenses is not None:
            doc["licenses"] = self.licenses
        doc["images"] = self._images_json()
        doc["annotations"] = annotations
        doc["categories"] = self.ontology.categories_json()
        doc["attributes"] = self.ontology.attributes_json()
        return doc

    def to_json(self) -> dict:
        """Fashionpedia JSON (``info``, [``licenses``], ``images``, ``annotations``,
        ``categories``, ``attributes``). Compressed RLE counts are written as str."""
        return self._document(self._annotation_dicts(decode=True))

    def write(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``; segmentations read from a file are copied as the
        exact JSON text they were read as (no float re-formatting).

        Annotations are encoded in chunks, so writing Fashionpedia train costs tens of MB on
        top of the set instead of a second copy of the file in memory.
        """
        head, tail = _ENCODER.encode(self._document(_ANNOTATIONS_SLOT)).split(
            _ANNOTATIONS_SLOT_JSON
        )
        with Path(path).open("wb") as f:
            f.write(head)
            f.write(b"[")
            for lo in range(0, len(self._cols), _WRITE_CHUNK):
                if lo:
                    f.write(b",")
                chunk = _ENCODER.encode(self._annotation_dicts(False, lo, lo + _WRITE_CHUNK))
                f.write(memoryview(chunk)[1:-1])  # drop the chunk's own [ ]
            f.write(b"]")
            f.write(tail)


_WRITE_CHUNK = 20_000
# Stands in for the annotation list while the rest of the document is encoded; a string no
# encoded key or value can contain (JSON strings cannot hold a raw NUL).
_ANNOTATIONS_SLOT_JSON = b'"\x00annotations\x00"'
_ANNOTATIONS_SLOT = msgspec.Raw(_ANNOTATIONS_SLOT_JSON)


_IMAGE_CORE = frozenset({"id", "file_name", "width", "height"})


def _numpy_to_builtin(obj: Any) -> Any:
    # Hand-built segmentations often hold numpy scalars/arrays (polygons from cv2, counts).
    if isinstance(obj, np.generic | np.ndarray):
        return obj.tolist()
    raise NotImplementedError(f"cannot write {type(obj).__name__} to JSON")


_ENCODER = msgspec.json.Encoder(enc_hook=_numpy_to_builtin)
