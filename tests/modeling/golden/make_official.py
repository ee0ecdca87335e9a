"""Computes the golden data of the official-model parity tests with the official TensorFlow code.

    ~/tfref/bin/python tests/modeling/golden/make_official.py [--case r50-256 ...] [--stats]

For each backbone it builds the official Attribute-Mask R-CNN (``shared/reference/tensorflow-tpu``,
imported from its folder as its ``smoke.py`` does, not copied) from the released configs
(``projects/fashionpedia/configs/yaml/{r50,r101}fpn_amrcnn.yaml``) with bfloat16 off, in PREDICT
mode; adds ``global_step`` and the ``<var>/Momentum`` slots the official training's
MomentumOptimizer creates; assigns every variable from ``official_cases.weight_for``; saves the
checkpoint with ``tf.train.Saver`` (its variables and SHA-256 go to ``{backbone}-variables.json``);
preprocesses ``official_cases.test_photo`` with the official inference preprocessing
(``projects/fashionpedia/inference.py``: ``input_utils.normalize_image`` then
``input_utils.resize_and_crop_image(image, [S, S], [S, S])``) and runs it. The tensors between the
stages are fetched by wrapping the model's stage callables (its ``_backbone_fn``, ``_fpn_fn``,
``_generate_rois_fn``, ``_frcnn_head_fn``, ``_mrcnn_head_fn`` attributes) on the model instance;
the reference's files are not changed.

Keys of ``{backbone}-{S}.npz`` (batch dimension dropped everywhere; boxes always TF order
``[y1, x1, y2, x2]`` in pixels; "model-input frame" = pixels of the S×S padded network input, whose
top-left S·scale part holds the resized photo):

- ``photo_shape`` int64 (2,): photo (h, w); the photo is ``test_photo(h, w)``.
- ``photo_crc32`` int64 (): ``zlib.crc32(test_photo(h, w).tobytes())`` (guards the photo rule).
- ``image_info`` float32 (4, 2): the official rows ``[[h, w], [S, S], [sy, sx], [0, 0]]``. Row 1 is
  the *desired* size S×S (a constant), not the resized photo's size; row 2 is
  ``round(h·s)/h, round(w·s)/w`` with ``s = min(S/h, S/w)`` (per axis, so sy ≠ sx in general).
- ``image`` float32 (S, S, 3) HWC RGB: the network input. ``uint8/255``, minus mean
  (0.485, 0.456, 0.406), over std (0.229, 0.224, 0.225) (normalised BEFORE resizing), resized to
  ``round(h·s) × round(w·s)`` by ``tf.compat.v1.image.resize_images`` bilinear (TF1 legacy:
  align_corners=False, half_pixel_centers=False, i.e. source = dst·in/out, no half-pixel shift),
  zero-padded bottom/right to S×S (zeros in normalised space).
- ``rpn_clip_shape`` float32 (2,): the [height, width] the model clips proposals and detections
  to (``image_info[1]`` = [S, S]): boxes are clipped to [0, S-1] in both axes, i.e. to the whole
  padded canvas, NOT to the unpadded photo region.
- ``backbone_{3..5}`` (S = 256 only) float32 (S/2^l, S/2^l, C_l/32): ResNet block-group
  outputs C3..C5 (after the last block's ReLU), every 32nd channel (``[..., ::32]``;
  C_l = 512, 1024, 2048).
- ``fpn_{3..7}`` float32 (S/2^l, S/2^l, 256) for S = 256; every 16th channel (16 channels,
  ``[..., ::16]``) for S = 384: the FPN outputs after the ``fpn/p{l}-bn`` BatchNorm (no ReLU),
  which feed the RPN and the RoI heads.
- ``rpn_scores_{3..7}`` float32 (H, W, 3): RPN logits (before sigmoid); channel a = anchor a.
- ``rpn_boxes_{3..7}`` float32 (H, W, 12): RPN deltas; channels 4a..4a+3 are (ty, tx, th, tw) of
  anchor a (no weights: decoded with weights 1).
- Anchors (not stored: :func:`documented_anchors`, which the generator checks against the
  graph's): per level (H·W·3, 4), row ``(y·W + x)·3 + a``, i.e. the reshape of ``rpn_*``
  (H, W, A[, 4]) to rows; the RPN decodes row i of a level's deltas against anchor row i. Anchor
  a has aspect ratio [1.0, 2.0, 0.5][a] (ratio = width/height), base size 3·2^l,
  ``h = 3·2^l / sqrt(ratio)``, ``w = 3·2^l · sqrt(ratio)``, centre ``(2^l/2 + y·2^l, 2^l/2 + x·2^l)``,
  box ``centre ∓ size/2``, float, not clipped, not rounded.
- ``proposals`` float32 (1000, 4), model-input frame, and ``proposal_scores`` float32 (1000,):
  the output of the model's ROIGenerator (test settings), after the FINAL overall top-k: per level
  sigmoid, decode (legacy +1 convention, see below), clip to [0, S-1], top 1000 by score, NMS at
  IoU 0.7 keeping at most 1000 (``ops/nms.sorted_non_max_suppression_padded``), concatenation
  of levels 3..7, top 1000 by score over all levels, sorted by score descending. Scores are
  sigmoid probabilities. When fewer than 1000 survive, the rest are padding rows: box 0,
  score -1, and they are box-head inputs like the others (in the four cases all 1000 rows are
  real proposals). These 1000 rows are exactly what the box head sees.
- ``roi_features`` float32 (4, 7, 7, 256) (S = 256; every 16th channel for S = 384): the box
  head's input (``multilevel_crop_and_resize`` of the FPN features, output 7) for proposals[:4].
- ``class_logits`` float32 (K, 47), ``box_deltas`` float32 (K, 188),
  ``attribute_logits`` float32 (K, 294), K = 100 for S = 256 and 50 for S = 384: the box head's
  outputs for proposals[:K], before any
  softmax / sigmoid. Class 0 is background. ``box_deltas[:, 4c:4c+4]`` = (ty, tx, th, tw) of
  class c (class 0's block included), decoded with weights [10, 10, 5, 5] against the proposal.
- ``num_detections`` int64 (): n, the official ``num_detections`` (at most 100: where n = 100
  the cap bound, and the 100th score is above the 0.05 threshold).
- ``detection_boxes`` float32 (n, 4): model-input frame, exactly the model's PREDICT output
  (first n rows), clipped to [0, S-1].
- ``detection_boxes_photo`` float32 (n, 4): the same in the photo frame, as inference.py computes
  it: ``detection_boxes / [sy, sx, sy, sx]`` (not clipped to the photo).
- ``detection_classes`` int64 (n,): class index 1..46 (0 = background is never output).
- ``detection_scores`` float32 (n,): softmax probability of that class, descending.
- ``detection_attributes`` float32 (n, 294): sigmoid of the attribute logits of the proposal the
  detection came from (attributes are per RoI, not per class).
- ``detection_masks`` float32 (n, 28, 28): sigmoid mask of the detected class, from
  ``multilevel_crop_and_resize(fpn, detection_boxes, 14)`` → mask head, in the box's own 28×28
  frame (not pasted).

What the official code does that a port may not expect:

- image_info[1] is the desired size S×S, so RPN proposals (``labels['image_info'][:, 1, :]``) and
  detections (``[:, 1:2, :]``) are clipped to [0, S-1]: boxes may extend into the zero padding.
- Box decoding uses the legacy +1 convention: ``h = y2 - y1 + 1``, ``yc = y1 + 0.5·h``,
  ``h' = exp(min(dh, log(1000/16)))·h``, ``y1' = yc' - 0.5·h'``, ``y2' = y1' + h' - 1`` (same for x);
  RPN deltas are unweighted, Fast R-CNN deltas are divided by [10, 10, 5, 5] first.
- RPN NMS (``sorted_non_max_suppression_padded``) is tiled and treats any box whose four
  coordinates are all <= 0 as not selected (a box clipped to the top-left corner point vanishes).
  Per level, at most 1000 boxes enter and at most 1000 leave (``min(num_anchors, 1000)``); there is
  no score or min-size filter (thresholds 0).
- Detection: softmax over 47 classes, background dropped; per class c (1..46): the top
  ``min(1000, R)`` proposals by that class's score, boxes decoded with class c's deltas and
  clipped; ``tf.image.non_max_suppression_padded`` with IoU 0.5, score threshold 0.05, at most 100
  per class; the per-class results concatenated in class order and the best 100 over all classes
  taken by ``tf.nn.top_k`` (sorted; equal scores keep the lower concatenated index first).
  Invalid slots get score -1 and are counted out of ``num_detections``.
- The mask head runs on the 100 padded detection boxes (also the invalid ones); only the first n
  rows mean anything, and only those are stored.
- ``multilevel_crop_and_resize`` assigns a box to level ``floor(log2(sqrt(h·w)/224)) + 4``
  (h, w = y2 - y1, x2 - x1, no +1), clamped to the available feature levels 3..7 (not 2..5).
- The stride-2 convs of the FPN (p6, p7) use TF 'SAME' padding (for even sizes: 0 before, 1
  after); p6 takes the post-hoc P5 before its BatchNorm, p7 takes ReLU(p6) before its BatchNorm;
  every level then gets its own BatchNorm without ReLU.
- ResNet (v1.5 bottlenecks, no conv biases): the stride sits on the 3×3 conv and on the 1×1
  projection shortcut; strided convs pad explicitly ((k-1)//2 before, the rest after, then VALID:
  the 7×7/2 stem 3 and 3, a 3×3/2 1 and 1, a 1×1/2 none), stride-1 convs use SAME; the 3×3/2
  max-pool uses SAME (for even sizes 0 before, 1 after). The FPN takes C3..C5 (C2 is unused).
- BatchNorm epsilon is 0.001 everywhere; inference uses the moving statistics.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zlib

from reference_code import find_reference  # this folder is sys.path[0]

HERE = os.path.dirname(os.path.abspath(__file__))
MODELING = os.path.dirname(HERE)


REFERENCE = find_reference("make_official.py")
DET = os.path.join(REFERENCE, "models", "official", "detection")
sys.path[:0] = [MODELING, DET, os.path.join(REFERENCE, "models"),
                os.path.join(REFERENCE, "models", "official", "efficientnet")]

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

tf.disable_eager_execution()
from dataloader import mode_keys  # noqa: E402
from hyperparameters import params_dict  # noqa: E402
from official_cases import CASES, GLOBAL_STEP, case_name, test_photo, weight_for  # noqa: E402
from projects.fashionpedia.configs import factory as config_factory  # noqa: E402
from projects.fashionpedia.modeling import factory as model_factory  # noqa: E402
from utils import input_utils  # noqa: E402

LEVELS = range(3, 8)
NUM_HEAD_ROIS = 100  # proposals whose box-head outputs are stored
NUM_ROI_FEATURES = 4  # proposals whose 7x7 RoI features are stored


def build_model(backbone: str):
    """The official model as the released config builds it, for CPU inference."""
    params = config_factory.config_generator("attribute_mask_rcnn")
    yaml = os.path.join(DET, "projects", "fashionpedia", "configs", "yaml",
                        f"{backbone}fpn_amrcnn.yaml")
    params = params_dict.override_params_dict(params, yaml, is_strict=True)
    params.override({"architecture": {"use_bfloat16": False}}, is_strict=True)
    # read by BaseModel, absent from the shipped config (tensorflow/tpu issue 883)
    params.override({"eval": {"skip_eval_loss": True}}, is_strict=False)
    params.validate()
    params.lock()
    return params, model_factory.model_generator(params)


class Recorder:
    """Wraps the model's stage callables (instance attributes set by its constructor) so the
    graph tensors between stages can be fetched; the reference's code is not changed."""

    def __init__(self, model):
        self.t: dict[str, object] = {}
        self._wrap(model, "_backbone_fn", self._backbone)
        self._wrap(model, "_fpn_fn", self._fpn)
        self._wrap(model, "_generate_rois_fn", self._rois)
        self._wrap(model, "_frcnn_head_fn", self._frcnn)
        self._wrap(model, "_mrcnn_head_fn", self._mrcnn)

    @staticmethod
    def _wrap(model, attr, hook):
        fn = getattr(model, attr)
        setattr(model, attr, lambda *a, **k: hook(fn, *a, **k))

    def _backbone(self, fn, images, is_training):
        out = fn(images, is_training)
        self.t["backbone"] = dict(out)
        return out

    def _fpn(self, fn, feats, is_training):
        out = fn(feats, is_training)
        self.t["fpn"] = dict(out)
        return out

    def _rois(self, fn, boxes, scores, anchors, image_shape, is_training):
        rois, roi_scores = fn(boxes, scores, anchors, image_shape, is_training)
        self.t.update(anchors=dict(anchors), rpn_clip_shape=image_shape, proposals=rois,
                      proposal_scores=roi_scores)
        return rois, roi_scores

    def _frcnn(self, fn, roi_features, is_training):
        out = fn(roi_features, is_training)
        self.t.update(roi_features=roi_features, head=out)
        return out

    def _mrcnn(self, fn, roi_features, classes, is_training):
        out = fn(roi_features, classes, is_training)
        self.t.update(mask_roi_features=roi_features, mask_logits=out)
        return out


