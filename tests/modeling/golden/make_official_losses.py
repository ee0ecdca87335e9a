"""Computes the golden data of the official-loss tests with the official TensorFlow code.

    ~/tfref/bin/python tests/modeling/golden/make_official_losses.py [--out FILE]

Tiny seeded inputs (numpy, below) go through the official training code
(``shared/reference/tensorflow-tpu``, imported from its folder as ``make_official.py`` does, not
copied): the anchor labeler (``dataloader/anchor.py``), the RoI matching and sampling
(``projects/fashionpedia/ops/roi_sampler.py``), the box encoding (``utils/box_utils.py``), the
mask targets (``tf.image.crop_and_resize`` as the Fashionpedia parser calls it, then
``ops/target_ops.py``'s mask sampler) and the loss classes (``modeling/losses.py``,
``projects/fashionpedia/modeling/attribute_loss.py``). Inputs and outputs go to
``golden/official_losses.npz`` (keys below; batch of 2 images of 128×128, boxes
``[y1, x1, y2, x2]`` pixels).

Deterministic parts are stored whole: anchors, anchor matches and RPN box targets; the RoI
matching and box targets of a sampling that takes every box (``fg_fraction=1``,
``num_samples`` = all boxes, so the static sampler's shuffle cannot matter); the mask targets;
every loss. The random subsampling is stored as what it must satisfy: the counts of sampled
positive and negative anchors (256 per image at most half positive), and the sampled RoI classes
of a 16-per-image draw (at most 4 foreground).

Keys: ``image_size``; ``anchors`` (1023×4, levels 3..7 concatenated); ``gt_boxes`` (2×3×4),
``gt_classes`` (2×3), ``gt_attributes`` (2×3×6), ``gt_masks`` (2×3×128×128 uint8);
``anchor_matches`` (2×1023: ≥0 matched, −1 negative, −2 ignored), ``rpn_box_targets``
(2×1023×4), ``rpn_score_targets`` (2×1023, the official random draw), ``rpn_sampled_pos`` /
``rpn_sampled_neg`` (2); ``rpn_logits`` (2×1023), ``rpn_deltas`` (2×1023×4) and
``rpn_score_loss``, ``rpn_box_loss`` (on the official score and box targets);
``proposals`` (2×40×4); ``roi_*`` for the full sampling (2×43 rows, proposals then ground
truth): ``roi_rois``, ``roi_gt_boxes``, ``roi_classes``, ``roi_attributes``, ``roi_gt_indices``,
``roi_box_targets``; ``roi16_classes`` (2×16) of the random draw; ``class_logits`` (2×43×5),
``box_outputs`` (2×43×20), ``attribute_logits`` (2×43×6) and ``fast_rcnn_class_loss``,
``fast_rcnn_box_loss``, ``attribute_loss``; ``mask_crops`` (2×3×112×112); ``mask_rois``,
``mask_classes``, ``mask_targets`` (2×8×…, the first 8 foreground RoIs, background-padded);
``mask_logits`` (2×8×28×28) and ``mask_loss``.
"""
from __future__ import annotations

import argparse
import os
import sys
import types

from reference_code import find_reference  # this folder is sys.path[0]

HERE = os.path.dirname(os.path.abspath(__file__))


REFERENCE = find_reference("make_official_losses.py")
DET = os.path.join(REFERENCE, "models", "official", "detection")
sys.path[:0] = [DET, os.path.join(REFERENCE, "models")]

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

tf.disable_eager_execution()
from dataloader import anchor  # noqa: E402
from modeling import losses  # noqa: E402
from ops import target_ops  # noqa: E402
from projects.fashionpedia.modeling import attribute_loss  # noqa: E402
from projects.fashionpedia.ops import roi_sampler  # noqa: E402
from utils import box_utils  # noqa: E402
from utils.object_detection import box_list  # noqa: E402

SIZE = 128
LEVELS = range(3, 8)
B, G, N, A, C = 2, 3, 40, 6, 5
MASK_ROIS = 8


