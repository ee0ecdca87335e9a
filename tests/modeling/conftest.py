import pytest
from modeling_samples import FAST

from fashionkit.modeling import model_config_from_preset


@pytest.fixture
def tiny_config():
    return model_config_from_preset("cpu-tiny", **FAST)
