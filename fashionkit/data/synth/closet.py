"""A personal closet: one person's items, their own tags, and photos of them wearing them.

``generate_closet(OUT)`` writes::

    OUT/closet.json                 the items and their tags (below)
    OUT/labelled/annotations.json   photos the person has labelled (Fashionpedia format)
    OUT/labelled/images/*.png
    OUT/new/annotations.json        later photos, disjoint from the labelled ones
    OUT/new/images/*.png

``closet.json``: ``{"version": 1, "seed", "size", "tag_types": {name: {"grounded", "values",
"correlate"}}, "items": [{"id": "item-000", "category_id", "known", "tags": {type: value},
"kind", "look_seed", "texture", "palette", "mark": {"shape", "color"}, "look": {...}}]}``.
``look`` is what the item shows when built on a reference figure: ``pattern``, ``colors``
(names), ``attributes`` (Fashionpedia names), ``style`` (``"hoodie"``, ``"boot"``), ``hood_up`` — the item
itself is its ``kind`` and ``look_seed`` (see :mod:`.closet_photos`). ``known: false`` items
are worn only in new photos: the wardrobe has never seen them.

Tags (one value per item and type): ``material`` shows as the fabric's texture, ``brand`` as a
mark on the item and the palette its main colour is drawn from, ``trend`` as its pattern;
``season`` and ``occasion`` are drawn from their own generator, independent of everything drawn,
so no model can beat their prior honestly.

Every annotation carries ``"item_id"`` (a part: its garment's item). Image ids are unique across
both splits (labelled first), and so are annotation ids.
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from fashionkit.data.synth.closet_photos import KINDS, ItemLook, plan_outfit, render_photo
from fashionkit.data.synth.figures import Figure, Z, sample_pose
from fashionkit.data.synth.garments import HOOD
from fashionkit.data.synth.textures import Finish
from fashionkit.errors import InvalidDataError
from fashionkit.ontology import load_ontology

__all__ = [
    "BRANDS",
    "Closet",
    "ClosetItem",
    "ClosetObject",
    "ClosetPhoto",
    "ClosetSplit",
    "ClosetSummary",
    "TAG_TYPES",
    "TagType",
    "generate_closet",
    "load_closet",
]

VERSION = 1


@dataclass(frozen=True)
class TagType:
    """One kind of tag: whether it has a visual correlate (``grounded``, and which one as
    ``correlate``), and the values it takes."""

    grounded: bool
    values: tuple[str, ...]
    correlate: str | None = None


# Brand → (mark shape, mark colour, palette of main colours).
BRANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "northline": ("circle", "white", ("navy", "denim", "charcoal", "light grey", "white", "black")),
    "sole": ("triangle", "red", ("cream", "beige", "camel", "brown", "olive", "khaki")),
    "kobalt": ("square", "yellow", ("royal blue", "black", "grey", "sky blue", "teal", "navy")),
    "verano": ("diamond", "black", ("coral", "orange", "yellow", "mint", "turquoise", "sky blue")),
    "maison rue": ("cross", "mustard", ("burgundy", "black", "pink", "lavender", "purple", "magenta")),
    "fernwood": ("bar", "white", ("green", "olive", "khaki", "camel", "mustard", "brown")),
}

MATERIAL_TEXTURES = {"cotton": "", "denim": "twill", "wool": "heather", "leather": "sheen",
                     "silk": "satin", "linen": "slub"}

# The materials each kind comes in, with their odds.
_MATERIALS: dict[str, dict[str, float]] = {
    "tee": {"cotton": 3, "linen": 1},
    "shirt": {"cotton": 2, "linen": 1.5, "silk": 1, "denim": 1},
    "sweater": {"wool": 3, "cotton": 1},
    "hoodie": {"cotton": 3, "wool": 1},
    "pants": {"denim": 2, "cotton": 1.5, "wool": 1, "linen": 1, "leather": 0.5},
    "shorts": {"denim": 1.5, "cotton": 1.5, "linen": 1},
    "skirt": {"denim": 1, "cotton": 1, "wool": 1, "leather": 1, "silk": 1},
    "dress": {"cotton": 1.5, "silk": 1.5, "linen": 1, "wool": 0.5},
    "jumpsuit": {"cotton": 1, "linen": 1, "denim": 1},
    "jacket": {"denim": 1.5, "leather": 1.5, "wool": 1, "cotton": 1},
    "coat": {"wool": 2.5, "cotton": 1, "leather": 0.5},
    "cardigan": {"wool": 2, "cotton": 1},
    "vest": {"wool": 1, "cotton": 1, "denim": 1},
    "shoes": {"leather": 3, "cotton": 1},
    "bag": {"leather": 3, "cotton": 1},
    "hat": {"wool": 1, "cotton": 1},
    "scarf": {"wool": 1.5, "silk": 1.5, "cotton": 1},
    "belt": {"leather": 1},
}

# How many of each kind a wardrobe holds, relatively.
_KIND_ODDS = {"tee": 3, "shirt": 2.5, "sweater": 2, "hoodie": 1.2, "pants": 2.5, "shorts": 1.2,
              "skirt": 1.5, "dress": 1.5, "jumpsuit": 0.5, "jacket": 1.2, "coat": 1, "cardigan": 1,
              "vest": 0.4, "shoes": 1.6, "bag": 1, "hat": 0.6, "scarf": 0.5, "belt": 0.5}

TRENDS = {"plain": "minimal", "stripe": "preppy", "check": "preppy", "argyle": "preppy",
          "floral": "romantic", "dot": "romantic", "chevron": "romantic",
          "leopard": "statement", "zebra": "statement", "camouflage": "statement"}

# The ungrounded tags' values and their prior odds (uneven, so that the prior is a real baseline).
_SEASONS = {"all-season": 0.35, "summer": 0.25, "winter": 0.25, "spring-autumn": 0.15}
_OCCASIONS = {"casual": 0.4, "work": 0.25, "evening": 0.15, "sport": 0.1, "travel": 0.1}

TAG_TYPES: dict[str, TagType] = {
    "season": TagType(False, tuple(_SEASONS)),
    "material": TagType(True, tuple(MATERIAL_TEXTURES), "texture"),
    "brand": TagType(True, tuple(BRANDS), "mark and palette"),
    "trend": TagType(True, tuple(dict.fromkeys(TRENDS.values())), "pattern"),
    "occasion": TagType(False, tuple(_OCCASIONS)),
}

_LABELLED, _NEW = 0, 1


@dataclass(frozen=True)
class ClosetItem:
    """One of the person's items: ``tags`` holds one value per tag type. ``look`` is what the
    item shows (see the module docstring); :attr:`item_look` draws it again."""

    id: str
    category_id: int
    known: bool
    tags: dict[str, str]
    kind: str = ""
    look_seed: int = 0
    texture: str = ""
    palette: tuple[str, ...] = ()
    mark: tuple[str, str] = ("circle", "white")
    look: dict = field(default_factory=dict)

    @property
    def item_look(self) -> ItemLook:
        return ItemLook(self.id, self.kind, self.look_seed, Finish(self.texture, self.palette), *self.mark,
                        hood_up=bool(self.look.get("hood_up", False)))

    def to_json(self) -> dict:
        return {"id": self.id, "category_id": self.category_id, "known": self.known, "tags": self.tags,
                "kind": self.kind, "look_seed": self.look_seed, "texture": self.texture,
                "palette": list(self.palette), "mark": {"shape": self.mark[0], "color": self.mark[1]},
                "look": self.look}


@dataclass(frozen=True)
class ClosetObject:
    """One annotated object of a photo: ``mask`` ``(H, W)`` bool, ``bbox_xywh`` in pixels;
    ``item_id`` is the closet item it is (a part: its garment's), ``part_of`` the annotation id
    of a part's garment (``None`` for garments and accessories)."""

    item_id: str | None
    category_id: int
    bbox_xywh: tuple[float, float, float, float]
    mask: np.ndarray
    annotation_id: int = 0
    part_of: int | None = None


@dataclass(frozen=True)
class ClosetPhoto:
    """One photo: ``path`` of its PNG, ``image_id`` in its split's annotations."""

    path: Path
    image_id: int
    width: int
    height: int
    annotations: tuple[dict, ...] = ()

    @functools.cached_property
    def objects(self) -> list[ClosetObject]:
        """Every annotation with its mask decoded (garments, accessories and their parts)."""
        out = []
        for a in self.annotations:
            seg = a["segmentation"]
            if isinstance(seg, list):
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, self.height, self.width))
            else:
                rle = {"size": seg["size"], "counts": seg["counts"].encode("ascii")}
            out.append(ClosetObject(a.get("item_id"), int(a["category_id"]), tuple(a["bbox"]),
                                    mask_utils.decode(rle).astype(bool), int(a["id"]),
                                    a.get("synth", {}).get("part_of")))
        return out

    @property
    def item_ids(self) -> set[str]:
        return {a["item_id"] for a in self.annotations if a.get("item_id") is not None}


