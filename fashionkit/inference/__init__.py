"""Inference on people's photos: loading, the Predictor, visualisation.

Public API::

    photo = load_photo("me.jpg")                 # H×W×3 uint8 RGB, EXIF orientation applied
    predictor = Predictor("run/model.pt")       # or a model; backend="eager", device="cpu"
    [prediction] = predictor(["me.jpg"])         # per image: items with names, masks, parts
"""

from fashionkit.inference.images import (
    DEFAULT_MAX_PIXELS,
    Photo,
    expand_sources,
    load_photo,
    load_photos,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Photo",
    "expand_sources",
    "load_photo",
    "load_photos",
]
