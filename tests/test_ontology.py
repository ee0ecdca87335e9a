import json
from importlib import resources

import pytest

from fashionkit.ontology import (
    ACCESSORY_IDS,
    ATTRIBUTE_CATEGORY_IDS,
    MAIN_GARMENT_IDS,
    PART_IDS,
    load_ontology,
)


def test_sizes_match_fashionpedia():
    ont = load_ontology()
    assert ont.num_categories == 46
    assert ont.category_ids == tuple(range(46))
    assert ont.num_classes == 47
    assert ont.num_attributes == 294
    assert min(ont.attribute_ids) == 0 and max(ont.attribute_ids) == 340
    assert len(ont.supercategories) == 12
    assert len(ont.attribute_groups) == 11


def test_evaluator_groups_partition_categories():
    assert set(MAIN_GARMENT_IDS) | set(ACCESSORY_IDS) | set(PART_IDS) == set(range(46))
    assert len(MAIN_GARMENT_IDS) == 13 and len(ACCESSORY_IDS) == 14 and len(PART_IDS) == 19
    ont = load_ontology()
    assert ont.category(12).name == "cape" and ont.category(12).group == "garment"
    assert ont.category(13).name == "glasses" and ont.category(13).group == "accessory"
    assert ont.category(27).name == "hood" and ont.category(27).group == "part"
    assert len(ATTRIBUTE_CATEGORY_IDS) == 18


def test_contiguous_maps_round_trip():
    ont = load_ontology()
    labels = [ont.category_to_label(c) for c in ont.category_ids]
    assert labels == list(range(1, 47))
    assert [ont.label_to_category(v) for v in labels] == list(ont.category_ids)
    idx = [ont.attribute_to_index(a) for a in ont.attribute_ids]
    assert idx == list(range(294))
    assert [ont.index_to_attribute(i) for i in idx] == list(ont.attribute_ids)
    with pytest.raises(KeyError, match="46"):
        ont.category_to_label(46)
    with pytest.raises(KeyError):
        ont.label_to_category(0)
    missing = sorted(set(range(341)) - set(ont.attribute_ids))[0]
    with pytest.raises(KeyError, match=str(missing)):
        ont.attribute_to_index(missing)


@pytest.mark.parametrize(
    "query,expected",
    [
        ("t-shirt", "top, t-shirt, sweatshirt"),
        ("T-Shirt", "top, t-shirt, sweatshirt"),
        ("  Blouse ", "shirt, blouse"),
        ("shirt, blouse", "shirt, blouse"),
        ("bag", "bag, wallet"),
        ("sleeve", "sleeve"),
    ],
)
def test_category_name_lookup(query, expected):
    assert load_ontology().find_category(query).name == expected


def test_attribute_name_lookup_and_unknown_names():
    ont = load_ontology()
    with pytest.raises(KeyError, match="ambiguous"):
        ont.find_attribute("Polo")  # polo (shirt) and polo (collar)
    assert ont.find_attribute("Polo (Shirt)").id == 1
    assert ont.find_attribute("polo (shirt)").id == 1
    with pytest.raises(KeyError, match="no Fashionpedia category"):
        ont.find_category("spacesuit")


def test_package_data_keeps_attribution():
    notice = resources.files("fashionkit.resources").joinpath("ONTOLOGY_NOTICE.md").read_text()
    assert "CC BY 4.0" in notice and "Fashionpedia" in notice
    raw = json.loads(resources.files("fashionkit.resources").joinpath("ontology.json").read_text())
    assert len(raw["categories"]) == 46
