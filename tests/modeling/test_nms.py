"""Per-class NMS: eager against torchvision's ``batched_nms`` and ``postprocess_detections``,
exported against the same eager result in ONNX Runtime and OpenVINO."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from modeling_samples import run_onnx
from torchvision.ops import batched_nms

from fashionkit.modeling import build_model
from fashionkit.modeling.nms import batched_nms_without_branches, classwise_nms


def _clustered_boxes(classes: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``classes×n×4`` boxes around a few centres (so that NMS suppresses a lot), scores with
    some pairs masked out (−1)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(classes, 6, 2, generator=g) * 200
    pick = torch.randint(0, 6, (classes, n), generator=g)
    centre = torch.gather(centres, 1, pick[..., None].expand(-1, -1, 2))
    centre = centre + torch.randn(classes, n, 2, generator=g) * 4
    size = 10 + torch.rand(classes, n, 2, generator=g) * 40
    boxes = torch.cat([centre - size / 2, centre + size / 2], dim=-1)
    scores = torch.rand(classes, n, generator=g)
    scores[torch.rand(classes, n, generator=g) < 0.3] = -1.0
    return boxes, scores


def _pairs(kept: torch.Tensor) -> set[tuple[int, int]]:
    return {tuple(row) for row in kept.tolist()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classwise_nms_keeps_what_batched_nms_keeps(seed):
    classes, n = 7, 300
    boxes, scores = _clustered_boxes(classes, n, seed)
    valid = scores >= 0
    cls, box = torch.nonzero(valid, as_tuple=True)
    reference = batched_nms(boxes[cls, box], scores[cls, box], cls, 0.5)
    want = {(int(cls[k]), int(box[k])) for k in reference}
    assert len(want) < valid.sum() / 2  # the clusters make NMS suppress most boxes
    assert _pairs(classwise_nms(boxes, scores, 0.5, max_per_class=n)) == want
    # The cap keeps each class's best survivors: what a top-k over all classes can use.
    capped = classwise_nms(boxes, scores, 0.5, max_per_class=3)
    for c in range(classes):
        survivors = sorted((p for p in want if p[0] == c), key=lambda p: -scores[p].item())
        assert {p for p in _pairs(capped) if p[0] == c} == set(survivors[:3])


def test_classwise_nms_on_no_candidates_and_bad_shapes():
    boxes = torch.zeros(3, 5, 4)
    assert classwise_nms(boxes, torch.full((3, 5), -1.0), 0.5, 10).shape == (0, 2)
    with pytest.raises(ValueError, match="C×N×4"):
        classwise_nms(boxes, torch.zeros(3, 4), 0.5, 10)


@pytest.mark.parametrize("score_thresh", [0.0, 0.05])
def test_postprocess_matches_torchvision(tiny_config, score_thresh):
    """The RoI heads' post-processing against torchvision's ``postprocess_detections`` (the
    reference it re-implements) on 400 random proposals and 47 classes."""
    config = tiny_config.replace(box_score_thresh=score_thresh, box_detections_per_img=50)
    heads = build_model(config).roi_heads
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(400, 2, generator=g) * 100
    proposals = [torch.cat([xy, xy + 5 + torch.rand(400, 2, generator=g) * 60], dim=1)]
    class_logits = torch.randn(400, 47, generator=g) * 3
    box_regression = torch.randn(400, 47 * 4, generator=g) * 0.3
    boxes, scores, labels, source = heads._postprocess(class_logits, box_regression, proposals,
                                                       [(120, 130)])[0]
    want_boxes, want_scores, want_labels = heads.postprocess_detections(
        class_logits, box_regression, proposals, [(120, 130)])
    assert len(scores) == len(want_scores[0]) == 50
    torch.testing.assert_close(scores, want_scores[0])
    order, want_order = torch.argsort(scores), torch.argsort(want_scores[0])
    torch.testing.assert_close(boxes[order], want_boxes[0][want_order])
    assert torch.equal(labels[order], want_labels[0][want_order])
    # ``source`` names the proposal: its class-specific decoded box is the detection's.
    decoded = heads.box_coder.decode(box_regression, proposals)
    decoded[..., 0::2] = decoded[..., 0::2].clamp(0, 130)
    decoded[..., 1::2] = decoded[..., 1::2].clamp(0, 120)
    torch.testing.assert_close(decoded[source, labels], boxes)


class _Graph(torch.nn.Module):
    def forward(self, boxes, scores):
        return classwise_nms(boxes, scores, 0.5, 20)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_exported_classwise_nms_keeps_the_same_pairs(tmp_path, runtime):
    boxes, scores = _clustered_boxes(5, 200, seed=4)
    path = tmp_path / "nms.onnx"
    torch.onnx.export(_Graph(), (boxes, scores), str(path), dynamo=False, opset_version=17,
                      input_names=["boxes", "scores"], output_names=["kept"],
                      dynamic_axes={"boxes": {0: "c", 1: "n"}, "scores": {0: "c", 1: "n"}})
    import onnx

    assert [n.op_type for n in onnx.load(str(path)).graph.node].count("NonMaxSuppression") == 1
    other_boxes, other_scores = _clustered_boxes(9, 150, seed=5)  # other sizes: dynamic axes
    for b, s in ((boxes, scores), (other_boxes, other_scores)):
        feeds = {"boxes": b.numpy(), "scores": s.numpy()}
        got = run_onnx(path, feeds, runtime)[0]
        assert _pairs(torch.from_numpy(np.asarray(got, np.int64))) == _pairs(
            classwise_nms(b, s, 0.5, 20))


@pytest.mark.parametrize("seed", [0, 1])
def test_batched_nms_without_branches_is_torchvisions(seed):
    boxes, scores = _clustered_boxes(1, 400, seed)
    boxes, scores = boxes[0], scores[0].abs()
    groups = torch.randint(0, 5, (400,), generator=torch.Generator().manual_seed(seed))
    assert torch.equal(batched_nms_without_branches(boxes, scores, groups, 0.6),
                       batched_nms(boxes, scores, groups, 0.6))
    empty = batched_nms_without_branches(boxes[:0], scores[:0], groups[:0], 0.6)
    assert empty.shape == (0,)


def test_exported_model_has_no_branches(tmp_path):
    """torchvision's batched NMS exports an ``If`` that NNCF's quantisation cannot read."""
    import onnx

    from fashionkit.inference.export import export_model
    from fashionkit.modeling import model_config_from_preset

    model = build_model(model_config_from_preset("cpu-tiny")).eval()
    path = export_model(model, tmp_path / "model.onnx")
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "If" not in ops and "Loop" not in ops
    assert ops.count("NonMaxSuppression") == 2  # the RPN's and the per-class one
