import math

import pytest
import torch

from fashionkit.modeling import AttributeHead, attribute_loss, attribute_targets


def _bce(x: float, t: float) -> float:
    p = 1 / (1 + math.exp(-x))
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def test_bce_matches_hand_computation():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    terms = [_bce(x, t) for x, t in zip(logits.flatten().tolist(), targets.flatten().tolist(),
                                        strict=True)]
    assert attribute_loss(logits, targets, "bce").item() == pytest.approx(sum(terms) / 6, rel=1e-6)
    per_roi = (sum(terms[:3]) + sum(terms[3:])) / 2
    got = attribute_loss(logits, targets, "bce", normalization="rois").item()
    assert got == pytest.approx(per_roi, rel=1e-6)


def test_focal_matches_hand_computation():
    logits = torch.tensor([[2.0, -1.0], [0.3, 1.5]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    alpha, gamma = 0.25, 2.0
    total = 0.0
    for x, t in zip(logits.flatten().tolist(), targets.flatten().tolist(), strict=True):
        p = 1 / (1 + math.exp(-x))
        p_t = p if t == 1 else 1 - p
        a_t = alpha if t == 1 else 1 - alpha
        total += a_t * (1 - p_t) ** gamma * _bce(x, t)
    got = attribute_loss(logits, targets, "focal", focal_alpha=alpha, focal_gamma=gamma).item()
    assert got == pytest.approx(total / 4, rel=1e-6)


def test_empty_rois_give_zero_loss_with_gradient_path():
    logits = torch.zeros(0, 294, requires_grad=True)
    for kind in ("bce", "focal"):
        loss = attribute_loss(logits, torch.zeros(0, 294), kind)
        assert loss.item() == 0.0
        loss.backward()
        assert logits.grad is not None


def test_loss_rejects_mismatched_shapes_and_unknown_kind():
    with pytest.raises(ValueError, match="differ"):
        attribute_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="bce"):
        attribute_loss(torch.zeros(2, 3), torch.zeros(2, 3), "hinge")


def test_targets_copy_matched_ground_truth_and_zero_background():
    gt = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    labels = [torch.tensor([3, 0, 5, 0]), torch.tensor([0, 0])]
    matched = [torch.tensor([1, 1, 0, 0]), torch.tensor([0, 0])]
    out = attribute_targets(labels, matched, [gt, torch.zeros(0, 3)])
    expected = torch.tensor([
        [0.0, 1.0, 1.0],  # foreground matched to gt 1
        [0.0, 0.0, 0.0],  # background, although its (clamped) match is gt 1
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],  # image without objects
        [0.0, 0.0, 0.0],
    ])
    assert torch.equal(out, expected)


def test_head_shapes_and_prior():
    head = AttributeHead(16, 294, hidden=(32,))
    out = head(torch.randn(5, 16))
    assert out.shape == (5, 294)
    # The bias prior makes initial probabilities small (~1%).
    assert torch.sigmoid(AttributeHead(16, 294)(torch.zeros(1, 16))).mean().item() == \
        pytest.approx(0.01, rel=1e-3)
