"""Detection over a photo collection or an annotation file's images, written to a folder
(what ``fashionkit detect`` runs).

Outputs in ``out_dir``:

- ``results.json``: the Fashionpedia result format, a JSON list of ``{"image_id",
  "category_id", "attribute_ids", "attribute_scores", "segmentation": RLE, "bbox": XYWH,
  "score"}``, written as it goes (memory does not grow with the collection);
- ``images.json``: a Fashionpedia annotation file without annotations (``images`` with ``id``,
  ``file_name``, ``width``, ``height``; ``categories``; ``attributes``), the ground truth the
  official API loads the results against; with ``--dataset`` the ids are the file's own;
- ``predictions.json``: per image its id, file and items (names, super categories, boxes,
  attributes with names and scores, part→item links);
- ``failures.json``: the images that could not be read (``SkipReport`` format);
- with ``visuals``: ``visuals/NAME_overlay.png`` (Fig. 8), ``visuals/NAME_supercategories.png``
  (Fig. 9), ``visuals/NAME_items/*.png`` (Fig. 7).

Scale out: with ``shard=(k, n)`` a process takes every ``n``-th image starting at ``k`` and
writes the files above to ``out_dir/shards/k-of-n/`` (visuals straight to ``out_dir/visuals``,
under names fixed before sharding); :func:`merge_shards` then writes the merged files in
``out_dir``. Image ids and names are assigned from the whole list before sharding, so the
merged results are identical to a single process's. Run the shards anywhere that sees the
same files: processes on one machine, one process per GPU (``--device cuda:k``), or nodes
under ``torchrun`` (``fashionkit detect`` reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from fashionkit.data import read_annotations
from fashionkit.data.errors import SkipReport
from fashionkit.errors import InvalidDataError, Problem
from fashionkit.inference.images import expand_sources
from fashionkit.inference.predictor import Backend, Predictor
from fashionkit.inference.visualize import save_visuals
from fashionkit.ontology import load_ontology

__all__ = ["DetectJob", "DetectSummary", "merge_shards", "run_detect", "shard_dir"]


@dataclass(frozen=True)
class DetectJob:
    """What to run (see :class:`~fashionkit.inference.predictor.Predictor` for the model
    settings). Either ``paths`` (files, folders, globs; ids 1..N in that order) or
    ``dataset`` with ``images_dir`` (the annotation file's images and ids)."""

    weights: Path
    out_dir: Path
    paths: list[str] = field(default_factory=list)
    dataset: Path | None = None
    images_dir: Path | None = None
    backend: Backend | None = None
    device: str = "cpu"
    score_threshold: float = 0.5
    batch_size: int = 2
    num_workers: int = 0
    max_pixels: int | None = 100_000_000
    visuals: bool = True
    max_attributes: int = 2
    shard: tuple[int, int] | None = None
    image_size: int | None = None


@dataclass(frozen=True)
class DetectSummary:
    out_dir: Path
    results_path: Path
    images_done: int
    detections: int
    failures: list[Problem]


@dataclass
class _Work:
    """The images to run: sources, their ids, names, and (``--dataset``) expected sizes."""

    sources: list[Path]
    ids: list[int]
    names: list[str]
    expected_sizes: list[tuple[int, int]] | None
    problems: list[Problem]
    stems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.stems:
            return
        used: set[str] = set()
        self.stems.extend(_stem(name, i, used) for name, i in zip(self.names, self.ids,
                                                                   strict=True))

    def shard(self, k: int, n: int) -> _Work:
        """Every ``n``-th image from ``k`` (ids, names and stems as in the whole list)."""
        pick = slice(k, None, n)
        sizes = self.expected_sizes[pick] if self.expected_sizes is not None else None
        # Problems found while listing belong to the whole run: shard 0 reports them.
        work = _Work(self.sources[pick], self.ids[pick], self.names[pick], sizes,
                     self.problems if k == 0 else [], stems=list(self.stems[pick]))
        return work


def _collect(job: DetectJob) -> _Work:
    if job.dataset is not None:
        if job.images_dir is None:
            raise ValueError("dataset needs images_dir")
        # Only the image list matters here: a malformed annotation must not stop detection.
        annotations, report = read_annotations(job.dataset, on_invalid="skip")
        infos = list(annotations.images)
        sources = [Path(job.images_dir) / info.file_name for info in infos]
        problems = [p for p in report.problems if p.where.startswith("image")]
        return _Work(sources, [info.id for info in infos], [str(s) for s in sources],
                     [(info.height, info.width) for info in infos], problems)
    sources, problems = expand_sources(job.paths)
    if not sources:
        raise InvalidDataError(problems or [Problem(" ".join(job.paths), "paths",
                                                    "no image files found")])
    return _Work(sources, list(range(1, len(sources) + 1)), [str(s) for s in sources], None,
                 problems)


class _JsonListWriter:
    """Writes a JSON list one element at a time."""

    def __init__(self, path: Path):
        self._fh = path.open("w", encoding="utf-8")
        self._fh.write("[")
        self._first = True

    def add(self, value) -> None:
        self._fh.write(("\n" if self._first else ",\n") + json.dumps(value, allow_nan=False))
        self._first = False

    def close(self) -> None:
        self._fh.write("\n]\n")
        self._fh.close()


def _stem(path: str, image_id: int, used: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem) or "image"
    if stem in used:
        stem = f"{stem}-{image_id}"
    used.add(stem)
    return stem


def run_detect(job: DetectJob, *, progress: bool = False, console=None) -> DetectSummary:
    """Run ``job`` and write its outputs (see the module docstring). A photo that cannot be
    read is listed in the summary and ``failures.json``; the others are processed. An
    annotation file that cannot be read, or paths that name no image at all, raise
    :class:`InvalidDataError`."""
    work = _collect(job)
    out = Path(job.out_dir)
    visuals_dir = out / "visuals"
    if job.shard is not None:
        k, n = job.shard
        if not 0 <= k < n:
            raise ValueError(f"shard {k}/{n}: need 0 ≤ k < n")
        work = work.shard(k, n)
        out = shard_dir(job.out_dir, k, n)
    predictor = Predictor(job.weights, backend=job.backend, device=job.device,
                          score_threshold=job.score_threshold, batch_size=job.batch_size,
                          num_workers=job.num_workers, max_pixels=job.max_pixels,
                          image_size=job.image_size)
    out.mkdir(parents=True, exist_ok=True)
    (out / _DONE).unlink(missing_ok=True)
    results = _JsonListWriter(out / "results.json")
    details = _JsonListWriter(out / "predictions.json")
    failures = list(work.problems)
    images: list[dict] = []
    detections = 0
    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=console, disable=not progress)
    try:
        with bar:
            task = bar.add_task("detecting", total=len(work.sources))
            stream = predictor.stream(work.sources, on_error="skip", names=work.names,
                                      expected_sizes=work.expected_sizes,
                                      keep_photos=job.visuals)
            for k, prediction in enumerate(stream):
                bar.advance(task)
                if prediction.error is not None:
                    failures.append(prediction.error)
                    continue
                image_id = work.ids[k]
                h, w = prediction.image_size
                images.append({"id": image_id, "file_name": _file_name(job, work, k),
                               "width": w, "height": h})
                for record in prediction.to_results(image_id):
                    results.add(record)
                    detections += 1
                details.add({"image_id": image_id, **prediction.to_dict()})
                if job.visuals:
                    save_visuals(prediction, visuals_dir, work.stems[k],
                                 max_attributes=job.max_attributes)
    finally:
        results.close()
        details.close()
    _write_images(out / "images.json", images, str(job.weights))
    SkipReport(problems=failures).write(out / "failures.json")
    (out / _DONE).write_text(json.dumps({"images": len(work.sources)}) + "\n")
    return DetectSummary(out, out / "results.json", len(images), detections, failures)