def build_case(model, photo_hw, size):
    """The graph of one case: the official inference preprocessing of a uint8 photo
    (projects/fashionpedia/inference.py), the model in PREDICT mode, the recorded stages."""
    photo = tf.placeholder(tf.uint8, [photo_hw[0], photo_hw[1], 3], name="photo")
    image = input_utils.normalize_image(photo)
    image, image_info = input_utils.resize_and_crop_image(
        image, [size, size], [size, size], aug_scale_min=1.0, aug_scale_max=1.0)
    image.set_shape([size, size, 3])
    images = tf.reshape(image, [1, size, size, 3])
    images_info = tf.expand_dims(image_info, axis=0)
    rec = Recorder(model)
    outputs = model.build_outputs(images, {"image_info": images_info}, mode=mode_keys.PREDICT)
    # inference.py's step from the model-input frame to the photo's
    boxes_photo = outputs["detection_boxes"] / tf.tile(images_info[:, 2:3, :], [1, 1, 2])
    return photo, images, images_info, rec, outputs, boxes_photo


def add_training_state():
    """global_step and a Momentum slot per trainable variable, created the way the official
    training creates them (train.optimizer: momentum 0.9 over tf.trainable_variables())."""
    global_step = tf.train.get_or_create_global_step()
    opt = tf.train.MomentumOptimizer(0.01, momentum=0.9)
    train_vars = tf.trainable_variables()
    opt.apply_gradients([(tf.zeros_like(v), v) for v in train_vars], global_step)


