"""A model that knows your clothes: recognition of a person's own items, their own tags and a
personal detector, measured on personal closets of held-out seeds.

For each closet (``fashionkit.data.synth.closet.generate_closet``, seeds ``--seed``,
``--seed + 1`` …; the person's labelled photos and their new photos are disjoint, and some new
photos hold items never seen):

- **detector**: a base ``cpu-tiny`` detector trained here for ``--minutes`` on a generic
  synthetic world (not on any closet), or ``--weights MODEL.pt``. Its features feed the
  embedding; a random-weight detector of the same architecture is the features' baseline.
- **recognition** on the new photos' garments and accessories, against a
  :class:`~fashionkit.personal.recognition.Gallery` fitted on the labelled photos' ground-truth
  masks (the person's labels): top-1 on known items, precision and recall of "new item", for
  the learned embedding (trained detector; the gallery weighs its features block, and the same
  with the embedder's own block weights; its threshold set for one new item in ten,
  ``NEW_ITEM_SHARE``, and the same with both mistakes weighed alike; the same without its
  weave and print blocks), the same with random detector weights, the colour
  histogram through the same calibrated gallery, and today's duplicate rule (same category,
  colour-histogram intersection ≥ ``DUPLICATE_APPEARANCE``; its main-colour gate left out). On
  ground-truth masks (recognition alone) AND on the detector's own detections of the new photos
  (matched to ground truth at mask IoU ≥ 0.5; missed items are counted as detection recall).
- **tags**, per tag type: the :class:`~fashionkit.personal.tags.TagModel` probe (given the
  items' categories; the same on the embedding without its weave and print blocks; and the
  same with the log-loss gate alone, ``require_accuracy=False``) vs today's rules
  (season: ``suggest_seasons`` from the ground-truth attributes, material:
  ``material_from_attributes``; brand, trend and occasion have no rule) vs the prior (the most
  frequent value among the training items, each item once), and the few-shot ceiling: a reader
  of each grounded tag's correlate itself (the texture, the mark, the pattern, as the closet
  records them, so never hidden and never misread) that answers the value of the training items
  sharing the query's correlate (most frequent), else the prior: what the person's own labels
  allow at best. Each known item's tags are predicted by a model
  fitted WITHOUT that item (5 folds over items), unseen items by one fitted on all known items:
  every prediction is for an item the model has not seen, as for a newly photographed one.
- **personal detector**: :func:`fashionkit.personal.finetune.measure_personal_gain` (the
  measurement ``personal_finetune.py`` makes): the base fine-tuned on the first closet's
  labelled photos for ``--finetune-minutes``, mask AP50 and AP on its new photos, base vs
  personal.

Ends with ``RESULT`` lines: ``personal_ap50_gain``, ``finetune_minutes``,
``recognition_top1``, ``new_item_precision``, ``new_item_recall`` (ground-truth masks, learned
embedding, pooled over closets), ``grounded_tag_accuracy`` (mean over grounded tag types),
``ungrounded_tag_gain_over_prior`` (mean over ungrounded ones: beating the prior there is a
leak), and ``recognition_top1_on_detections``, ``detection_recall``.

    .venv/bin/python benchmarks/personalization.py [--quick] [--seed N] [--closets K]
        [--minutes M] [--weights MODEL.pt] [--finetune-minutes M] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fashionkit.data.synth.closet import Closet, ClosetPhoto, generate_closet, load_closet
from fashionkit.data.synth.closet_items import ClosetItem
from fashionkit.ontology import PART_IDS
from fashionkit.personal.embedding import ItemEmbedder, colour_descriptor, embedding_blocks
from fashionkit.personal.finetune import measure_personal_gain
from fashionkit.personal.recognition import Gallery
from fashionkit.personal.tags import TagModel, prior_of
from fashionkit.wardrobe.attributes import material_from_attributes, suggest_seasons
from fashionkit.wardrobe.ingest import DUPLICATE_APPEARANCE


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{model}; {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; {gpu}; "
            f"load average {load}; Python {platform.python_version()}, torch {torch.__version__}")


# -- samples ---------------------------------------------------------------------------------
@dataclass
class Sample:
    """One garment or accessory in one photo: ``item_id`` (ground truth), ``photo`` (group),
    ``mask`` H×W bool, ``box`` XYXY, ``category_id``, ``attribute_ids`` (ground truth)."""

    item_id: str
    photo: str
    category_id: int
    mask: np.ndarray
    box: np.ndarray
    attribute_ids: tuple[int, ...] = ()


@dataclass
class Split:
    samples: list[Sample] = field(default_factory=list)
    pixels: dict[str, np.ndarray] = field(default_factory=dict)


def _pixels(photo: ClosetPhoto) -> np.ndarray:
    with Image.open(photo.path) as image:
        return np.asarray(image.convert("RGB"))


def ground_truth(photos: list[ClosetPhoto]) -> Split:
    """The garments and accessories (not their parts) of ``photos``, with their masks."""
    split = Split()
    for photo in photos:
        name = str(photo.image_id)
        split.pixels[name] = _pixels(photo)
        attributes = {a["id"]: tuple(a.get("attribute_ids", ())) for a in photo.annotations}
        for o in photo.objects:
            if o.item_id is None or o.part_of is not None or o.category_id in PART_IDS:
                continue
            if not o.mask.any():
                continue
            x, y, w, h = o.bbox_xywh
            split.samples.append(Sample(o.item_id, name, o.category_id, o.mask,
                                        np.array([x, y, x + w, y + h], float),
                                        attributes.get(o.annotation_id, ())))
    return split


def embed(embedder: ItemEmbedder, split: Split) -> np.ndarray:
    by_photo: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(split.samples):
        by_photo[s.photo].append(i)
    out = np.zeros((len(split.samples), embedder.dims), np.float32)
    for photo, rows in by_photo.items():
        masks = np.stack([split.samples[i].mask for i in rows])
        boxes = np.stack([split.samples[i].box for i in rows])
        out[rows] = embedder.embed(split.pixels[photo], masks, boxes)
    return out


def colours(split: Split) -> np.ndarray:
    return np.stack([colour_descriptor(split.pixels[s.photo], s.mask) for s in split.samples])


# -- recognition -----------------------------------------------------------------------------
@dataclass
class Recognition:
    """Counts pooled over closets: known queries (and their top-1 and accepted-correct hits),
    new queries, queries called new and those of them right."""

    known: int = 0
    top1: int = 0
    recognised: int = 0
    new: int = 0
    called_new: int = 0
    called_new_right: int = 0

    def add(self, truth: list[str], gallery_items: set[str], best: list[str | None],
            is_new: list[bool]) -> None:
        for t, b, n in zip(truth, best, is_new, strict=True):
            if t in gallery_items:
                self.known += 1
                self.top1 += int(b == t)
                self.recognised += int(b == t and not n)
            else:
                self.new += 1
            self.called_new += int(n)
            self.called_new_right += int(n and t not in gallery_items)

    @property
    def figures(self) -> tuple[float, float, float, float]:
        """top-1, recognised (accepted and right), new-item precision, new-item recall."""
        div = lambda a, b: a / b if b else float("nan")  # noqa: E731
        return (div(self.top1, self.known), div(self.recognised, self.known),
                div(self.called_new_right, self.called_new), div(self.called_new_right, self.new))


def gallery_answers(gallery: Gallery, queries: np.ndarray, categories: list[int] | None = None
                    ) -> tuple[list[str | None], list[bool]]:
    matches = gallery.match(queries, categories=categories)
    return [m.candidates[0][0] if m.candidates else None for m in matches], \
        [m.is_new for m in matches]


def colour_rule_answers(train: Split, train_hist: np.ndarray, queries: list[Sample],
                        query_hist: np.ndarray) -> tuple[list[str | None], list[bool]]:
    """Today's duplicate check: same category, best histogram intersection, a duplicate when
    it is at least DUPLICATE_APPEARANCE (else a new item)."""
    categories = np.array([s.category_id for s in train.samples])
    best, new = [], []
    for q, h in zip(queries, query_hist, strict=True):
        rows = np.flatnonzero(categories == q.category_id)
        if len(rows) == 0:
            best.append(None)
            new.append(True)
            continue
        overlap = np.minimum(train_hist[rows], h).sum(axis=1)
        k = int(np.argmax(overlap))
        best.append(train.samples[rows[k]].item_id)
        new.append(bool(overlap[k] < DUPLICATE_APPEARANCE))
    return best, new


def detections(checkpoint: Path, closet: Closet, truth: Split) -> tuple[Split, int, int]:
    """The detector's garments and accessories on the new photos, each matched to the
    ground-truth sample it overlaps most (mask IoU ≥ 0.5, one detection per sample):
    ``(matched detections as samples, ground-truth samples found, unmatched detections)``."""
    from fashionkit.inference import Predictor

    predictor = Predictor(checkpoint, score_threshold=0.5)
    by_photo: dict[str, list[Sample]] = defaultdict(list)
    for s in truth.samples:
        by_photo[s.photo].append(s)
    out = Split(pixels=truth.pixels)
    found, spurious = 0, 0
    paths = [p.path for p in closet.new.photos]
    for photo, prediction in zip(closet.new.photos, predictor(paths), strict=True):
        name = str(photo.image_id)
        gts = by_photo.get(name, [])
        taken: set[int] = set()
        items = [it for it in prediction.items
                 if it.category_id not in PART_IDS and it.parent is None]
        for item in sorted(items, key=lambda it: -it.score):
            mask = item.mask_array()
            if not mask.any():
                continue
            ious = [float((mask & g.mask).sum() / max((mask | g.mask).sum(), 1)) for g in gts]
            k = int(np.argmax(ious)) if ious else -1
            if k < 0 or ious[k] < 0.5 or k in taken:
                spurious += 1
                continue
            taken.add(k)
            found += 1
            out.samples.append(Sample(gts[k].item_id, name, item.category_id, mask,
                                      np.array(item.box, float), gts[k].attribute_ids))
    return out, found, spurious


# -- tags ------------------------------------------------------------------------------------
_SEASON_RULE = {
    frozenset({"spring", "summer", "autumn", "winter"}): "all-season",
    frozenset({"spring", "summer", "autumn"}): "all-season",
    frozenset({"summer"}): "summer",
    frozenset({"spring", "summer"}): "summer",
    frozenset({"winter"}): "winter",
    frozenset({"autumn", "winter"}): "winter",
    frozenset({"spring", "autumn", "winter"}): "spring-autumn",
    frozenset({"spring", "autumn"}): "spring-autumn",
}


def rule_tags(sample: Sample) -> dict[str, str | None]:
    """Today's rules for the closet's tag types (``None``: the rule says nothing)."""
    material = material_from_attributes(sample.attribute_ids)
    seasons = suggest_seasons(sample.category_id, sample.attribute_ids, material)
    return {"season": _SEASON_RULE.get(frozenset(seasons)), "material": material}


# What each grounded tag shows as, by the closet's own record (for the few-shot ceiling).
_CORRELATES = {"material": lambda it: it.texture, "brand": lambda it: it.mark,
               "trend": lambda it: it.look.get("pattern")}


def ceiling_value(tag_type: str, query: ClosetItem, fitted: list[ClosetItem], prior: str
                  ) -> str | None:
    """The few-shot ceiling's answer (module docstring): the most frequent ``tag_type`` value
    of the ``fitted`` items whose correlate is the ``query``'s, else ``prior``; ``None`` for a
    tag type without a correlate."""
    correlate = _CORRELATES.get(tag_type)
    if correlate is None:
        return None
    same = [it.tags[tag_type] for it in fitted if correlate(it) == correlate(query)]
    return Counter(sorted(same)).most_common(1)[0][0] if same else prior


@dataclass
class TagCounts:
    n: int = 0
    learned: int = 0
    ceiling: int = 0
    rules: int = 0
    rules_answered: int = 0
    prior: int = 0
    chosen: Counter = field(default_factory=Counter)  # (method, view) of each fitted probe


def evaluate_tags(closet: Closet, train: Split, train_emb: np.ndarray, test: Split,
                  test_emb: np.ndarray, counts: dict[str, TagCounts], folds: int = 5,
                  require_accuracy: bool = True) -> None:
    tags_of = {it.id: it.tags for it in closet.items}
    item_of = {it.id: it for it in closet.items}
    known = sorted({s.item_id for s in train.samples})
    rng = np.random.default_rng(closet.seed)
    fold_of = {item: k % folds for k, item in enumerate(rng.permutation(known))}
    train_items = np.array([s.item_id for s in train.samples])
    test_items = np.array([s.item_id for s in test.samples])
    # Each item's category as the person filed it; a new photo's garment is asked about with
    # its own (ground truth here, as the recognition's queries are).
    train_cats = np.array([s.category_id for s in train.samples])
    test_cats = np.array([s.category_id for s in test.samples])
    for fold in [*range(folds), None]:  # None: the unseen items, with every known item
        if fold is None:
            fit_rows = np.ones(len(train_items), bool)
            query = np.array([i not in fold_of for i in test_items])
        else:
            fit_rows = np.array([fold_of[i] != fold for i in train_items])
            query = np.array([fold_of.get(i) == fold for i in test_items])
        if not query.any():
            continue
        fit_tags = [tags_of[i] for i in train_items[fit_rows]]
        model = TagModel.fit(train_emb[fit_rows], fit_tags, groups=list(train_items[fit_rows]),
                             blocks=embedding_blocks(train_emb.shape[1]),
                             categories=train_cats[fit_rows],
                             require_accuracy=require_accuracy)
        predicted = model.predict(test_emb[query], categories=test_cats[query])
        fit_items = sorted(set(train_items[fit_rows].tolist()))
        fitted = [item_of[i] for i in fit_items]
        for tag_type in closet.tag_types:
            prior_value, _ = prior_of([tags_of[i][tag_type] for i in fit_items])
            c = counts[tag_type]
            probe = model.probes[tag_type]
            c.chosen[probe.method if not probe.learned else f"{probe.method}/{probe.view}"] += 1
            for p, row in zip(predicted, np.flatnonzero(query), strict=True):
                truth = tags_of[test_items[row]][tag_type]
                c.n += 1
                c.learned += int(p[tag_type].value == truth)
                c.prior += int(prior_value == truth)
                c.ceiling += int(ceiling_value(tag_type, item_of[test_items[row]], fitted,
                                               prior_value) == truth)
                rule = rule_tags(test.samples[row]).get(tag_type)
                c.rules_answered += int(rule is not None)
                c.rules += int(rule == truth)


# -- detector --------------------------------------------------------------------------------
def train_base(root: Path, minutes: float, images: int, seed: int = 0) -> Path:
    """The base detector of the personal benchmarks (this one and ``personal_finetune.py``):
    ``cpu-tiny`` trained for ``minutes`` on a generic synthetic world of ``images`` pictures
    (seed ``seed``), in which no closet's items are."""
    from fashionkit.data.synth import generate_world
    from fashionkit.engine import apply_overrides, get_recipe, train

    recipe = apply_overrides(get_recipe("cpu-tiny"),
                             [f"seed={seed}", "eval_every=100000", "epochs=1000"])
    world = root / "world"
    t0 = time.perf_counter()
    # No validation split: the base is trained without evaluation, every picture trains it.
    generate_world(world, images=images, size=recipe.data.image_size, seed=seed,
                   val_fraction=0.0, workers=2)
    print(f"base detector: generic synthetic world of {images} images of "
          f"{recipe.data.image_size}² in {time.perf_counter() - t0:.0f} s (seed {seed}, no closet)")
    result = train(recipe, world / "train.json", None, world / "images", root / "run",
                   max_minutes=minutes, progress=False, evaluate=False)
    print(f"base detector: cpu-tiny, {result.epochs_completed} epochs in "
          f"{result.seconds / 60:.1f} min (budget {minutes} min)")
    return Path(result.model_path)