def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    gt = np.array([
        [[10, 12, 70, 60], [60, 50, 120, 126], [30, 90, 38, 97]],  # the last: tiny, forced match
        [[5, 5, 100, 60], [40, 64, 88, 112], [80, 10, 126, 50]],  # the middle: IoU 0.71 with 2 anchors
    ], np.float32)
    classes = np.array([[1, 3, 4], [2, 2, 4]], np.int32)
    attributes = (rng.random((B, G, A)) < 0.4).astype(np.float32)
    masks = np.zeros((B, G, SIZE, SIZE), np.uint8)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for b in range(B):
        for g in range(G):
            y1, x1, y2, x2 = gt[b, g]
            cy, cx, ry, rx = (y1 + y2) / 2, (x1 + x2) / 2, (y2 - y1) / 2, (x2 - x1) / 2
            masks[b, g] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    # proposals: jittered ground truth (some foreground) and random boxes (background)
    proposals = np.zeros((B, N, 4), np.float32)
    for b in range(B):
        for i in range(N):
            if i < 18:
                box = gt[b, i % G] + rng.normal(0, 6, 4)
            else:
                y, x = rng.uniform(0, SIZE - 20, 2)
                h, w = rng.uniform(8, 60, 2)
                box = np.array([y, x, y + h, x + w])
            box = np.clip(box, 0, SIZE - 1)
            proposals[b, i] = [min(box[0], box[2] - 1), min(box[1], box[3] - 1),
                               max(box[2], box[0] + 1), max(box[3], box[1] + 1)]
    return {"gt_boxes": gt, "gt_classes": classes, "gt_attributes": attributes,
            "gt_masks": masks, "proposals": proposals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "official_losses.npz"))
    args = parser.parse_args()
    rng = np.random.default_rng(20261202)
    data = inputs(rng)
    gt, classes, attrs = data["gt_boxes"], data["gt_classes"], data["gt_attributes"]
    tf.set_random_seed(1)

    anchors = anchor.Anchor(3, 7, 1, [1.0, 2.0, 0.5], 3.0, (SIZE, SIZE))
    labeler = anchor.RpnAnchorLabeler(anchors, 0.7, 0.3, 256, 0.5)
    n_anchors = int(sum((SIZE // 2 ** k) ** 2 * 3 for k in LEVELS))
    per_image = []
    for b in range(B):
        gt_t = tf.constant(gt[b])
        labels_t = tf.constant(classes[b, :, None].astype(np.float32))
        score_t, box_t = labeler.label_anchors(gt_t, labels_t)
        _, _, _, _, match = labeler._target_assigner.assign(  # the deterministic part
            box_list.BoxList(anchors.boxes), box_list.BoxList(gt_t), labels_t)
        per_image.append((score_t, box_t, match.match_results))

    rpn_logits = rng.normal(0, 1.5, (B, n_anchors)).astype(np.float32)
    rpn_deltas = rng.normal(0, 0.3, (B, n_anchors, 4)).astype(np.float32)

    def split(x: np.ndarray, k: int):
        """The rows of level ``k`` of a ``B×n_anchors×d`` array, as the official
        ``[B, H, W, 3·d]`` (rows in (y, x, anchor) order)."""
        start = sum((SIZE // 2 ** j) ** 2 * 3 for j in range(3, k))
        n = (SIZE // 2 ** k) ** 2 * 3
        s = SIZE // 2 ** k
        return tf.constant(x[:, start:start + n].reshape(B, s, s, -1))

    with tf.Session() as sess:
        outs = sess.run({"anchors": anchors.boxes,
                         "score": [{k: p[0][k] for k in LEVELS} for p in per_image],
                         "box": [{k: p[1][k] for k in LEVELS} for p in per_image],
                         "match": [p[2] for p in per_image]})
    score_targets = np.stack([np.concatenate([s[k].reshape(-1) for k in LEVELS])
                              for s in outs["score"]]).astype(np.float32)
    box_targets = np.stack([np.concatenate([s[k].reshape(-1, 4) for k in LEVELS])
                            for s in outs["box"]]).astype(np.float32)

    rpn_params = types.SimpleNamespace(rpn_batch_size_per_im=256, huber_loss_delta=1.0 / 9.0)
    score_loss = losses.RpnScoreLoss(rpn_params)(
        {k: split(rpn_logits[..., None], k) for k in LEVELS},
        {k: split(score_targets[..., None], k) for k in LEVELS})
    box_loss = losses.RpnBoxLoss(rpn_params)(
        {k: split(rpn_deltas, k) for k in LEVELS}, {k: split(box_targets, k) for k in LEVELS})

    # RoIs: a sampling that takes every box (deterministic), and a random draw of 16.
    k_all = N + G
    full = roi_sampler.assign_and_sample_proposals(
        tf.constant(data["proposals"]), tf.constant(gt), tf.constant(classes),
        tf.constant(attrs), num_samples_per_image=k_all, fg_fraction=1.0)
    draw = roi_sampler.assign_and_sample_proposals(
        tf.constant(data["proposals"]), tf.constant(gt), tf.constant(classes),
        tf.constant(attrs), num_samples_per_image=16, fg_fraction=0.25)
    rois, matched, roi_classes, roi_attrs, roi_indices = full
    targets = box_utils.encode_boxes(matched, rois, weights=[10.0, 10.0, 5.0, 5.0])
    targets = tf.where(tf.tile(tf.expand_dims(tf.equal(roi_classes, 0), -1), [1, 1, 4]),
                       tf.zeros_like(targets), targets)

    class_logits = rng.normal(0, 2, (B, k_all, C)).astype(np.float32)
    box_outputs = rng.normal(0, 1.0, (B, k_all, 4 * C)).astype(np.float32)
    attribute_logits = rng.normal(0, 2, (B, k_all, A)).astype(np.float32)
    class_loss = losses.FastrcnnClassLoss()(tf.constant(class_logits), roi_classes)
    frcnn_box_loss = losses.FastrcnnBoxLoss(types.SimpleNamespace(huber_loss_delta=1.0))(
        tf.constant(box_outputs), roi_classes, targets)
    attr_loss = attribute_loss.FastrcnnAttributeLoss()(tf.constant(attribute_logits), roi_attrs)

    # Mask targets: the parser's 112×112 crop of each ground-truth mask in its box (normalised
    # by the image size), then the sampler's crop in each foreground RoI.
    boxes_norm = gt / SIZE
    crops = tf.stack([tf.squeeze(tf.image.crop_and_resize(
        tf.constant(data["gt_masks"][b, :, :, :, None].astype(np.float32)),
        tf.constant(boxes_norm[b]), tf.range(G, dtype=tf.int32), [112, 112],
        method="bilinear"), -1) for b in range(B)])
    mask_rois, mask_classes, mask_targets = target_ops.MaskSampler(28, MASK_ROIS)(
        rois, matched, roi_classes, roi_indices, crops)
    mask_logits = rng.normal(0, 2, (B, MASK_ROIS, 28, 28)).astype(np.float32)
    mask_loss = losses.MaskrcnnLoss()(tf.constant(mask_logits), mask_targets,
                                      tf.cast(mask_classes, tf.int32))

    with tf.Session() as sess:
        res = sess.run({
            "rpn_score_loss": score_loss, "rpn_box_loss": box_loss,
            "roi_rois": rois, "roi_gt_boxes": matched, "roi_classes": roi_classes,
            "roi_attributes": roi_attrs, "roi_gt_indices": roi_indices,
            "roi_box_targets": targets, "roi16_classes": draw[2],
            "fast_rcnn_class_loss": class_loss, "fast_rcnn_box_loss": frcnn_box_loss,
            "attribute_loss": attr_loss, "mask_crops": crops, "mask_rois": mask_rois,
            "mask_classes": mask_classes, "mask_targets": mask_targets, "mask_loss": mask_loss,
        })
    out = {
        "image_size": np.int64(SIZE), "anchors": outs["anchors"].astype(np.float32),
        **data,
        "anchor_matches": np.stack(outs["match"]).astype(np.int64),
        "rpn_box_targets": box_targets, "rpn_score_targets": score_targets.astype(np.int64),
        "rpn_sampled_pos": (score_targets == 1).sum(axis=1).astype(np.int64),
        "rpn_sampled_neg": (score_targets == 0).sum(axis=1).astype(np.int64),
        "rpn_logits": rpn_logits, "rpn_deltas": rpn_deltas,
        "class_logits": class_logits, "box_outputs": box_outputs,
        "attribute_logits": attribute_logits, "mask_logits": mask_logits,
        **{k: np.asarray(v) for k, v in res.items()},
    }
    for name in ("roi_classes", "roi_gt_indices", "roi16_classes", "mask_classes"):
        out[name] = out[name].astype(np.int64)
    np.savez_compressed(args.out, **out)
    for name in ("rpn_score_loss", "rpn_box_loss", "fast_rcnn_class_loss", "fast_rcnn_box_loss",
                 "attribute_loss", "mask_loss"):
        print(f"{name} {float(out[name]):.6f}")
    print("anchor matches ≥0:", (out["anchor_matches"] >= 0).sum(axis=1),
          "sampled pos/neg:", out["rpn_sampled_pos"], out["rpn_sampled_neg"],
          "roi foreground:", (out["roi_classes"] > 0).sum(axis=1),
          "of 16:", (out["roi16_classes"] > 0).sum(axis=1))
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