def assign_weights(sess):
    for v in tf.global_variables():
        name = v.op.name
        if name == "global_step":
            v.load(np.int64(GLOBAL_STEP), sess)
        else:
            v.load(weight_for(name, tuple(v.shape.as_list())), sess)


def manifest(prefix: str, backbone: str) -> dict:
    """Every variable of the saved checkpoint, and the SHA-256 of its two files, so the default
    suite can check that ``write_bundle`` rebuilds the very bytes TensorFlow wrote."""
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    sha = {}
    for suffix in (".index", ".data-00000-of-00001"):
        with open(prefix + suffix, "rb") as f:
            sha[suffix[1:]] = hashlib.sha256(f.read()).hexdigest()
    return {"backbone": backbone, "tf_checkpoint_sha256": sha,
            "variables": [{"name": n, "shape": list(shapes[n]), "dtype": dtypes[n].name}
                          for n in sorted(shapes)]}


def write_manifest(path: str, m: dict) -> None:
    """JSON with one variable a line (diffable)."""
    lines = [json.dumps(v) for v in m["variables"]]
    text = ("{\n" f'"backbone": {json.dumps(m["backbone"])},\n'
            f'"tf_checkpoint_sha256": {json.dumps(m["tf_checkpoint_sha256"])},\n'
            '"variables": [\n' + ",\n".join(lines) + "\n]\n}\n")
    assert json.loads(text) == m
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def _channels(x, size, step=16):
    """Full for S=256 (heads can be fed TF's features), every ``step``-th channel otherwise."""
    return x if size == 256 else x[..., ::step]


