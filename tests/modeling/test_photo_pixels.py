"""The one mapping of detections to photo pixels, checked against torchvision's pasting."""

import numpy as np
import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image

from fashionkit.data.masks import decode_rle
from fashionkit.modeling.photo_pixels import boxes_to_photo, paste_masks, paste_masks_as_rles

BOXES = torch.tensor([[3.2, 4.7, 40.1, 33.0], [0.0, 0.0, 70.0, 50.0], [-5.0, 10.0, 12.0, 60.0],
                      [60.5, 40.2, 80.0, 55.0], [20.0, 20.0, 20.4, 20.3], [10.0, 5.0, 30.0, 48.0],
                      ])


@pytest.mark.parametrize("threshold", [0.5, 0.2])
def test_paste_equals_torchvision_paste_masks_in_image(threshold):
    probs = torch.rand(len(BOXES), 1, 28, 28, generator=torch.Generator().manual_seed(0))
    want = paste_masks_in_image(probs, BOXES, (50, 70))[:, 0] >= threshold
    got = paste_masks(probs, BOXES, (50, 70), threshold)
    assert got.dtype == torch.bool and got.shape == (len(BOXES), 50, 70)
    assert torch.equal(got, want)
    rles = paste_masks_as_rles(probs, BOXES, (50, 70), threshold)
    assert all(r["size"] == [50, 70] for r in rles)
    for rle, mask in zip(rles, want, strict=True):
        np.testing.assert_array_equal(decode_rle(rle), mask.numpy())


def test_a_box_outside_the_image_pastes_nothing():
    # (torchvision's paste raises on such a box; the model clips boxes to the image first)
    probs = torch.ones(1, 1, 28, 28)
    outside = torch.tensor([[75.0, 55.0, 90.0, 70.0]])
    assert not paste_masks(probs, outside, (50, 70)).any()
    assert decode_rle(paste_masks_as_rles(probs, outside, (50, 70))[0]).sum() == 0


def test_empty_and_invalid_inputs():
    probs = torch.rand(0, 1, 28, 28)
    assert paste_masks(probs, BOXES[:0], (5, 6)).shape == (0, 5, 6)
    assert paste_masks_as_rles(probs, BOXES[:0], (5, 6)) == []
    with pytest.raises(ValueError, match="threshold must be > 0"):
        paste_masks(torch.rand(1, 1, 28, 28), BOXES[:1], (5, 6), 0.0)
    with pytest.raises(ValueError, match="N×1×M×M"):
        paste_masks(torch.rand(2, 28, 28), BOXES[:2], (5, 6))


def test_boxes_to_photo_undoes_the_models_resize_and_the_recipes_scale():
    # A 40×64 photo scaled by 1.25 to a 50×80 input (padded), which the model itself resized
    # by 2 to 100×160: back to the photo, clipped to it.
    boxes = torch.tensor([[40.0, 20.0, 120.0, 80.0], [150.0, 90.0, 170.0, 110.0]])
    back = boxes_to_photo(boxes, (100, 160), (50, 80), (40, 64), scale=1.25)
    torch.testing.assert_close(back, torch.tensor([[16.0, 8.0, 48.0, 32.0],
                                                   [60.0, 36.0, 64.0, 40.0]]))
    assert boxes_to_photo(boxes[:0], (1, 1), (1, 1), (1, 1)).shape == (0, 4)
