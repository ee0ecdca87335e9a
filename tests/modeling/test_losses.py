"""Table 4 losses (matterport's definitions) against hand computations on tiny inputs."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import fastrcnn_loss, maskrcnn_loss

from fashionkit.modeling.losses import mrcnn_bbox_loss


def _tiny():
    # 4 sampled RoIs, 3 classes (0 = background): RoIs 0 and 2 positive (classes 2 and 1).
    labels = torch.tensor([2, 0, 1, 0])
    box_regression = torch.zeros(4, 12)
    box_regression[0, 8:12] = torch.tensor([0.5, -2.0, 0.0, 0.0])  # class 2 of RoI 0
    box_regression[0, 4:8] = 9.0  # another class's deltas: must not count
    box_regression[2, 4:8] = torch.tensor([0.0, 0.0, 1.5, 0.0])  # class 1 of RoI 2
    box_regression[1] = 7.0  # a background RoI: must not count
    targets = torch.zeros(4, 4)
    return box_regression, labels, targets


def test_bbox_loss_is_the_mean_over_positive_rois_and_coordinates():
    box_regression, labels, targets = _tiny()
    # smooth-L1, beta 1: |d| < 1 -> d²/2, else |d| - 1/2. RoI 0: 0.125 + 1.5; RoI 2: 1.0.
    expected = (0.125 + 1.5 + 0 + 0 + 0 + 0 + 1.0 + 0) / 8
    assert mrcnn_bbox_loss(box_regression, labels, targets).item() == pytest.approx(expected)
    # Averaging over all 4 sampled RoIs (torchvision's denominator) would give half of this.
    assert expected != pytest.approx((0.125 + 1.5 + 1.0) / (4 * 4))


def test_bbox_loss_does_not_depend_on_the_number_of_background_rois():
    box_regression, labels, targets = _tiny()
    more = torch.cat([box_regression, torch.full((6, 12), 3.0)])
    more_labels = torch.cat([labels, torch.zeros(6, dtype=torch.int64)])
    more_targets = torch.cat([targets, torch.zeros(6, 4)])
    torch.testing.assert_close(mrcnn_bbox_loss(more, more_labels, more_targets),
                               mrcnn_bbox_loss(box_regression, labels, targets))
    # torchvision's optimised box loss falls as background RoIs are added.
    _, few = fastrcnn_loss(torch.zeros(4, 3), box_regression, [labels], [targets])
    _, many = fastrcnn_loss(torch.zeros(10, 3), more, [more_labels], [more_targets])
    assert many < few


def test_bbox_loss_is_zero_without_positives_and_keeps_the_graph():
    box_regression = torch.randn(3, 8, requires_grad=True)
    loss = mrcnn_bbox_loss(box_regression, torch.zeros(3, dtype=torch.int64), torch.zeros(3, 4))
    assert loss.item() == 0.0
    loss.backward()


def test_bbox_loss_names_the_bad_shape():
    with pytest.raises(ValueError, match="box_regression"):
        mrcnn_bbox_loss(torch.zeros(3, 5), torch.zeros(3, dtype=torch.int64), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="labels"):
        mrcnn_bbox_loss(torch.zeros(3, 8), torch.zeros(2, dtype=torch.int64), torch.zeros(3, 4))


def test_torchvision_class_loss_is_matterports_mean_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    class_loss, _ = fastrcnn_loss(logits, torch.zeros(2, 12), [labels], [torch.zeros(2, 4)])
    by_hand = (-torch.log_softmax(logits[0], 0)[0] - torch.log_softmax(logits[1], 0)[2]) / 2
    torch.testing.assert_close(class_loss, by_hand)


def test_torchvision_mask_loss_is_matterports_mean_bce_over_positive_pixels():
    # One positive RoI of class 1 covering a 2x2 image whose ground-truth mask is all ones,
    # at mask resolution M = 2: target ones; logits of class 1 are used, class 0 ignored.
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1] = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
    logits[0, 0] = 5.0
    loss = maskrcnn_loss(logits, [torch.tensor([[0.0, 0.0, 2.0, 2.0]])],
                         [torch.ones(1, 2, 2, dtype=torch.uint8)], [torch.tensor([1])],
                         [torch.tensor([0])])
    by_hand = F.binary_cross_entropy(torch.sigmoid(logits[0, 1]), torch.ones(2, 2))
    torch.testing.assert_close(loss, by_hand)