def documented_anchors(level: int, size: int) -> np.ndarray:
    """The anchors of a level as the module docstring lays them out: rows (y·W + x)·3 + a."""
    stride = 2.0**level
    centres = np.arange(stride / 2, size, stride)
    rows = []
    for cy in centres:
        for cx in centres:
            for ratio in (1.0, 2.0, 0.5):
                h, w = 3 * stride / np.sqrt(ratio), 3 * stride * np.sqrt(ratio)
                rows.append([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2])
    return np.array(rows)


def collect(values: dict, size: int, photo_hw) -> dict:
    t = values
    n = int(t["num_detections"][0])
    full = size == 256
    for lv in LEVELS:  # what the docstring says about the anchors (not stored: a formula)
        np.testing.assert_allclose(t[f"anchors_{lv}"][0], documented_anchors(lv, size),
                                   rtol=0, atol=1e-4)
    out = {
        "photo_shape": np.array(photo_hw, np.int64),
        "photo_crc32": np.array(zlib.crc32(test_photo(*photo_hw).tobytes()), np.int64),
        "image_info": t["image_info"][0].astype(np.float32),
        "image": t["image"][0].astype(np.float32),
        "rpn_clip_shape": np.asarray(t["rpn_clip_shape"][0], np.float32),
    }
    if full:
        for lv in range(3, 6):
            out[f"backbone_{lv}"] = t[f"backbone_{lv}"][0][..., ::32].astype(np.float32)
    for lv in LEVELS:
        out[f"fpn_{lv}"] = _channels(t[f"fpn_{lv}"][0], size).astype(np.float32)
        out[f"rpn_scores_{lv}"] = t[f"rpn_scores_{lv}"][0].astype(np.float32)
        out[f"rpn_boxes_{lv}"] = t[f"rpn_boxes_{lv}"][0].astype(np.float32)
    out["proposals"] = t["proposals"][0].astype(np.float32)
    out["proposal_scores"] = t["proposal_scores"][0].astype(np.float32)
    out["roi_features"] = _channels(t["roi_features"][0, :NUM_ROI_FEATURES], size).astype(
        np.float32)
    heads = NUM_HEAD_ROIS if full else NUM_HEAD_ROIS // 2
    out["class_logits"] = t["class_logits"][0, :heads].astype(np.float32)
    out["box_deltas"] = t["box_deltas"][0, :heads].astype(np.float32)
    out["attribute_logits"] = t["attribute_logits"][0, :heads].astype(np.float32)
    out["num_detections"] = np.array(n, np.int64)
    out["detection_boxes"] = t["detection_boxes"][0, :n].astype(np.float32)
    out["detection_boxes_photo"] = t["detection_boxes_photo"][0, :n].astype(np.float32)
    out["detection_classes"] = t["detection_classes"][0, :n].astype(np.int64)
    out["detection_scores"] = t["detection_scores"][0, :n].astype(np.float32)
    out["detection_attributes"] = t["detection_attributes"][0, :n].astype(np.float32)
    out["detection_masks"] = t["detection_masks"][0, :n].astype(np.float32)
    return out


