"""The personal wardrobe: items (entered, imported or detected in photos), their colours and
seasons, wear log, outfits and feedback, in a SQL store with migrations.

Public API::

    from fashionkit.wardrobe import Wardrobe, WardrobeItem
    with Wardrobe("sqlite:///my.sqlite") as w:
        w.add(WardrobeItem(id="navy-coat", category_id=9, colors=("#1f2a44",)))
"""

from fashionkit.wardrobe.attributes import (
    SEASONS,
    material_from_attributes,
    pattern_from_attributes,
    suggest_seasons,
)
from fashionkit.wardrobe.colors import ColorInfo, DominantColor, describe_color, dominant_colors
from fashionkit.wardrobe.database import (
    FeedbackEvent,
    ItemInPhoto,
    ItemPart,
    Wardrobe,
    default_image_dir,
    default_url,
)
from fashionkit.wardrobe.dataset import export_dataset
from fashionkit.wardrobe.exchange import export_wardrobe, import_wardrobe, read_items, write_items
from fashionkit.wardrobe.ingest import DuplicateCandidate, IngestReport, ingest_photos
from fashionkit.wardrobe.items import WardrobeItem, item_from_dict, item_to_dict

__all__ = [
    "Wardrobe",
    "WardrobeItem",
    "FeedbackEvent",
    "ItemPart",
    "ItemInPhoto",
    "ingest_photos",
    "IngestReport",
    "DuplicateCandidate",
    "export_dataset",
    "default_url",
    "default_image_dir",
    "item_from_dict",
    "item_to_dict",
    "read_items",
    "write_items",
    "import_wardrobe",
    "export_wardrobe",
    "describe_color",
    "dominant_colors",
    "ColorInfo",
    "DominantColor",
    "SEASONS",
    "suggest_seasons",
    "pattern_from_attributes",
    "material_from_attributes",
]
