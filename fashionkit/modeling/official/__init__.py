"""The official TensorFlow Attribute-Mask R-CNN (tensorflow/tpu, the published Fashionpedia
checkpoints) in PyTorch: ``OfficialAttributeMaskRCNN`` (``ModelConfig.architecture ==
"official"``, presets ``official-r50`` / ``official-r101``) and the conversion of its TF
checkpoints, :func:`convert_tf_checkpoint`.

Parts: :mod:`.backbone` (ResNet, TF 'SAME' padding), :mod:`.fpn` (P3–P7 with BatchNorm),
:mod:`.rpn` (head, anchors, box coding, proposals), :mod:`.heads` (RoIAlign, box/attribute/mask
heads, post-processing), :mod:`.targets` (anchor labels, RoI sampling, mask targets for
training), :mod:`.losses` (the official training losses), :mod:`.model` (the assembly),
:mod:`.convert` (checkpoints).
"""

from fashionkit.modeling.official.convert import (
    ConversionReport,
    convert_tf_checkpoint,
    official_state_dict,
    official_variable_names,
)
from fashionkit.modeling.official.model import OfficialAttributeMaskRCNN

__all__ = [
    "ConversionReport",
    "OfficialAttributeMaskRCNN",
    "convert_tf_checkpoint",
    "official_state_dict",
    "official_variable_names",
]