def fetches(images, images_info, rec, outputs, boxes_photo) -> dict:
    r = rec.t
    f = {"image": images, "image_info": images_info, "rpn_clip_shape": r["rpn_clip_shape"],
         "proposals": r["proposals"], "proposal_scores": r["proposal_scores"],
         "roi_features": r["roi_features"], "detection_boxes_photo": boxes_photo}
    cls, attr, box = r["head"]
    f.update(class_logits=cls, attribute_logits=attr, box_deltas=box)
    for lv in range(2, 6):
        f[f"backbone_{lv}"] = r["backbone"][lv]
    for lv in LEVELS:
        f[f"fpn_{lv}"] = r["fpn"][lv]
        f[f"rpn_scores_{lv}"] = outputs["rpn_score_outputs"][lv]
        f[f"rpn_boxes_{lv}"] = outputs["rpn_box_outputs"][lv]
        f[f"anchors_{lv}"] = r["anchors"][lv]
    for k in ("num_detections", "detection_boxes", "detection_classes", "detection_scores",
              "detection_attributes", "detection_masks"):
        f[k] = outputs[k]
    return f


def activation_stats(sess, feed) -> list[tuple[str, float]]:
    """RMS of every ReLU and BatchNorm output in the graph (the O(1) check)."""
    ops = [op for op in tf.get_default_graph().get_operations()
           if op.type in ("Relu", "FusedBatchNormV3") or op.name.endswith("batchnorm/add_1")]
    tensors = [op.outputs[0] for op in ops]
    values = sess.run(tensors, feed)
    return [(op.name, float(np.sqrt(np.mean(np.square(v.astype(np.float64))))))
            for op, v in zip(ops, values, strict=True)]


