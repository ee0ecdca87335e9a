"""Attribute-Mask R-CNN on torchvision: config, model, heads, weights and checkpoints.

Public API::

    config = model_config_from_preset("cpu-tiny")        # or PRESETS[...], ModelConfig(...)
    model = build_model(config)
    load_weights(model, "maskrcnn_resnet50_fpn_coco.pth")  # optional, local files only
    losses = model.losses(images, targets)                # the objective's six named terms
    detections = model.eval().predict(images)             # list[fashionkit.structures.Detections]
    save_checkpoint(model, "model.pt"); model = load_checkpoint("model.pt")
"""

from fashionkit.modeling.attribute_head import AttributeHead, attribute_loss, attribute_targets
from fashionkit.modeling.checkpoint import (
    checked_config,
    load_checkpoint,
    model_from_checkpoint,
    read_checkpoint,
    safe_torch_load,
    save_checkpoint,
)
from fashionkit.modeling.config import PRESETS, ModelConfig, model_config_from_preset
from fashionkit.modeling.model import LOSS_NAMES, AttributeMaskRCNN, build_model
from fashionkit.modeling.weights import WeightsReport, load_weights

__all__ = [
    "AttributeHead",
    "AttributeMaskRCNN",
    "LOSS_NAMES",
    "ModelConfig",
    "PRESETS",
    "WeightsReport",
    "attribute_loss",
    "attribute_targets",
    "build_model",
    "checked_config",
    "load_checkpoint",
    "load_weights",
    "model_config_from_preset",
    "model_from_checkpoint",
    "read_checkpoint",
    "safe_torch_load",
    "save_checkpoint",
]
