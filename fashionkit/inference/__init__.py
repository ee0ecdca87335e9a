"""Inference on people's photos: loading, the Predictor, visualisation.

Public API::

    photo = load_photo("me.jpg")                 # H×W×3 uint8 RGB, EXIF orientation applied
    predictor = Predictor("run/model.pt")       # or a model; backend="eager", device="cpu"
    [prediction] = predictor(["me.jpg"])         # per image: items with names, masks, parts
    save_visuals(prediction, "out", "me")        # Fig. 8 overlay, Fig. 9 view, Fig. 7 cut-outs
    export_model("run/model.pt", "model.onnx")  # then Predictor("model.onnx", backend=...)
"""

from fashionkit.inference.export import EXPORT_FORMATS, ExportedModel, export_model
from fashionkit.inference.images import (
    DEFAULT_MAX_PIXELS,
    Photo,
    expand_sources,
    load_photo,
    load_photos,
)
from fashionkit.inference.parity import ParityReport, compare_predictions
from fashionkit.inference.parts import link_parts
from fashionkit.inference.photos_dataset import input_transform_for
from fashionkit.inference.prediction import AttributeScore, DetectedItem, Prediction
from fashionkit.inference.predictor import BACKENDS, Predictor
from fashionkit.inference.visualize import (
    cutouts,
    draw_overlay,
    draw_supercategories,
    save_visuals,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_MAX_PIXELS",
    "EXPORT_FORMATS",
    "AttributeScore",
    "ExportedModel",
    "DetectedItem",
    "ParityReport",
    "Prediction",
    "Predictor",
    "compare_predictions",
    "cutouts",
    "draw_overlay",
    "draw_supercategories",
    "export_model",
    "input_transform_for",
    "link_parts",
    "Photo",
    "expand_sources",
    "load_photo",
    "load_photos",
    "save_visuals",
]
