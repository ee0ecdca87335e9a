"""A wardrobe set up from a person's photos, as the service and ``wardrobe add``/``wore`` do
it, measured on personal closets of held-out seeds.

For each closet (``fashionkit.data.synth.closet.generate_closet``, seeds ``--seed``,
``--seed + 1`` …), with the closet's ground truth as the detections (so what is measured is
the wardrobe's, not the detector's) and the item embedder of a base detector (trained here for
``--minutes`` on a generic synthetic world, as ``personalization.py`` does, or ``--weights``):

- **duplicates while adding photos**: the labelled photos added one at a time
  (``ingest_photos``); after each, the person merges what is the same item (the ground truth,
  so both finders see the same wardrobe). Side by side, each photo's likely duplicates named by
  the colour-histogram rule (``find_duplicates``) and by recognition of the person's items
  (``fashionkit.personal.wearlog.recognised_duplicates``, which defers to the colour rule while
  its gallery is uncalibrated): precision (a named duplicate is that item) and recall (of the
  new items that are an item already in the wardrobe, the share named as it).
- **what stays annotated**: after the merges, the share of the labelled photos' garments and
  accessories still annotated in the wardrobe's photos (what ``export-dataset`` writes and a
  personal detector is fine-tuned on): the two shoes of a pair and every merged duplicate.
- **the wear log** from the new photos (``log_outfit_photos``): of the known items worn, the
  share recognised (``wear_log_recall``), recognitions that are another item, and the "new
  item" offers' precision and recall against the items never seen.

Ends with ``RESULT`` lines: ``duplicate_precision_colour``, ``duplicate_recall_colour``,
``duplicate_precision_recognition``, ``duplicate_recall_recognition``,
``annotations_kept``, ``wear_log_recall``, ``wear_log_wrong``, ``wear_log_new_precision``,
``wear_log_new_recall``.

    .venv/bin/python benchmarks/wardrobe_from_photos.py [--quick] [--seed N] [--closets K]
        [--minutes M] [--weights MODEL.pt] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def measure_closet(closet, embedder, root: Path, counts: Counter) -> None:
    from fashionkit.personal.wearlog import log_outfit_photos, recognised_duplicates
    from fashionkit.wardrobe import Wardrobe
    from fashionkit.wardrobe.ingest import ingest_photos
    from tests.synth_truth import merge_as_the_person_says, truth_prediction

    photos = {_digest(p.path): p for s in (closet.labelled, closet.new) for p in s.photos}

    def predictor(paths, on_error="raise"):
        return [truth_prediction(path, photos[_digest(path)].annotations) for path in paths]

    truth_of = {f"{_digest(p.path)[:12]}-{k}": a["item_id"]
                for p in closet.labelled.photos for k, a in enumerate(p.annotations)}
    garments = lambda photo: [o for o in photo.objects if o.part_of is None]  # noqa: E731
    for finder in ("colour", "recognition"):
        duplicates = (lambda w, ids: recognised_duplicates(w, embedder.key, ids)) \
            if finder == "recognition" else None
        t0 = time.perf_counter()
        with Wardrobe(f"sqlite:///{root / f'{finder}.sqlite'}",
                      image_dir=root / f"{finder}-images") as wardrobe:  # fmt: skip
            for photo in closet.labelled.photos:
                before = {i.id for i in wardrobe.items()}
                report = ingest_photos(wardrobe, predictor, [photo.path], embedder=embedder,
                                       duplicates=duplicates)  # fmt: skip
                counts[f"{finder} should"] += sum(
                    any(truth_of[b] == truth_of[a] for b in before) for a in report.added)
                named = {}
                for d in report.duplicates:
                    named.setdefault(d.new, d)  # the most alike first
                counts[f"{finder} named"] += len(named)
                counts[f"{finder} right"] += sum(truth_of[d.existing] == truth_of[d.new]
                                                 for d in named.values())  # fmt: skip
                counts[f"{finder} by recognition"] += sum(d.found_by == "recognition"
                                                          for d in named.values())  # fmt: skip
                kept = merge_as_the_person_says(wardrobe, truth_of, before)
            print(f"  {finder:>11}: {len(closet.labelled.photos)} photos added one at a time, "
                  f"{len(wardrobe)} items after merging ({time.perf_counter() - t0:.0f} s)")
            if finder != "recognition":
                continue
            counts["annotated"] += sum(len([o for o in p.objects if not o.is_part])
                                       for p in wardrobe.annotated_photos())  # fmt: skip
            counts["garments"] += sum(len(garments(p)) for p in closet.labelled.photos)
            mine = {key: item for item, key in kept.items()}
            reports, _ = log_outfit_photos(wardrobe, predictor, embedder,
                                           [p.path for p in closet.new.photos],
                                           on=dt.date(2026, 12, 1))  # fmt: skip
            for report, photo in zip(reports, closet.new.photos, strict=True):
                worn = {o.item_id for o in garments(photo)}
                known, unseen = worn & set(kept), worn - set(kept)
                recognised = {mine[r.item_id] for r in report.recognised}
                counts["known worn"] += len(known)
                counts["recognised right"] += len(recognised & known)
                counts["recognised wrong"] += len(recognised - known)
                counts["unseen worn"] += len(unseen)
                offered = [o.detected.item.id for o in report.new]
                counts["offers"] += len(offered)
                # An offer is right when it is a garment of an unseen item: the offers' ids
                # are '<photo>-<detection index>', the annotation's position.
                right = {photo.annotations[int(k.rsplit("-", 1)[1])]["item_id"] for k in offered}
                counts["offers right"] += len(right & unseen)
                counts["unseen offered"] += len(right & unseen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one small closet, a 1-minute base detector")
    parser.add_argument("--seed", type=int, default=7000, help="first closet seed (held out)")
    parser.add_argument("--closets", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=4.0, help="base detector training")
    parser.add_argument("--world-images", type=int, default=400)
    parser.add_argument("--weights", type=Path, default=None,
                        help="a base detector checkpoint instead of training one")
    parser.add_argument("--out", type=Path, default=None, help="keep closets and models here")
    args = parser.parse_args()
    closet_size = {}
    if args.quick:
        args.closets, args.minutes, args.world_images = 1, 1.0, 48
        closet_size = {"items": 12, "labelled_photos": 10, "new_photos": 6, "unseen_items": 2,
                       "image_size": 256}  # fmt: skip

    from benchmarks.personalization import machine, train_base
    from fashionkit.data.synth.closet import generate_closet, load_closet
    from fashionkit.personal.embedding import ItemEmbedder

    print(f"machine: {machine()}")
    started = time.perf_counter()
    counts: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        base = args.weights or train_base(root / "base", args.minutes, args.world_images, 0)
        embedder = ItemEmbedder.from_checkpoint(base)
        print(f"embedding: {embedder.key}, {embedder.dims} dims")
        for k in range(args.closets):
            seed = args.seed + k
            folder = root / f"closet-{seed}"
            generate_closet(folder, seed=seed, workers=2, **closet_size)
            closet = load_closet(folder)
            print(f"\ncloset seed {seed}: {len(closet.items)} items, "
                  f"{len(closet.labelled.photos)} labelled + {len(closet.new.photos)} new photos")
            work = root / f"wardrobes-{seed}"
            work.mkdir()
            measure_closet(closet, embedder, work, counts)

    def share(a: str, b: str) -> float:
        return counts[a] / counts[b] if counts[b] else float("nan")

    print(f"\npooled over {args.closets} closet(s), {time.perf_counter() - started:.0f} s")
    print(f"{'duplicates named by':>22} | precision | recall | named | of should")
    for finder in ("colour", "recognition"):
        print(f"{finder:>22} | {share(f'{finder} right', f'{finder} named'):9.3f} | "
              f"{share(f'{finder} right', f'{finder} should'):6.3f} | "
              f"{counts[f'{finder} named']:5d} | {counts[f'{finder} should']:9d}")
    print(f"  (recognition named {counts['recognition by recognition']} of its "
          f"{counts['recognition named']}; the rest while its gallery was uncalibrated)")
    print(f"annotated after merging: {counts['annotated']} of {counts['garments']} garments")
    print(f"wear log: {counts['recognised right']} of {counts['known worn']} known items worn "
          f"recognised, {counts['recognised wrong']} taken for another; "
          f"{counts['offers']} offered as new, {counts['offers right']} of them never seen "
          f"({counts['unseen worn']} never-seen items worn)")
    results = {
        "duplicate_precision_colour": share("colour right", "colour named"),
        "duplicate_recall_colour": share("colour right", "colour should"),
        "duplicate_precision_recognition": share("recognition right", "recognition named"),
        "duplicate_recall_recognition": share("recognition right", "recognition should"),
        "annotations_kept": share("annotated", "garments"),
        "wear_log_recall": share("recognised right", "known worn"),
        "wear_log_wrong": share("recognised wrong", "known worn"),
        "wear_log_new_precision": share("offers right", "offers"),
        "wear_log_new_recall": share("unseen offered", "unseen worn"),
    }
    for name, value in results.items():
        print(f"RESULT {name}={value:.4f}")


if __name__ == "__main__":
    main()