def properties(d: dict) -> dict:
    """What makes the case a good test: printed by the generator, asserted by the tests."""
    n = int(d["num_detections"])
    scores = d["detection_scores"]
    gaps = -np.diff(scores)
    rpn = np.concatenate([d[f"rpn_scores_{lv}"].ravel() for lv in LEVELS])
    att = d["detection_attributes"]
    return {
        "num_detections": n,
        "categories": int(len(np.unique(d["detection_classes"]))),
        "score_range": [float(scores.min()), float(scores.max())] if n else None,
        "min_score_gap": float(gaps.min()) if n > 1 else None,
        "gaps_below_1e-3": int((gaps < 1e-3).sum()),
        "rpn_logit_std": float(rpn.std()),
        "valid_proposals": int((d["proposal_scores"] > 0).sum()),
        "class_logit_std": float(d["class_logits"].std()),
        "attribute_prob_percentiles_5_50_95": [float(p) for p in np.percentile(att, [5, 50, 95])],
        "mask_prob_percentiles_5_50_95": [
            float(p) for p in np.percentile(d["detection_masks"], [5, 50, 95])],
        "fpn_rms": [float(np.sqrt(np.mean(d[f"fpn_{lv}"] ** 2))) for lv in LEVELS],
        "backbone_rms": [float(np.sqrt(np.mean(d[f"backbone_{lv}"] ** 2)))
                         for lv in range(3, 6) if f"backbone_{lv}" in d],
    }


def run_backbone(backbone, sizes, out_dir, *, manifest_only=False, stats=False,
                 checkpoint_dir=None):
    params, model = build_model(backbone)
    photo_of = {s: hw for b, s, hw in CASES if b == backbone}
    wrote_ckpt = False
    for size in sizes:
        hw = photo_of[size]
        with tf.Graph().as_default():
            photo, images, images_info, rec, outputs, boxes_photo = build_case(model, hw, size)
            add_training_state()
            saver = tf.train.Saver()
            with tf.Session() as sess:
                assign_weights(sess)
                if not wrote_ckpt:
                    tmp = tempfile.mkdtemp()
                    prefix = saver.save(sess, os.path.join(tmp, "model.ckpt"),
                                        write_meta_graph=False, write_state=False)
                    m = manifest(prefix, backbone)
                    path = os.path.join(out_dir, f"{backbone}-variables.json")
                    write_manifest(path, m)
                    print(f"{path}: {len(m['variables'])} variables")
                    if checkpoint_dir:
                        os.makedirs(checkpoint_dir, exist_ok=True)
                        for name in os.listdir(tmp):
                            shutil.copy(os.path.join(tmp, name),
                                        os.path.join(checkpoint_dir, f"{backbone}-{name}"))
                    shutil.rmtree(tmp)
                    wrote_ckpt = True
                if manifest_only:
                    return
                feed = {photo: test_photo(*hw)}
                values = sess.run(fetches(images, images_info, rec, outputs, boxes_photo), feed)
                if stats:
                    acts = activation_stats(sess, feed)
                    rms = [r for _, r in acts]
                    print(f"{len(acts)} ReLU/BN outputs: RMS min {min(rms):.3f} "
                          f"median {np.median(rms):.3f} max {max(rms):.3f}")
                    for name, r in acts:
                        if r < 0.2 or r > 5:
                            print(f"  {name}: {r:.3f}")
        d = collect(values, size, hw)
        path = os.path.join(out_dir, case_name(backbone, size) + ".npz")
        tmp_path = path + ".tmp.npz"
        np.savez_compressed(tmp_path, **d)
        os.replace(tmp_path, path)
        print(f"{path}: {os.path.getsize(path) / 1e6:.2f} MB")
        print(json.dumps(properties(d)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(HERE, "official"))
    p.add_argument("--case", action="append",
                   help="backbone-size, e.g. r50-256 (repeatable; default: every case)")
    p.add_argument("--manifest-only", action="store_true")
    p.add_argument("--stats", action="store_true", help="print activation statistics")
    p.add_argument("--checkpoint-dir", help="keep the TF-saved checkpoints here")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    wanted = a.case or [case_name(b, s) for b, s, _ in CASES]
    for backbone in ("r50", "r101"):
        sizes = [s for b, s, _ in CASES if b == backbone and case_name(b, s) in wanted]
        if sizes:
            run_backbone(backbone, sizes, a.out, manifest_only=a.manifest_only, stats=a.stats,
                         checkpoint_dir=a.checkpoint_dir)


if __name__ == "__main__":
    main()
