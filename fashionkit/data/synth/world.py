"""A whole synthetic world on disk: ``OUT/images/``, ``OUT/train.json``, ``OUT/val.json``.

The files are in the Fashionpedia format (``info``, ``images``, ``annotations``, ``categories``,
``attributes``) and load with pycocotools. Every annotation carries a ``"synth"`` record with the
item's ground truth (colour, pattern, the garment a part belongs to as ``part_of``), every image
a ``"synth"`` record with its scene. The same arguments give byte-identical files, whatever the
number of workers.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fashionkit.data.synth.scene import SceneConfig, get_scene, render_image
from fashionkit.ontology import load_ontology

__all__ = ["WorldSummary", "generate_world", "split_indices"]


@dataclass
class WorldSummary:
    """What :func:`generate_world` wrote. ``width``/``height``: image size in pixels.
    ``categories`` counts annotations per category id over both splits; ``seconds`` is the
    wall time."""

    out_dir: Path
    width: int
    height: int
    train_images: int
    val_images: int
    train_annotations: int
    val_annotations: int
    categories: Counter = field(default_factory=Counter)
    polygon_annotations: int = 0
    rle_annotations: int = 0
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return (self.train_images + self.val_images) / self.seconds if self.seconds else 0.0


def split_indices(images: int, val_fraction: float) -> tuple[range, range]:
    """Image indices of the train and val splits: the last ``round(images * val_fraction)``
    indices are validation (the images are independent draws, so no shuffle is needed)."""
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be within 0..1, not {val_fraction}")
    n_val = int(round(images * val_fraction))
    return range(0, images - n_val), range(images - n_val, images)


def _render_job(args: tuple) -> tuple[int, list[dict], dict]:
    seed, index, size, min_area, scene, image_path, fmt = args
    out = render_image(seed, index, size, min_area=min_area, scene=scene)
    if fmt == "jpg":
        # 4:4:4 keeps the colours of thin parts (zippers, necklines) true.
        out.image.save(image_path, format="JPEG", quality=92, subsampling=0)
    else:
        out.image.save(image_path, format="PNG", compress_level=1)
    return index, out.annotations, out.meta


def generate_world(
    out_dir: str | Path,
    images: int,
    size: int | tuple[int, int] = 256,
    seed: int = 0,
    val_fraction: float = 0.2,
    workers: int = 1,
    min_area: int | None = None,
    image_format: str = "jpg",
    scene: str | SceneConfig = "default",
    max_figures: int | None = None,
    categories: Iterable[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WorldSummary:
    """Render ``images`` pictures of ``size × size`` pixels (or ``size = (width, height)``) and
    write the world to ``out_dir``.

    Image ``i`` (0-based) is ``images/{i:06d}.jpg`` with image id ``i + 1``; annotation ids are
    unique across both splits. ``min_area`` (pixels) is the smallest visible area annotated
    (default :func:`~.scene.default_min_area`). ``scene``: how pictures are composed, a
    :data:`~.scene.SCENES` name (``"default"``, ``"simple"``) or a :class:`~.scene.SceneConfig`;
    ``max_figures`` caps the people per image (fewer means larger items). ``workers > 1``
    renders in that many processes. ``categories``: when given, only annotations of these
    category ids are written (the pictures are unchanged; a part whose garment is left out gets
    ``part_of: None``). ``progress(done, total)`` is called after each image.
    """
    if images < 1:
        raise ValueError("images must be at least 1")
    width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if min(width, height) < 32:
        raise ValueError(f"size must be at least 32 pixels a side, not {size!r}")
    if image_format not in ("jpg", "png"):
        raise ValueError("image_format must be 'jpg' or 'png'")
    keep = None if categories is None else {int(c) for c in categories}
    ontology = load_ontology()
    if keep is not None and not all(ontology.has_category(c) for c in keep):
        raise ValueError(f"unknown category ids: {sorted(c for c in keep if not ontology.has_category(c))}")
    cfg = get_scene(scene)
    if max_figures is not None:
        cfg = cfg.with_max_figures(max_figures)
    start = time.perf_counter()
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    train_idx, val_idx = split_indices(images, val_fraction)
    jobs = [
        (seed, i, (width, height), min_area, cfg, out / "images" / f"{i:06d}.{image_format}", image_format)
        for i in range(images)
    ]
    results = []
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            chunk = max(1, min(16, images // (4 * workers)))
            for r in pool.imap(_render_job, jobs, chunksize=chunk):
                results.append(r)
                if progress is not None:
                    progress(len(results), images)
    else:
        for job in jobs:
            results.append(_render_job(job))
            if progress is not None:
                progress(len(results), images)
    results.sort(key=lambda r: r[0])

    summary = WorldSummary(out, width, height, len(train_idx), len(val_idx), 0, 0)
    next_id = 1
    split_data: dict[str, tuple[list, list]] = {"train": ([], []), "val": ([], [])}
    for index, anns, meta in results:
        split = "train" if index in train_idx else "val"
        imgs, annotations = split_data[split]
        image_id = index + 1
        imgs.append(
            {
                "id": image_id,
                "file_name": f"{index:06d}.{image_format}",
                "width": width,
                "height": height,
                "synth": meta,
            }
        )
        local_to_global = {}
        for a in anns:
            if keep is not None and a["category_id"] not in keep:
                continue
            local_to_global[a["id"]] = next_id
            a = dict(a, id=next_id, image_id=image_id)
            synth = dict(a["synth"])
            if synth.get("part_of") is not None:
                synth["part_of"] = local_to_global.get(synth["part_of"])
            a["synth"] = synth
            annotations.append(a)
            summary.categories[a["category_id"]] += 1
            if isinstance(a["segmentation"], list):
                summary.polygon_annotations += 1
            else:
                summary.rle_annotations += 1
            next_id += 1
    for split, (imgs, annotations) in split_data.items():
        data = {
            "info": {
                "description": "fashionkit synthetic fashion world",
                "seed": seed,
                "size": [width, height],
                "scene": scene if isinstance(scene, str) else "custom",
                "scene_config": dataclasses.asdict(cfg),
                "categories": None if keep is None else sorted(keep),
                "split": split,
                "ontology": ontology.version,
            },
            "licenses": [],
            "images": imgs,
            "annotations": annotations,
            "categories": ontology.categories_json(),
            "attributes": ontology.attributes_json(),
        }
        (out / f"{split}.json").write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        if split == "train":
            summary.train_annotations = len(annotations)
        else:
            summary.val_annotations = len(annotations)
    summary.seconds = time.perf_counter() - start
    return summary
