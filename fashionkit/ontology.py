"""The Fashionpedia ontology: 46 categories in 12 super categories, 294 attributes in 11 groups.

Ids are Fashionpedia's own everywhere outside training tensors: category ids 0..45 and attribute
ids 0..340 (294 of them used). Training uses contiguous indices; :class:`Ontology` maps both ways
(category index 0 is reserved for the background, so category id ``c`` is label ``c + 1``).

The data comes from ``resources/ontology.json`` (Fashionpedia, CC BY 4.0; see
``resources/ONTOLOGY_NOTICE.md``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "Attribute",
    "Category",
    "Ontology",
    "load_ontology",
    "MAIN_GARMENT_IDS",
    "ACCESSORY_IDS",
    "PART_IDS",
    "PAIR_IDS",
    "ATTRIBUTE_CATEGORY_IDS",
]

# The three super classes the official evaluator reports (APo / APa / APp).
MAIN_GARMENT_IDS: tuple[int, ...] = tuple(range(0, 13))
ACCESSORY_IDS: tuple[int, ...] = tuple(range(13, 27))
PART_IDS: tuple[int, ...] = tuple(range(27, 46))
# Worn as pairs: glove, leg warmer, sock, shoe. Fashionpedia annotates each one of a pair; a
# wardrobe item is the pair.
PAIR_IDS: tuple[int, ...] = (17, 20, 22, 23)
# Categories annotated with attributes in Fashionpedia; only these get the F1 constraint.
ATTRIBUTE_CATEGORY_IDS: tuple[int, ...] = (*range(0, 13), 28, 29, 31, 32, 33)


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    supercategory: str
    level: int
    taxonomy_id: str

    @property
    def group(self) -> str:
        """``"garment"``, ``"accessory"`` or ``"part"`` (the evaluator's super classes)."""
        if self.id in MAIN_GARMENT_IDS:
            return "garment"
        if self.id in ACCESSORY_IDS:
            return "accessory"
        return "part"

    @property
    def short_name(self) -> str:
        """The first comma form: ``"top"`` for ``"top, t-shirt, sweatshirt"``."""
        return self.name.split(",")[0].strip()


@dataclass(frozen=True)
class Attribute:
    id: int
    name: str
    supercategory: str
    level: int
    taxonomy_id: str


def _name_keys(name: str) -> set[str]:
    """Lookup keys for a name: the whole name and each comma form, lower-cased, and each with
    any parenthesised qualifier dropped ("classic (t-shirt)" is found by "classic")."""
    whole = name.strip().lower()
    keys = {whole}
    for part in whole.split(","):
        part = part.strip()
        if part:
            keys.add(part)
            bare = re.sub(r"\s*\(.*?\)\s*", " ", part).strip()
            if bare:
                keys.add(bare)
    return keys


class Ontology:
    """Categories and attributes with id, index and name lookups.

    ``categories`` and ``attributes`` are ordered by id. ``num_classes`` counts the background
    (47 for Fashionpedia). Attribute indices are contiguous 0..293 in id order.
    """

    def __init__(self, categories: list[Category], attributes: list[Attribute], version: str):
        self.categories: tuple[Category, ...] = tuple(sorted(categories, key=lambda c: c.id))
        self.attributes: tuple[Attribute, ...] = tuple(sorted(attributes, key=lambda a: a.id))
        self.version = version
        self._cat_by_id = {c.id: c for c in self.categories}
        self._att_by_id = {a.id: a for a in self.attributes}
        self._cat_index = {c.id: i + 1 for i, c in enumerate(self.categories)}
        self._att_index = {a.id: i for i, a in enumerate(self.attributes)}
        self._cat_names = self._build_name_index(self.categories, "category")
        self._att_names = self._build_name_index(self.attributes, "attribute")

    @staticmethod
    def _build_name_index(items, kind: str) -> dict[str, list[int]]:
        index: dict[str, list[int]] = {}
        for item in items:
            for key in _name_keys(item.name):
                index.setdefault(key, []).append(item.id)
        return index

    # -- sizes -----------------------------------------------------------------------------
    @property
    def num_categories(self) -> int:
        return len(self.categories)

    @property
    def num_classes(self) -> int:
        """Categories plus the background class (index 0)."""
        return len(self.categories) + 1

    @property
    def num_attributes(self) -> int:
        return len(self.attributes)

    @property
    def category_ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.categories)

    @property
    def attribute_ids(self) -> tuple[int, ...]:
        return tuple(a.id for a in self.attributes)

    @property
    def supercategories(self) -> tuple[str, ...]:
        """Category super categories in first-seen id order (12 for Fashionpedia)."""
        return tuple(dict.fromkeys(c.supercategory for c in self.categories))

    @property
    def attribute_groups(self) -> tuple[str, ...]:
        """Attribute super categories in first-seen id order (11 for Fashionpedia)."""
        return tuple(dict.fromkeys(a.supercategory for a in self.attributes))

    # -- id lookups ------------------------------------------------------------------------
    def has_category(self, category_id: int) -> bool:
        return category_id in self._cat_by_id

    def has_attribute(self, attribute_id: int) -> bool:
        return attribute_id in self._att_by_id

    def category(self, key: int | str) -> Category:
        """A category by Fashionpedia id or by name (see :meth:`find_category`)."""
        if isinstance(key, str):
            return self.find_category(key)
        try:
            return self._cat_by_id[int(key)]
        except KeyError:
            raise KeyError(f"unknown Fashionpedia category id {key!r} (valid: 0..45)") from None

    def attribute(self, key: int | str) -> Attribute:
        if isinstance(key, str):
            return self.find_attribute(key)
        try:
            return self._att_by_id[int(key)]
        except KeyError:
            raise KeyError(f"unknown Fashionpedia attribute id {key!r}") from None

    # -- contiguous indices for training ---------------------------------------------------
    def category_to_label(self, category_id: int) -> int:
        """Fashionpedia category id → contiguous label (1..46; 0 is background)."""
        try:
            return self._cat_index[category_id]
        except KeyError:
            raise KeyError(f"unknown Fashionpedia category id {category_id!r}") from None

    def label_to_category(self, label: int) -> int:
        """Contiguous label (1..46) → Fashionpedia category id."""
        if not 1 <= label <= len(self.categories):
            raise KeyError(f"label {label} is not a category label (1..{len(self.categories)})")
        return self.categories[label - 1].id

    def attribute_to_index(self, attribute_id: int) -> int:
        """Fashionpedia attribute id (0..340) → contiguous index (0..293)."""
        try:
            return self._att_index[attribute_id]
        except KeyError:
            raise KeyError(f"unknown Fashionpedia attribute id {attribute_id!r}") from None

    def index_to_attribute(self, index: int) -> int:
        return self.attributes[index].id

    # -- names -----------------------------------------------------------------------------
    def _find(self, name: str, index: dict[str, list[int]], kind: str) -> int:
        key = name.strip().lower()
        ids = index.get(key)
        if not ids:
            bare = re.sub(r"\s*\(.*?\)\s*", " ", key).strip()
            ids = index.get(bare)
        if not ids:
            raise KeyError(f"no Fashionpedia {kind} is named {name!r}")
        if len(set(ids)) > 1:
            raise KeyError(f"{kind} name {name!r} is ambiguous: ids {sorted(set(ids))}")
        return ids[0]

    def find_category(self, name: str) -> Category:
        """Case-insensitive; any comma form matches ("t-shirt" → "top, t-shirt, sweatshirt")."""
        return self._cat_by_id[self._find(name, self._cat_names, "category")]

    def find_attribute(self, name: str) -> Attribute:
        return self._att_by_id[self._find(name, self._att_names, "attribute")]

    # -- (de)serialisation -----------------------------------------------------------------
    def categories_json(self) -> list[dict]:
        return [
            {
                "id": c.id,
                "name": c.name,
                "supercategory": c.supercategory,
                "level": c.level,
                "taxonomy_id": c.taxonomy_id,
            }
            for c in self.categories
        ]

    def attributes_json(self) -> list[dict]:
        return [
            {
                "id": a.id,
                "name": a.name,
                "supercategory": a.supercategory,
                "level": a.level,
                "taxonomy_id": a.taxonomy_id,
            }
            for a in self.attributes
        ]

    @classmethod
    def from_dict(cls, data: dict, version: str | None = None) -> Ontology:
        cats = [
            Category(
                id=int(c["id"]),
                name=str(c["name"]),
                supercategory=str(c.get("supercategory", "")),
                level=int(c.get("level", 2)),
                taxonomy_id=str(c.get("taxonomy_id", "")),
            )
            for c in data["categories"]
        ]
        atts = [
            Attribute(
                id=int(a["id"]),
                name=str(a["name"]),
                supercategory=str(a.get("supercategory", "")),
                level=int(a.get("level", 1)),
                taxonomy_id=str(a.get("taxonomy_id", "")),
            )
            for a in data.get("attributes", [])
        ]
        if version is None:
            blob = json.dumps(data, sort_keys=True).encode()
            version = "fashionpedia-" + hashlib.sha256(blob).hexdigest()[:12]
        return cls(cats, atts, version)


@functools.cache
def load_ontology() -> Ontology:
    """The built-in Fashionpedia ontology (cached; the object is immutable)."""
    text = resources.files("fashionkit.resources").joinpath("ontology.json").read_text("utf-8")
    return Ontology.from_dict(json.loads(text))
