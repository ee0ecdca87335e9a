"""Where the official TensorFlow code is, for the golden-data generators beside this file (run
as scripts with the reference venv's Python: this folder is their ``sys.path[0]``)."""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def find_reference(script: str) -> str:
    """The official code's folder: $FASHIONKIT_TF_REFERENCE, else ``shared/reference`` next to
    the checkout or one level further up (for a checkout inside another folder). Exits, naming
    ``script``, when it is in none of them."""
    if os.environ.get("FASHIONKIT_TF_REFERENCE"):
        return os.environ["FASHIONKIT_TF_REFERENCE"]
    for up in ("..", os.path.join("..", "..")):
        path = os.path.normpath(os.path.join(REPO, up, "shared", "reference", "tensorflow-tpu"))
        if os.path.isdir(path):
            return path
    sys.exit(f"{script}: the official code (shared/reference/tensorflow-tpu) is not found; set "
             "FASHIONKIT_TF_REFERENCE")
