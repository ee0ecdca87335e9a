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
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from fashionkit.data.errors import InvalidDataError, Problem, SkipReport

__all__ = ["DetectJob", "DetectSummary", "run_detect"]


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
    backend: str = "eager"
    device: str = "cpu"
    score_threshold: float = 0.5
    batch_size: int = 2
    num_workers: int = 0
    max_pixels: int | None = 100_000_000
    visuals: bool = True
    max_attributes: int = 2


@dataclass(frozen=True)
class DetectSummary:
    out_dir: Path
    results_path: Path
    images_done: int
    detections: int
    failures: list[Problem]


@dataclass(frozen=True)
class _Work:
    """The images to run: sources, their ids, names, and (``--dataset``) expected sizes."""

    sources: list[Path]
    ids: list[int]
    names: list[str]
    expected_sizes: list[tuple[int, int]] | None
    problems: list[Problem]


def _collect(job: DetectJob) -> _Work:
    from fashionkit.inference.images import expand_sources

    if job.dataset is not None:
        from fashionkit.data import read_annotations

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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from fashionkit.inference.predictor import Predictor
    from fashionkit.inference.visualize import save_visuals
    from fashionkit.ontology import load_ontology

    work = _collect(job)
    predictor = Predictor(job.weights, backend=job.backend, device=job.device,
                          score_threshold=job.score_threshold, batch_size=job.batch_size,
                          num_workers=job.num_workers, max_pixels=job.max_pixels)
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = _JsonListWriter(out / "results.json")
    details = _JsonListWriter(out / "predictions.json")
    failures = list(work.problems)
    images: list[dict] = []
    used: set[str] = set()
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
                if not prediction.ok:
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
                    save_visuals(prediction, out / "visuals", _stem(prediction.name, image_id, used),
                                 max_attributes=job.max_attributes)
    finally:
        results.close()
        details.close()
    ontology = load_ontology()
    (out / "images.json").write_text(json.dumps({
        "info": {"description": f"images detected by fashionkit with {job.weights}"},
        "images": images, "annotations": [], "categories": ontology.categories_json(),
        "attributes": ontology.attributes_json()}) + "\n", encoding="utf-8")
    SkipReport(problems=failures).write(out / "failures.json")
    return DetectSummary(out, out / "results.json", len(images), detections, failures)


def _file_name(job: DetectJob, work: _Work, k: int) -> str:
    """The image's ``file_name``: as in the annotation file (relative to ``images_dir``), or
    the path as found."""
    source = work.sources[k]
    if job.dataset is not None and job.images_dir is not None:
        return source.relative_to(job.images_dir).as_posix()
    return source.as_posix()
