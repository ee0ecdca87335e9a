"""A predictor that returns the synthetic world's ground truth for photos it was shown.

It knows photos by the SHA-256 of their bytes (the service stores uploads under names of its
own), and returns real :class:`~fashionkit.inference.Prediction` objects, so ingest and the
overlay drawing run exactly as with the model.
"""

from __future__ import annotations

import functools
import hashlib
import io
import threading
from pathlib import Path

from pycocotools import mask as mask_utils

from fashionkit.data.synth import render_image
from tests.synth_truth import truth_prediction


@functools.cache
def tiny_embedder():
    """An :class:`~fashionkit.personal.embedding.ItemEmbedder` of a tiny detector with seeded
    random weights (one per process: building it takes seconds). Real embeddings of what the
    fake predictor finds, for tests of recognition's plumbing."""
    import torch

    from fashionkit.modeling import build_model, model_config_from_preset
    from fashionkit.personal.embedding import ItemEmbedder

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return ItemEmbedder(build_model(model_config_from_preset("cpu-tiny")))


class TruthPredictor:
    def __init__(self):
        self.truth: dict[str, list[dict]] = {}
        self.calls = 0
        self.gate: threading.Event | None = None  # when set, calls wait for it
        self.fail: Exception | None = None

    def photo(self, index: int, size: int = 160) -> bytes:
        """PNG bytes of synthetic photo ``index``, remembered with its annotations."""
        synth = render_image(seed=5, index=index, size=size, max_figures=1)
        buffer = io.BytesIO()
        synth.image.save(buffer, format="PNG")
        data = buffer.getvalue()
        self.truth[hashlib.sha256(data).hexdigest()] = synth.annotations
        return data

    def outfit(self, *indices: int, size: int = 160) -> bytes:
        """PNG bytes of synthetic photos ``indices`` side by side (``size`` × ``size`` each),
        remembered with their annotations moved into place: a photo in which the garments of
        photo ``indices[0]`` are worn again next to others. Their pixels are those of the
        original photos, so a real embedder finds them again (recognition quality is the
        recognition tests' and benchmark's business, not this fake's)."""
        import numpy as np
        from PIL import Image

        from fashionkit.data.masks import decode_rle
        from tests.synth_truth import rle_of

        canvas = Image.new("RGB", (size * len(indices), size))
        annotations = []
        for slot, index in enumerate(indices):
            synth = render_image(seed=5, index=index, size=size, max_figures=1)
            canvas.paste(synth.image.convert("RGB"), (slot * size, 0))
            offset = 100_000 * slot
            for a in synth.annotations:
                mask = np.zeros((size, size * len(indices)), bool)
                mask[:, slot * size : (slot + 1) * size] = decode_rle(
                    rle_of(a["segmentation"], size, size)
                )
                moved = dict(a)
                moved["id"] = a["id"] + offset
                x, y, w, h = a["bbox"]
                moved["bbox"] = [x + slot * size, y, w, h]
                moved["segmentation"] = rle_of(
                    mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))),
                    size, size * len(indices),
                )  # fmt: skip
                part_of = a["synth"]["part_of"]
                moved["synth"] = {**a["synth"],
                                  "part_of": part_of + offset if part_of is not None else None}
                annotations.append(moved)
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        data = buffer.getvalue()
        self.truth[hashlib.sha256(data).hexdigest()] = annotations
        return data

    def garments(self, data: bytes) -> int:
        """How many items ingest makes of the photo's objects: those that are not parts, the
        two shoes (gloves, socks) of a pair that look alike one item. Counted by ingest's own
        rule (tests/wardrobe/test_appearances.py tests the rule against the ground truth)."""
        import tempfile

        from fashionkit.wardrobe.ingest import items_in_prediction

        class Images:  # an image store that keeps nothing
            def put_bytes(self, data: bytes, suffix: str) -> str:
                return hashlib.sha256(data).hexdigest()

        class Nowhere:
            images = Images()

        annotations = self.truth[hashlib.sha256(data).hexdigest()]
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "photo.png"
            path.write_bytes(data)
            return len(items_in_prediction(Nowhere(), truth_prediction(path, annotations), "x"))

    def __call__(self, paths, on_error="raise"):
        self.calls += 1
        if self.gate is not None and not self.gate.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        if self.fail is not None:
            raise self.fail
        return [
            truth_prediction(path, self.truth[hashlib.sha256(Path(path).read_bytes()).hexdigest()])
            for path in paths
        ]


class served:
    """``with served(app) as base:`` the application on 127.0.0.1 (a free port), in a thread
    of this process; ``base`` is its URL. Stops the server on leaving (waiting up to
    ``stop_s`` for a request or a job in flight)."""

    def __init__(self, app, stop_s: float = 30.0):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                                    log_level="warning"))
        self.stop_s = stop_s
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, \
                "the server did not start"
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        assert host == "127.0.0.1"
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=self.stop_s)