@dataclass(frozen=True)
class ClosetSplit:
    """``dir``: a dataset folder (``annotations.json`` + ``images/``) for train/evaluate."""

    dir: Path
    photos: list[ClosetPhoto]

    @property
    def annotations_path(self) -> Path:
        return self.dir / "annotations.json"

    @property
    def images_dir(self) -> Path:
        return self.dir / "images"


@dataclass(frozen=True)
class Closet:
    seed: int
    items: list[ClosetItem]
    tag_types: dict[str, TagType]
    labelled: ClosetSplit
    new: ClosetSplit

    def item(self, item_id: str) -> ClosetItem:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)


@dataclass
class ClosetSummary:
    """What :func:`generate_closet` wrote; ``seconds`` is the wall time."""

    out_dir: Path
    items: int
    unseen_items: int
    labelled_photos: int
    new_photos: int
    labelled_annotations: int
    new_annotations: int
    categories: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def _weighted(rng: np.random.Generator, odds: dict[str, float]) -> str:
    keys = list(odds)
    w = np.array([odds[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def _realise(kind: str, look_seed: int, finish: Finish) -> tuple[int, dict]:
    """Build the item on a reference figure: its category and what it shows."""
    _, cls, method = KINDS[kind]
    fig = Figure(sample_pose(np.random.default_rng(0)), scale=40.0, angle=0.0, feet=(200.0, 380.0))
    builder = cls(fig, np.random.default_rng(look_seed), finish)
    out = builder.belt(3.0, 0.08) if kind == "belt" else getattr(builder, method)()
    obj = out[0] if isinstance(out, list) else out
    look = {"pattern": obj.paint.pattern, "colors": list(obj.paint.names),
            "attributes": list(obj.attributes), "style": obj.info.get("kind") or kind,
            "hood_up": any(op.item.category_id == HOOD and op.z > Z.HAIR for op in fig.ops)}
    assert obj.category_id is not None
    return int(obj.category_id), look


def _draw_items(seed: int, items: int, unseen: int) -> list[ClosetItem]:
    """The closet's items; the first two known ones are a top and a bottom, so that the known
    items always make an outfit. Tag values of the ungrounded types come from their own
    generator, one per item, which nothing else reads."""
    rng = np.random.default_rng([seed, 1])
    kinds = [_weighted(rng, _KIND_ODDS) for _ in range(items)]
    known = items - unseen
    kinds[0] = _weighted(rng, {k: _KIND_ODDS[k] for k in ("tee", "shirt", "sweater", "hoodie")})
    kinds[1] = _weighted(rng, {k: _KIND_ODDS[k] for k in ("pants", "shorts", "skirt")})
    unknown_at = set((2 + rng.permutation(items - 2)[:unseen]).tolist()) if unseen else set()
    out = []
    for i, kind in enumerate(kinds):
        brand = str(list(BRANDS)[int(rng.integers(len(BRANDS)))])
        shape, mark_color, palette = BRANDS[brand]
        material = _weighted(rng, _MATERIALS[kind])
        look_seed = int(rng.integers(2**31))
        texture = MATERIAL_TEXTURES[material]
        category_id, look = _realise(kind, look_seed, Finish(texture, palette))
        blind = np.random.default_rng([seed, 2, i])
        tags = {"season": _weighted(blind, _SEASONS), "material": material, "brand": brand,
                "trend": TRENDS[look["pattern"]], "occasion": _weighted(blind, _OCCASIONS)}
        out.append(ClosetItem(f"item-{i:03d}", category_id, i not in unknown_at, tags, kind, look_seed,
                              texture, palette, (shape, mark_color), look))
    assert sum(it.known for it in out) == known
    return out


def _plan(seed: int, items: list[ClosetItem], labelled: int, new: int) -> list[list[list[str]]]:
    """Outfits (item ids per figure) of each labelled photo, then each new one. Every photo's
    first figure wears the item least worn so far in its split (so every known item is seen
    when there are photos enough); each unseen item is worn in at least one new photo."""
    rng = np.random.default_rng([seed, 3])
    looks = [it.item_look for it in items]
    known = [lk for lk, it in zip(looks, items, strict=True) if it.known]
    unseen = [lk for lk, it in zip(looks, items, strict=True) if not it.known]
    plans: list[list[list[str]]] = []
    for split, count in ((_LABELLED, labelled), (_NEW, new)):
        worn: Counter = Counter()
        for j in range(count):
            required = [min(known, key=lambda lk: (worn[lk.id], rng.random()))]
            if split == _NEW and unseen:
                extra = unseen[j] if j < len(unseen) else (unseen[int(rng.integers(len(unseen)))]
                                                           if rng.random() < 0.25 else None)
                if extra is not None:
                    required = [extra] + [r for r in required if r.slot != extra.slot]
            pool = known + ([r for r in required if r in unseen])
            first = plan_outfit(rng, pool, worn, required) or plan_outfit(rng, pool, worn, required[:1])
            assert first is not None, "the known items hold a top and a bottom"
            figures = [first]
            if rng.random() < 0.3:
                rest = [lk for lk in known if lk not in first]
                second = plan_outfit(rng, rest, worn)
                if second is not None:
                    figures.append(second)
            for outfit in figures:
                worn.update(lk.id for lk in outfit)
            plans.append([[lk.id for lk in outfit] for outfit in figures])
    return plans


def _render_job(args: tuple) -> tuple[int, int, list[dict], dict]:
    seed, stream, index, size, looks, outfits, path = args
    out = render_photo(looks, outfits, seed, stream, index, size)
    out.image.save(path, format="PNG", compress_level=1)
    return stream, index, out.annotations, out.meta


def generate_closet(
    out_dir: str | Path,
    *,
    items: int = 24,
    labelled_photos: int = 40,
    new_photos: int = 20,
    unseen_items: int = 4,
    image_size: int = 384,
    seed: int = 0,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> ClosetSummary:
    """Draw a closet of ``items`` items (``unseen_items`` of them worn only in new photos) and
    write it with ``labelled_photos`` + ``new_photos`` photos of ``image_size²`` pixels to
    ``out_dir`` (see the module docstring), which must not exist or be empty. The same arguments
    give byte-identical files, whatever ``workers``. ``progress(done, total)`` after each photo.

    Raises ``ValueError`` for arguments out of range, naming the argument."""
    checks = [
        (items >= 2, f"items must be at least 2 (a top and a bottom), not {items}"),
        (0 <= unseen_items <= items - 2,
         f"unseen_items must be within 0..items-2 = {items - 2} (at least a top and a bottom stay known), not {unseen_items}"),
        (labelled_photos >= 1, f"labelled_photos must be at least 1, not {labelled_photos}"),
        (new_photos >= 0, f"new_photos must not be negative, not {new_photos}"),
        (new_photos >= unseen_items,
         f"new_photos ({new_photos}) must be at least unseen_items ({unseen_items}): each unseen item is worn in a new photo"),
        (image_size >= 64, f"image_size must be at least 64 pixels, not {image_size}"),
        (workers >= 1, f"workers must be at least 1, not {workers}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder")
    start = time.perf_counter()
    closet_items = _draw_items(seed, items, unseen_items)
    plans = _plan(seed, closet_items, labelled_photos, new_photos)
    looks = {it.id: it.item_look for it in closet_items}
    splits = (("labelled", _LABELLED, labelled_photos, 0), ("new", _NEW, new_photos, labelled_photos))
    jobs = []
    for name, stream, count, offset in splits:
        (out / name / "images").mkdir(parents=True, exist_ok=True)
        for j in range(count):
            outfits = plans[offset + j]
            used = {i: looks[i] for outfit in outfits for i in outfit}
            jobs.append((seed, stream, j, image_size, used, outfits, out / name / "images" / f"{j:06d}.png"))
    results = []
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for r in pool.imap(_render_job, jobs, chunksize=max(1, min(8, len(jobs) // (4 * workers)))):
                results.append(r)
                if progress is not None:
                    progress(len(results), len(jobs))
    else:
        for job in jobs:
            results.append(_render_job(job))
            if progress is not None:
                progress(len(results), len(jobs))

    summary = ClosetSummary(out, items, unseen_items, labelled_photos, new_photos, 0, 0)
    ontology = load_ontology()
    next_id = 1
    for name, stream, _count, offset in splits:
        images, annotations = [], []
        for _, index, anns, meta in sorted(r for r in results if r[0] == stream):
            image_id = offset + index + 1
            images.append({"id": image_id, "file_name": f"{index:06d}.png", "width": image_size,
                           "height": image_size, "synth": meta})
            local_to_global = {}
            for a in anns:
                local_to_global[a["id"]] = next_id
                a = dict(a, id=next_id, image_id=image_id)
                synth = dict(a["synth"])
                if synth.get("part_of") is not None:
                    synth["part_of"] = local_to_global[synth["part_of"]]
                a["synth"] = synth
                annotations.append(a)
                summary.categories[a["category_id"]] += 1
                next_id += 1
        data = {
            "info": {"description": f"fashionkit personal closet, {name} photos", "seed": seed,
                     "size": [image_size, image_size], "split": name, "ontology": ontology.version},
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": ontology.categories_json(),
            "attributes": ontology.attributes_json(),
        }
        (out / name / "annotations.json").write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        if stream == _LABELLED:
            summary.labelled_annotations = len(annotations)
        else:
            summary.new_annotations = len(annotations)
    doc = {
        "version": VERSION,
        "seed": seed,
        "size": image_size,
        "tag_types": {k: {"grounded": t.grounded, "values": list(t.values), "correlate": t.correlate}
                      for k, t in TAG_TYPES.items()},
        "items": [it.to_json() for it in closet_items],
    }
    (out / "closet.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    summary.seconds = time.perf_counter() - start
    return summary


def _load_split(folder: Path) -> ClosetSplit:
    path = folder / "annotations.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        by_image: dict[int, list[dict]] = {}
        for a in data["annotations"]:
            by_image.setdefault(int(a["image_id"]), []).append(a)
        photos = [ClosetPhoto(folder / "images" / img["file_name"], int(img["id"]), int(img["width"]),
                              int(img["height"]), tuple(by_image.get(int(img["id"]), ())))
                  for img in data["images"]]
    except FileNotFoundError:
        raise InvalidDataError.in_file(path, "missing: not a closet folder") from None
    except (ValueError, KeyError, TypeError) as err:
        raise InvalidDataError.in_file(path, f"not a closet split's annotations: {err!r}") from None
    return ClosetSplit(folder, photos)


def load_closet(folder: str | Path) -> Closet:
    """Read what :func:`generate_closet` wrote. Raises
    :class:`~fashionkit.errors.InvalidDataError` naming the file that is missing or malformed."""
    root = Path(folder)
    path = root / "closet.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("version") != VERSION:
            raise ValueError(f"version {doc.get('version')!r}, expected {VERSION}")
        tag_types = {k: TagType(bool(v["grounded"]), tuple(v["values"]), v.get("correlate"))
                     for k, v in doc["tag_types"].items()}
        items = [ClosetItem(d["id"], int(d["category_id"]), bool(d["known"]), dict(d["tags"]), d["kind"],
                            int(d["look_seed"]), d["texture"], tuple(d["palette"]),
                            (d["mark"]["shape"], d["mark"]["color"]), d["look"])
                 for d in doc["items"]]
    except FileNotFoundError:
        raise InvalidDataError.in_file(path, "missing: not a closet folder") from None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InvalidDataError.in_file(path, f"not a closet description: {err}") from None
    return Closet(int(doc["seed"]), items, tag_types, _load_split(root / "labelled"), _load_split(root / "new"))
