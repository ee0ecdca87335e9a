"""What a person asks of the suggested outfits, and which items that admits.

Admission rules (:func:`admissible`), applied to every item except locked ones:

* ``season``: items tagged for that season, or not tagged for any season.
* ``occasion``: items tagged for that occasion or untagged; the occasion also sets the target
  formality (:data:`~fashionkit.outfits.rules.OCCASION_FORMALITY`) unless ``formality``
  is given.
* target formality: items within one step of it, when their formality is known (given by the
  person, or implied by an attribute such as blazer or hoodie); a formality guessed from the
  category alone (shoes 3, bags 3 …) only counts in the score, so unlabelled sneakers are not
  dropped from a gym outfit.
* ``include_*`` (brands, trends, materials): an item that has that property must have one
  of the listed values; items with the property blank stay (unknown is not a mismatch), so
  "include brand Acme" keeps unbranded shoes. ``include_colors``: items with colours must
  have one matching (family, CSS name or hex).
* ``exclude_*``: items with any listed value are dropped.
* ``not_worn_days`` N: items worn in the last N days before ``today`` are dropped.

``favour_rarely_worn`` admits the same items but adds the ``rotation`` part to the score
(:mod:`~fashionkit.outfits.rules`): items worn on fewer days of the last
:data:`~fashionkit.outfits.rules.ROTATION_WINDOW_DAYS` rank higher, so the whole wardrobe gets
worn rather than the same favourites.

``lock`` names items that must appear in every suggestion (they are admitted whatever the
other conditions say). ``outer``: ``True`` asks for an outer layer, ``False`` forbids one,
``None`` lets the temperature decide (required below 15 °C, optional up to 24 °C, none above;
none without a temperature).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from fashionkit.outfits.features import WardrobeIndex
from fashionkit.outfits.rules import OCCASION_FORMALITY
from fashionkit.wardrobe.attributes import SEASONS

__all__ = ["Conditions", "parse_conditions", "admissible", "OUTER_REQUIRED_BELOW_C", "OUTER_ALLOWED_BELOW_C"]

OUTER_REQUIRED_BELOW_C = 15.0
OUTER_ALLOWED_BELOW_C = 24.0


@dataclass(frozen=True)
class Conditions:
    season: str | None = None
    temperature: float | None = None  # °C
    occasion: str | None = None
    formality: int | None = None  # 1..5
    include_brands: tuple[str, ...] = ()
    exclude_brands: tuple[str, ...] = ()
    include_trends: tuple[str, ...] = ()
    exclude_trends: tuple[str, ...] = ()
    include_materials: tuple[str, ...] = ()
    exclude_materials: tuple[str, ...] = ()
    include_colors: tuple[str, ...] = ()
    exclude_colors: tuple[str, ...] = ()
    lock: tuple[str, ...] = ()
    not_worn_days: int | None = None
    today: dt.date | None = field(default=None)
    outer: bool | None = None
    favour_rarely_worn: bool = False

    def __post_init__(self) -> None:
        if self.season is not None:
            # Case-insensitive ("Summer" from a form or a command line); frozen, hence setattr.
            object.__setattr__(self, "season", self.season.lower())
        if self.season is not None and self.season not in SEASONS:
            raise ValueError(f"season must be one of {SEASONS}, got {self.season!r}")
        if self.formality is not None and not 1 <= self.formality <= 5:
            raise ValueError(f"formality must be 1..5, got {self.formality!r}")
        if self.not_worn_days is not None and self.not_worn_days < 0:
            raise ValueError("not_worn_days must be ≥ 0")

    @property
    def target_formality(self) -> int | None:
        if self.formality is not None:
            return self.formality
        if self.occasion:
            return OCCASION_FORMALITY.get(self.occasion.strip().lower())
        return None

    def outer_mode(self) -> str:
        """``"required"``, ``"optional"`` or ``"none"`` for the outer-layer slot."""
        if self.outer is not None:
            return "required" if self.outer else "none"
        if self.temperature is None:
            return "none"
        if self.temperature < OUTER_REQUIRED_BELOW_C:
            return "required"
        return "optional" if self.temperature < OUTER_ALLOWED_BELOW_C else "none"

    def to_json(self) -> dict:
        out = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value in (None, ()) or (name == "favour_rarely_worn" and not value):
                continue
            out[name] = value.isoformat() if isinstance(value, dt.date) else value
        return out


def parse_conditions(
    *,
    season: str | None = None,
    temperature: float | None = None,
    occasion: str | None = None,
    formality: int | None = None,
    include_brands: Iterable[str] = (),
    exclude_brands: Iterable[str] = (),
    include_trends: Iterable[str] = (),
    exclude_trends: Iterable[str] = (),
    include_materials: Iterable[str] = (),
    exclude_materials: Iterable[str] = (),
    include_colors: Iterable[str] = (),
    exclude_colors: Iterable[str] = (),
    lock: Iterable[str] = (),
    not_worn_days: int | None = None,
    today: str | dt.date | None = None,
    outer: bool | None = None,
    favour_rarely_worn: bool = False,
) -> Conditions:
    """:class:`Conditions` from what a person typed (a command line, a query string): empty
    texts mean "not given", lists may be any iterable, ``today`` may be ``YYYY-MM-DD``.
    ``ValueError`` names the condition that cannot be used."""
    if isinstance(today, str):
        try:
            today = dt.date.fromisoformat(today) if today else None
        except ValueError:
            raise ValueError(f"today must be YYYY-MM-DD, got {today!r}") from None
    return Conditions(
        season=season or None,
        temperature=temperature,
        occasion=occasion or None,
        formality=formality,
        include_brands=tuple(include_brands),
        exclude_brands=tuple(exclude_brands),
        include_trends=tuple(include_trends),
        exclude_trends=tuple(exclude_trends),
        include_materials=tuple(include_materials),
        exclude_materials=tuple(exclude_materials),
        include_colors=tuple(include_colors),
        exclude_colors=tuple(exclude_colors),
        lock=tuple(lock),
        not_worn_days=not_worn_days,
        today=today,
        outer=outer,
        favour_rarely_worn=bool(favour_rarely_worn),
    )


def admissible(index: WardrobeIndex, conditions: Conditions) -> np.ndarray:
    """Boolean mask over the index: items the conditions admit (locks not yet applied)."""
    ok = index.slot >= 0
    if conditions.season is not None:
        bit = 1 << SEASONS.index(conditions.season)
        ok &= (index.season_bits == 0) | ((index.season_bits & bit) != 0)
    if conditions.occasion:
        ok &= index.occasion_mask(conditions.occasion)
    target = conditions.target_formality
    if target is not None:
        ok &= ~index.formality_known | (np.abs(index.formality.astype(int) - target) <= 1)
    for field_name, include, exclude in (
        ("brand", conditions.include_brands, conditions.exclude_brands),
        ("trend", conditions.include_trends, conditions.exclude_trends),
        ("material", conditions.include_materials, conditions.exclude_materials),
    ):
        if include:
            ok &= index.text_mask(field_name, include) | ~index.has_text(field_name)
        if exclude:
            ok &= ~index.text_mask(field_name, exclude)
    if conditions.include_colors:
        ok &= index.color_mask(conditions.include_colors) | ~index.has_color
    if conditions.exclude_colors:
        ok &= ~index.color_mask(conditions.exclude_colors)
    if conditions.not_worn_days is not None:
        today = conditions.today or dt.date.today()
        cutoff = today.toordinal() - conditions.not_worn_days
        ok &= index.last_worn < cutoff
    return ok