# The blocks the in-run ablation blanks (recognition and tags side by side with the whole).
ABLATED_BLOCKS = ("weave", "print")


def without_block(vectors: np.ndarray, columns: slice) -> np.ndarray:
    """``vectors`` with one block's columns set to zero and each row back to unit length: the
    embedding as it would be without that block, with the same layout."""
    out = vectors.copy()
    out[:, columns] = 0.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def random_detector(checkpoint: Path) -> ItemEmbedder:
    """The embedder of a random-weight model with the trained checkpoint's config and recipe."""
    from fashionkit.modeling import build_model, read_checkpoint

    data = read_checkpoint(checkpoint)
    trained = ItemEmbedder.from_checkpoint(checkpoint)
    torch.manual_seed(0)
    model = build_model(trained.config)
    return ItemEmbedder(model, data.get("recipe"))


# -- main ------------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:5.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one closet, a 2-minute base detector, a 1-minute fine-tune")
    parser.add_argument("--seed", type=int, default=7000, help="first closet seed (held out)")
    parser.add_argument("--closets", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=8.0, help="base detector training")
    parser.add_argument("--world-images", type=int, default=400)
    parser.add_argument("--weights", type=Path, default=None,
                        help="a base detector checkpoint instead of training one")
    parser.add_argument("--finetune-minutes", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=None, help="keep closets and models here")
    args = parser.parse_args()
    if args.quick:
        args.closets, args.minutes, args.world_images, args.finetune_minutes = 1, 2.0, 160, 1.0
    print(f"machine: {machine()}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        base = args.weights or train_base(root / "base", args.minutes, args.world_images, 0)
        learned = ItemEmbedder.from_checkpoint(base)
        random = random_detector(base)
        print(f"embedding: {learned.key}, {learned.dims} dims")

        methods = ("learned", "learned, mistakes alike", "learned, embedder weights",
                   "learned, any category", "learned, no weave or print",
                   "random weights", "colour, calibrated", "colour rule (today)")
        gt_rec = {m: Recognition() for m in methods}
        det_rec = {m: Recognition() for m in ("learned", "colour rule (today)")}
        tag_counts: dict[str, TagCounts] = defaultdict(TagCounts)
        ablated_counts: dict[str, TagCounts] = defaultdict(TagCounts)
        gate_counts: dict[str, TagCounts] = defaultdict(TagCounts)
        thresholds, found_total, truth_total, spurious_total = [], 0, 0, 0
        first_closet: Closet | None = None
        tag_types = {}
        for k in range(args.closets):
            seed = args.seed + k
            t0 = time.perf_counter()
            generate_closet(root / f"closet-{seed}", seed=seed, workers=2)
            closet = load_closet(root / f"closet-{seed}")
            first_closet = first_closet or closet
            tag_types = closet.tag_types
            train, test = ground_truth(closet.labelled.photos), ground_truth(closet.new.photos)
            items = {s.item_id for s in train.samples}
            print(f"\ncloset seed {seed}: {len(closet.items)} items "
                  f"({sum(not it.known for it in closet.items)} never in labelled photos), "
                  f"{len(closet.labelled.photos)} labelled + {len(closet.new.photos)} new photos, "
                  f"{len(train.samples)} + {len(test.samples)} garments/accessories "
                  f"({time.perf_counter() - t0:.0f} s)")
            truth = [s.item_id for s in test.samples]
            groups = [s.photo for s in train.samples]
            train_ids = [s.item_id for s in train.samples]
            t0 = time.perf_counter()
            emb = {"learned": (embed(learned, train), embed(learned, test)),
                   "random weights": (embed(random, train), embed(random, test))}
            ablated = emb["learned"]
            for name in ABLATED_BLOCKS:
                columns = embedding_blocks(learned.dims)[name]
                ablated = (without_block(ablated[0], columns), without_block(ablated[1], columns))
            emb["learned, no weave or print"] = ablated
            hist_train, hist_test = colours(train), colours(test)
            emb["colour, calibrated"] = (np.sqrt(hist_train), np.sqrt(hist_test))
            print(f"  embedded {len(train.samples) + len(test.samples)} items twice in "
                  f"{time.perf_counter() - t0:.0f} s")
            train_cats = [s.category_id for s in train.samples]
            test_cats = [s.category_id for s in test.samples]
            galleries = {}
            for method, (a, b) in emb.items():
                blocks = embedding_blocks(a.shape[1]) if method != "colour, calibrated" else None
                gallery = Gallery.fit(a, train_ids, groups=groups, categories=train_cats,
                                      blocks=blocks)
                galleries[method] = gallery
                gt_rec[method].add(truth, items, *gallery_answers(gallery, b, test_cats))
            anywhere = Gallery.fit(emb["learned"][0], train_ids, groups=groups,
                                   blocks=embedding_blocks(emb["learned"][0].shape[1]))
            # The embedder's own block weights, not the gallery's choice of the features' one.
            fixed = Gallery.fit(emb["learned"][0], train_ids, groups=groups, categories=train_cats)
            gt_rec["learned, embedder weights"].add(
                truth, items, *gallery_answers(fixed, emb["learned"][1], test_cats))
            # The threshold that weighs a known item called new like a new one called known.
            alike = Gallery.fit(emb["learned"][0], train_ids, groups=groups, categories=train_cats,
                                blocks=embedding_blocks(emb["learned"][0].shape[1]),
                                new_share=0.5)
            gt_rec["learned, mistakes alike"].add(
                truth, items, *gallery_answers(alike, emb["learned"][1], test_cats))
            gt_rec["learned, any category"].add(truth, items,
                                                *gallery_answers(anywhere, emb["learned"][1]))
            thresholds.append((galleries["learned"].threshold, galleries["learned"].shrinkage))
            gt_rec["colour rule (today)"].add(
                truth, items, *colour_rule_answers(train, hist_train, test.samples, hist_test))

            dets, found, spurious = detections(base, closet, test)
            found_total += found
            truth_total += len(test.samples)
            spurious_total += spurious
            if dets.samples:
                det_truth = [s.item_id for s in dets.samples]
                det_rec["learned"].add(det_truth, items,
                                       *gallery_answers(galleries["learned"], embed(learned, dets),
                                                        [s.category_id for s in dets.samples]))
                det_rec["colour rule (today)"].add(
                    det_truth, items, *colour_rule_answers(train, hist_train, dets.samples,
                                                           colours(dets)))
            print(f"  detections: {found} of {len(test.samples)} garments found at mask IoU ≥ "
                  f"0.5, {spurious} other detections; learned gallery threshold "
                  f"{galleries['learned'].threshold:.3f} ({alike.threshold:.3f} with both "
                  f"mistakes alike), shrinkage "
                  f"{galleries['learned'].shrinkage}, features weighted "
                  f"{galleries['learned'].feature_weight}")
            evaluate_tags(closet, train, emb["learned"][0], test, emb["learned"][1], tag_counts)
            evaluate_tags(closet, train, emb["learned, no weave or print"][0], test,
                          emb["learned, no weave or print"][1], ablated_counts)
            evaluate_tags(closet, train, emb["learned"][0], test, emb["learned"][1], gate_counts,
                          require_accuracy=False)

        print(f"\nRecognition of the new photos' garments and accessories ({args.closets} "
              f"closet(s) pooled; {gt_rec['learned'].known} known-item and "
              f"{gt_rec['learned'].new} new-item queries on ground-truth masks)")
        print(f"{'':34s} {'top-1':>6s} {'recog.':>6s} {'new P':>6s} {'new R':>6s}")
        for method, r in gt_rec.items():
            print(f"  masks, {method:26s} " + " ".join(f"{_fmt(v):>6s}" for v in r.figures))
        for method, r in det_rec.items():
            print(f"  detections, {method:21s} " + " ".join(f"{_fmt(v):>6s}" for v in r.figures))
        print("  (top-1: best candidate right, known items; recog.: right AND accepted as known; "
              "new P/R: precision/recall of 'new item')")
        detection_recall = found_total / truth_total if truth_total else float("nan")
        print(f"  detector found {found_total}/{truth_total} = {detection_recall:.3f} of the "
              f"garments (IoU ≥ 0.5), plus {spurious_total} other detections")

        print("\nTags of items the model has not seen (per tag type; noise = one binomial "
              "standard error of the prior)")
        print(f"  {'tag type':10s} {'grounded':8s} {'n':>5s} {'learned':>8s} {'no w/p':>8s} "
              f"{'gate only':>9s} {'rules':>8s} {'(answered)':>10s} {'prior':>7s} {'noise':>6s} {'ceiling':>7s}  probe chosen "
              "(fits)")
        grounded, ungrounded_gain = [], []
        for tag_type, tt in tag_types.items():
            c = tag_counts[tag_type]
            if c.n == 0:
                continue
            learned_acc, prior_acc = c.learned / c.n, c.prior / c.n
            noise = math.sqrt(max(prior_acc * (1 - prior_acc), 1e-9) / c.n)
            rules = (f"{c.rules / c.n:8.3f} {c.rules_answered / c.n:10.3f}"
                     if tag_type in ("season", "material") else f"{'—':>8s} {'—':>10s}")
            plain, gate_only = ablated_counts[tag_type], gate_counts[tag_type]
            ceiling = f"{c.ceiling / c.n:7.3f}" if tt.grounded else f"{'—':>7s}"
            print(f"  {tag_type:10s} {'yes' if tt.grounded else 'no':8s} {c.n:5d} "
                  f"{learned_acc:8.3f} {plain.learned / max(plain.n, 1):8.3f} "
                  f"{gate_only.learned / max(gate_only.n, 1):9.3f} {rules} "
                  f"{prior_acc:7.3f} {noise:6.3f} {ceiling}  "
                  + ", ".join(f"{k} {v}" for k, v in c.chosen.most_common(3)))
            if tt.grounded:
                grounded.append(learned_acc)
            else:
                ungrounded_gain.append(learned_acc - prior_acc)

        print("\nPersonal detector")
        assert first_closet is not None
        r = measure_personal_gain(base, first_closet.labelled.dir, first_closet.new.dir,
                                  max_minutes=args.finetune_minutes, seed=0,
                                  out_path=root / "personal.pt")
        gain, minutes = r["personal_ap50_gain"], r["finetune_minutes"]
        print(f"  fine-tuned on {r['photos']:.0f} labelled photos of closet seed "
              f"{first_closet.seed}: {r['steps']:.0f} steps in {minutes:.1f} min; on its "
              f"{len(first_closet.new.photos)} new photos:")
        print(f"  {'model':10s} {'mask AP50':>9s} {'mask AP':>8s}")
        print(f"  {'base':10s} {r['base_ap50']:9.3f} {r['base_ap']:8.3f}")
        print(f"  {'personal':10s} {r['personal_ap50']:9.3f} {r['personal_ap']:8.3f}")
    print(f"\ntotal {(time.perf_counter() - started) / 60:.1f} min (timings on a shared machine "
          "are inflated)")
    top1, _, precision, recall = gt_rec["learned"].figures
    print(f"RESULT personal_ap50_gain {gain:.4f}")
    print(f"RESULT finetune_minutes {minutes:.2f}")
    print(f"RESULT recognition_top1 {top1:.4f}")
    print(f"RESULT new_item_precision {precision:.4f}")
    print(f"RESULT new_item_recall {recall:.4f}")
    print(f"RESULT grounded_tag_accuracy {np.mean(grounded) if grounded else float('nan'):.4f}")
    print(f"RESULT ungrounded_tag_gain_over_prior "
          f"{np.mean(ungrounded_gain) if ungrounded_gain else float('nan'):.4f}")
    print(f"RESULT recognition_top1_on_detections {det_rec['learned'].figures[0]:.4f}")
    print(f"RESULT detection_recall {detection_recall:.4f}")


if __name__ == "__main__":
    main()