def _write_images(path: Path, images: list[dict], weights: str) -> None:
    ontology = load_ontology()
    path.write_text(json.dumps({
        "info": {"description": f"images detected by fashionkit with {weights}",
                 "weights": weights},
        "images": images, "annotations": [], "categories": ontology.categories_json(),
        "attributes": ontology.attributes_json()}) + "\n", encoding="utf-8")


_DONE = "done.json"


def shard_dir(out_dir: str | Path, k: int, n: int) -> Path:
    """Where shard ``k`` of ``n`` writes its files."""
    return Path(out_dir) / "shards" / f"{k:03d}-of-{n:03d}"


def merge_shards(out_dir: str | Path) -> DetectSummary:
    """Merge the finished shards under ``out_dir/shards/`` into ``out_dir`` (results,
    images, predictions and failures; records sorted by image id, each image's detections
    in their order). Raises :class:`InvalidDataError` when a shard is missing or did not
    finish, naming it."""
    out = Path(out_dir)
    folders = sorted((out / "shards").glob("*-of-*"))
    counts = {f.name.split("-of-")[1] for f in folders}
    if not folders or len(counts) != 1:
        raise InvalidDataError([Problem(str(out / "shards"), "shards",
                                        "no shards, or shards of different runs (k-of-n "
                                        f"folders with different n: {sorted(counts)})")])
    n = int(counts.pop())
    missing = [shard_dir(out, k, n) for k in range(n)
               if not (shard_dir(out, k, n) / _DONE).is_file()]
    if missing:
        raise InvalidDataError([Problem(str(m), "shard", "missing or not finished")
                                for m in missing])
    results: list[dict] = []
    images: list[dict] = []
    details: list[dict] = []
    failures = SkipReport()
    weights = ""
    for k in range(n):
        folder = shard_dir(out, k, n)
        results.extend(json.loads((folder / "results.json").read_text(encoding="utf-8")))
        listed = json.loads((folder / "images.json").read_text(encoding="utf-8"))
        images.extend(listed["images"])
        weights = listed.get("info", {}).get("weights", weights)
        details.extend(json.loads((folder / "predictions.json").read_text(encoding="utf-8")))
        report = json.loads((folder / "failures.json").read_text(encoding="utf-8"))
        failures.problems.extend(Problem(**p) for p in report["problems"])
    ids = [image["id"] for image in images]
    if len(set(ids)) != len(ids):
        raise InvalidDataError([Problem(str(out / "shards"), "shards",
                                        "an image id appears in more than one shard")])
    # A stable sort keeps each image's detections in their (score) order.
    results.sort(key=lambda r: r["image_id"])
    images.sort(key=lambda i: i["id"])
    details.sort(key=lambda d: d["image_id"])
    writer = _JsonListWriter(out / "results.json")
    for record in results:
        writer.add(record)
    writer.close()
    writer = _JsonListWriter(out / "predictions.json")
    for record in details:
        writer.add(record)
    writer.close()
    _write_images(out / "images.json", images, weights)
    failures.write(out / "failures.json")
    return DetectSummary(out, out / "results.json", len(images), len(results),
                         list(failures.problems))


def _file_name(job: DetectJob, work: _Work, k: int) -> str:
    """The image's ``file_name``: as in the annotation file (relative to ``images_dir``), or
    the path as found."""
    source = work.sources[k]
    if job.dataset is not None and job.images_dir is not None:
        return source.relative_to(job.images_dir).as_posix()
    return source.as_posix()
