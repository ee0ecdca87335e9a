"""Writes ``tensorbundle/ckpt``: a small checkpoint written by TensorFlow itself, to test the
TensorBundle reader against, and ``tensorbundle-numeric/ckpt``, the same without the string
variable, which the tests' own writer must reproduce byte for byte. Run with the reference's venv (TensorFlow 2.15):

    ~/tfref/bin/python tests/modeling/golden/make_tensorbundle.py

The values follow :func:`expected_variables` in ``tests/modeling/tensorbundle_cases.py`` (a rule,
not stored numbers), which the test recomputes.
"""
import os
import sys

import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from tensorbundle_cases import expected_variables  # noqa: E402


def save(folder: str, variables: dict) -> None:
    prefix = os.path.join(HERE, folder, "ckpt")
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    names, tensors = [], []
    for name, (dtype, value) in sorted(variables.items()):
        names.append(name)
        if dtype == "bfloat16":
            tensors.append(tf.cast(tf.constant(value, tf.float32), tf.bfloat16))
        elif dtype == "string":
            tensors.append(tf.constant(value, tf.string))
        else:
            tensors.append(tf.constant(value, getattr(tf, dtype)))
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=tensors)
    print("wrote", prefix, len(names), "variables")


variables = expected_variables()
save("tensorbundle", variables)
save("tensorbundle-numeric", {k: v for k, v in variables.items() if v[0] != "string"})
