"""Datasets: readers, converters, validation, the synthetic world, torch Dataset + transforms."""

from fashionkit.data.annotations import Annotation, AnnotationSet, ImageInfo
from fashionkit.data.errors import SkipReport
from fashionkit.data.readers import FORMATS, read_annotations
from fashionkit.errors import InvalidDataError, Problem

__all__ = [
    "Annotation",
    "AnnotationSet",
    "ImageInfo",
    "InvalidDataError",
    "Problem",
    "SkipReport",
    "FORMATS",
    "read_annotations",
]
