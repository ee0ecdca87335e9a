"""How closely one backend's predictions follow another's (eager fp32 as the reference).

Detections are matched per image greedily in the reference's score order to the unmatched
candidate detection with the same category and the highest box IoU, if that IoU is at least
``box_iou``. The report gives the share of reference detections matched and, over the
matches, the mask IoU and score differences: the figures the backend parity tests bound
(≥ 95 % matched, mask IoU ≥ 0.95, scores within 0.02).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torchvision.ops import box_iou

from fashionkit.inference.prediction import Prediction

__all__ = ["ParityReport", "compare_predictions"]


@dataclass(frozen=True)
class ParityReport:
    """``reference`` / ``candidate``: detection counts; ``matched``: reference detections
    with a match; ``mask_iou``: per match, ``(M,)`` float64; ``score_diff``: per match,
    ``|candidate - reference|`` ``(M,)`` float64."""

    reference: int
    candidate: int
    matched: int
    mask_iou: np.ndarray
    score_diff: np.ndarray

    @property
    def matched_share(self) -> float:
        return self.matched / self.reference if self.reference else 1.0

    def summary(self) -> str:
        if not self.matched:
            return (f"matched 0/{self.reference} reference detections "
                    f"({self.candidate} candidate detections)")
        return (f"matched {self.matched}/{self.reference} ({self.matched_share:.1%}); mask IoU "
                f"min {self.mask_iou.min():.3f} mean {self.mask_iou.mean():.3f}; score diff "
                f"max {self.score_diff.max():.4f} mean {self.score_diff.mean():.4f}")


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``N×4`` and ``M×4`` XYXY → ``N×M`` IoU."""
    return box_iou(torch.as_tensor(a, dtype=torch.float64),
                   torch.as_tensor(b, dtype=torch.float64)).numpy()


def _mask_iou(a: dict, b: dict) -> float:
    """IoU of two RLEs; two empty masks agree (IoU 1), where pycocotools says 0."""
    if not mask_utils.area(a) and not mask_utils.area(b):
        return 1.0
    return float(mask_utils.iou([a], [b], [0])[0, 0])


def compare_predictions(reference: Sequence[Prediction], candidate: Sequence[Prediction],
                        box_iou: float = 0.5) -> ParityReport:
    """Match ``candidate`` to ``reference`` predictions of the same photos (same order)."""
    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} reference but {len(candidate)} candidate images")
    n_ref = n_cand = 0
    ious: list[float] = []
    diffs: list[float] = []
    for ref, cand in zip(reference, candidate, strict=True):
        n_ref += len(ref.items)
        n_cand += len(cand.items)
        if not ref.items or not cand.items:
            continue
        overlap = _box_iou(np.array([i.box for i in ref.items]),
                           np.array([i.box for i in cand.items]))
        same = (np.array([i.category_id for i in ref.items])[:, None]
                == np.array([i.category_id for i in cand.items])[None, :])
        overlap = np.where(same, overlap, -1.0)
        free = np.ones(len(cand.items), bool)
        for r in np.argsort([-i.score for i in ref.items], kind="stable"):
            row = np.where(free, overlap[r], -1.0)
            c = int(np.argmax(row))
            if row[c] < box_iou:
                continue
            free[c] = False
            a, b = ref.items[r], cand.items[c]
            ious.append(_mask_iou(a.mask, b.mask))
            diffs.append(abs(a.score - b.score))
    return ParityReport(n_ref, n_cand, len(ious), np.array(ious, np.float64),
                        np.array(diffs, np.float64))
