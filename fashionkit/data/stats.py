"""Dataset statistics from an :class:`AnnotationSet` (no mask decoding), and PNG charts of them."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import msgspec
import numpy as np

from fashionkit.data.annotations import AnnotationSet

__all__ = ["DatasetStats", "compute_stats", "plot_stats"]


@dataclass(frozen=True)
class DatasetStats:
    """Counts of one annotation set.

    ``categories``: ``(id, name, super category, count)`` for every ontology category, by id;
    ``supercategories``: ``(name, count)``; ``attributes``: ``(id, name, group, count)`` for
    every ontology attribute; ``masks_per_image``: histogram ``{k: images with k masks}``;
    ``image_sizes``: ``((width, height), images)`` most common first; ``segmentation_kinds``:
    ``{"polygon" | "rle": count}``.
    """

    source: str | None
    num_images: int
    num_annotations: int
    categories: list[tuple[int, str, str, int]]
    supercategories: list[tuple[str, int]]
    attributes: list[tuple[int, str, str, int]]
    masks_per_image: dict[int, int]
    image_sizes: list[tuple[tuple[int, int], int]]
    segmentation_kinds: dict[str, int]

    @property
    def masks_per_image_summary(self) -> dict[str, float]:
        """``min``, ``mean``, ``median``, ``max`` masks per image (0 for an empty set)."""
        if not self.masks_per_image:
            return {"min": 0, "mean": 0.0, "median": 0.0, "max": 0}
        ks = np.repeat(
            np.fromiter(self.masks_per_image.keys(), np.int64),
            np.fromiter(self.masks_per_image.values(), np.int64),
        )
        return {
            "min": int(ks.min()),
            "mean": float(ks.mean()),
            "median": float(np.median(ks)),
            "max": int(ks.max()),
        }

    def to_json(self) -> dict:
        doc = asdict(self)
        doc["masks_per_image"] = {str(k): v for k, v in self.masks_per_image.items()}
        doc["image_sizes"] = [
            {"width": w, "height": h, "images": n} for (w, h), n in self.image_sizes
        ]
        doc["masks_per_image_summary"] = self.masks_per_image_summary
        return doc


def compute_stats(ann_set: AnnotationSet) -> DatasetStats:
    """Count categories, super categories, attributes, masks per image, image sizes."""
    ont = ann_set.ontology
    cols = ann_set.columns
    cat_counts = Counter(cols.category_ids.tolist())
    att_counts = Counter(cols.attribute_values.tolist())
    categories = [(c.id, c.name, c.supercategory, cat_counts.get(c.id, 0)) for c in ont.categories]
    supers: dict[str, int] = dict.fromkeys(ont.supercategories, 0)
    for _, _, sc, n in categories:
        supers[sc] += n
    attributes = [(a.id, a.name, a.supercategory, att_counts.get(a.id, 0)) for a in ont.attributes]
    per_image = Counter(cols.image_ids.tolist())
    masks_hist = Counter(per_image.get(im.id, 0) for im in ann_set.images)
    sizes = Counter((im.width, im.height) for im in ann_set.images)
    kinds = {"polygon": 0, "rle": 0}
    for seg in cols.segmentations:
        if isinstance(seg, msgspec.Raw):
            is_poly = bytes(memoryview(seg)[:1]) == b"["
        else:
            is_poly = isinstance(seg, list)
        kinds["polygon" if is_poly else "rle"] += 1
    return DatasetStats(
        source=ann_set.source,
        num_images=len(ann_set),
        num_annotations=ann_set.num_annotations,
        categories=categories,
        supercategories=list(supers.items()),
        attributes=attributes,
        masks_per_image=dict(sorted(masks_hist.items())),
        image_sizes=sizes.most_common(),
        segmentation_kinds=kinds,
    )


def plot_stats(stats: DatasetStats, out_dir: str | Path) -> list[Path]:
    """Write bar charts (``categories.png``, ``supercategories.png``, ``attributes.png``,
    ``masks_per_image.png``) and an image-size scatter (``image_sizes.png``) to ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def bar(name: str, labels: list[str], values: list[int], title: str, horizontal: bool) -> None:
        height = max(4.0, 0.18 * len(labels)) if horizontal else 4.5
        fig, ax = plt.subplots(figsize=(9, height))
        if horizontal:
            ax.barh(range(len(labels)), values)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel("instances")
        else:
            ax.bar(range(len(labels)), values)
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
            ax.set_ylabel("count")
        ax.set_title(title)
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    bar(
        "categories.png",
        [f"{i} {n.split(',')[0]}" for i, n, _, _ in stats.categories],
        [c for *_, c in stats.categories],
        f"instances per category ({stats.num_annotations} in all)",
        horizontal=True,
    )
    bar(
        "supercategories.png",
        [n for n, _ in stats.supercategories],
        [c for _, c in stats.supercategories],
        "instances per super category",
        horizontal=False,
    )
    used = [a for a in stats.attributes if a[3] > 0] or stats.attributes[:1]
    used = sorted(used, key=lambda a: -a[3])[:60]
    bar(
        "attributes.png",
        [f"{i} {n}" for i, n, _, _ in used],
        [c for *_, c in used],
        "instances per attribute (60 most frequent)",
        horizontal=True,
    )
    # Numeric x so that mask counts no image has still leave a gap.
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.bar(list(stats.masks_per_image), list(stats.masks_per_image.values()))
    ax.set_xlabel("masks in the image")
    ax.set_ylabel("images")
    ax.set_title("images by number of masks")
    fig.tight_layout()
    path = out / "masks_per_image.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    fig, ax = plt.subplots(figsize=(6, 6))
    if stats.image_sizes:
        w = [s[0][0] for s in stats.image_sizes]
        h = [s[0][1] for s in stats.image_sizes]
        n = np.array([s[1] for s in stats.image_sizes], float)
        ax.scatter(w, h, s=8 + 40 * n / n.max(), alpha=0.5)
    ax.set_xlabel("width (px)")
    ax.set_ylabel("height (px)")
    ax.set_title(f"image sizes ({stats.num_images} images)")
    fig.tight_layout()
    path = out / "image_sizes.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written
