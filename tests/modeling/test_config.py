import pytest
import yaml

from fashionkit.modeling import PRESETS, ModelConfig, model_config_from_preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_yaml(name):
    config = PRESETS[name]
    text = yaml.safe_dump(config.to_dict())
    assert ModelConfig.from_dict(yaml.safe_load(text)) == config


def test_required_presets_exist_with_paper_choices():
    assert {"paper", "fashionpedia-r50", "fashionpedia-r101", "cpu-tiny"} <= set(PRESETS)
    paper = PRESETS["paper"]
    assert paper.backbone == "resnet101" and paper.heads == "v1"
    assert paper.fpn_levels == (2, 3, 4, 5) and len(paper.anchor_sizes) == 5  # P2–P6
    assert paper.num_classes == 47 and paper.num_attributes == 294
    assert paper.attribute_score_threshold == 0.05 and paper.attribute_loss_weight == 1.0
    assert not paper.resize  # the dataset already resized and padded to 1024×1024


def test_overrides_are_checked():
    config = model_config_from_preset("cpu-tiny", attribute_loss="focal",
                                      anchor_sizes=[4, 8, 16, 32, 64])
    assert config.attribute_loss == "focal" and config.anchor_sizes == (4, 8, 16, 32, 64)
    with pytest.raises(ValueError, match="unknown key"):
        model_config_from_preset("cpu-tiny", backbone_name="resnet18")
    with pytest.raises(ValueError, match="backbone: 'vgg16' is not one of"):
        model_config_from_preset("cpu-tiny", backbone="vgg16")
    with pytest.raises(ValueError, match="anchor_sizes"):
        model_config_from_preset("paper", fpn_levels=[3, 4, 5])
    with pytest.raises(ValueError, match="expected an integer"):
        model_config_from_preset("paper", fpn_channels="256")
    with pytest.raises(KeyError, match="known"):
        model_config_from_preset("nope")
