"""Exported models (ONNX, OpenVINO IR): ``fashionkit export``, the metadata they carry, and
the exported backends against eager fp32 on an untrained model whose masks are made decisive
(the slow parity test on a trained checkpoint is in test_backends.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

for _runtime in ("onnx", "onnxruntime", "openvino", "nncf"):  # the [export] extra
    pytest.importorskip(_runtime)

from fashionkit.cli import app  # noqa: E402
from fashionkit.errors import InvalidDataError  # noqa: E402
from fashionkit.inference import Predictor  # noqa: E402
from fashionkit.inference.export import ExportedModel, export_model, read_export_metadata  # noqa: E402
from fashionkit.inference.parity import compare_predictions  # noqa: E402
from fashionkit.inference.prediction import Prediction  # noqa: E402
from fashionkit.modeling import load_checkpoint, read_checkpoint, save_checkpoint  # noqa: E402

from .conftest import SIZE, synthetic_photo  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def decisive_checkpoint(untrained_checkpoint, tmp_path_factory):
    """The untrained 96-px checkpoint with a mask predictor whose logits are far from 0: an
    untrained model's mask probabilities sit at 0.5, where any rounding flips pixels, so mask
    IoU would say nothing about the exported graph."""
    model = load_checkpoint(untrained_checkpoint)
    torch.manual_seed(1)
    logits = model.roi_heads.mask_predictor.mask_fcn_logits
    logits.weight.data.normal_(0.0, 0.3)
    logits.bias.data.normal_(1.0, 1.0)
    recipe = read_checkpoint(untrained_checkpoint)["recipe"]
    path = tmp_path_factory.mktemp("decisive") / "model.pt"
    save_checkpoint(model, path, extra={"recipe": recipe})
    return path


@pytest.fixture(scope="module")
def exported(decisive_checkpoint, tmp_path_factory):
    """The checkpoint exported with the CLI, as ONNX and as an OpenVINO IR."""
    folder = tmp_path_factory.mktemp("exported")
    paths = {"onnx": folder / "model.onnx", "openvino": folder / "model.xml"}
    for fmt, path in paths.items():
        result = CliRunner().invoke(app, ["export", "--weights", str(decisive_checkpoint),
                                          "--format", fmt, "--out", str(path)])
        assert result.exit_code == 0, result.output
        assert path.is_file() and "wrote" in result.output
    assert paths["openvino"].with_suffix(".bin").is_file()
    return paths


# Photos of other sizes and aspect ratios than the 96² example the graph was traced on.
PHOTOS = [synthetic_photo(120, 90, seed=1), synthetic_photo(64, 150, seed=2),
          synthetic_photo(96, 96, seed=3)]


@pytest.fixture(scope="module")
def eager(decisive_checkpoint):
    return Predictor(decisive_checkpoint, score_threshold=0.0, batch_size=1)(PHOTOS)


@pytest.mark.parametrize("fmt, backend", [("onnx", "onnxruntime"), ("onnx", "openvino"),
                                          ("openvino", "openvino")])
def test_exported_fp32_backends_equal_eager(exported, eager, fmt, backend):
    predictor = Predictor(exported[fmt], backend=backend, score_threshold=0.0, batch_size=1)
    assert isinstance(predictor.model, ExportedModel)
    assert repr(predictor.transform) == f"Compose([ResizeLongestAndPad(size={SIZE})])"
    got = predictor(PHOTOS)
    for g, e in zip(got, eager, strict=True):
        assert g.image_size == e.image_size and len(g.items) == len(e.items) == 20
        for a, b in zip(g.items, e.items, strict=True):
            assert a.category_id == b.category_id and a.name == b.name
            assert a.score == pytest.approx(b.score, abs=1e-5)
            np.testing.assert_allclose(a.box, b.box, atol=1e-2)
            assert [x.id for x in a.attributes] == [x.id for x in b.attributes]
            assert a.parent == b.parent
            assert (a.mask_array() != b.mask_array()).mean() < 1e-3
    report = compare_predictions(eager, got)
    assert report.matched_share == 1.0 and report.mask_iou.min() >= 0.99, report.summary()


def test_openvino_bf16_within_the_parity_bounds(exported, eager):
    if "BF16" not in __import__("openvino").Core().get_property(
            "CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU has no bfloat16 (the project's machines do)")
    got = Predictor(exported["openvino"], backend="openvino-bf16", score_threshold=0.0)(PHOTOS)
    # An untrained model's scores are near-tied (≈ 1/47 each), so which detections make the
    # top 20 is a toss-up near the cut: eager's best 15 per photo must all be found.
    best = [Prediction(p.name, p.image_size, p.items[:15]) for p in eager]
    report = compare_predictions(best, got)
    assert report.matched_share >= 0.95 and report.score_diff.max() <= 0.02, report.summary()
    assert report.mask_iou.mean() >= 0.9, report.summary()


def test_a_checkpoint_with_an_exported_backend_is_exported_on_the_fly(decisive_checkpoint,
                                                                      eager):
    predictor = Predictor(decisive_checkpoint, backend="onnxruntime", score_threshold=0.0)
    assert predictor.model.path.suffix == ".onnx" and predictor.model.path.is_file()
    got = predictor(PHOTOS)
    assert [len(p.items) for p in got] == [20, 20, 20]
    assert compare_predictions(eager, got).mask_iou.min() >= 0.99


def test_export_records_config_ontology_and_recipe(exported, decisive_checkpoint):
    checkpoint = read_checkpoint(decisive_checkpoint)
    for path in exported.values():
        metadata = read_export_metadata(path)
        assert metadata["config"] == checkpoint["config"]
        assert metadata["ontology_version"] == checkpoint["ontology_version"]
        assert metadata["recipe"] == checkpoint["recipe"]
        assert metadata["outputs"] == ["boxes", "labels", "scores", "mask_probs",
                                       "attribute_scores"]


def test_graph_outputs_carry_attribute_scores_and_masks(exported):
    import onnxruntime as ort

    session = ort.InferenceSession(str(exported["onnx"]))
    image = torch.rand(3, SIZE, SIZE).numpy()
    boxes, labels, scores, masks, attributes, box_rois, mask_rois = session.run(
        None, {"image": image})
    assert boxes.shape == (20, 4) and labels.dtype == np.int64 and scores.shape == (20,)
    assert masks.shape == (20, 1, 28, 28) and attributes.shape == (20, 294)
    assert 0.0 <= attributes.min() and attributes.max() <= 1.0
    # The pooled boxes with their FPN levels: the mask head pooled the detections' boxes.
    assert box_rois.shape[1] == 5 and len(box_rois) >= 20
    np.testing.assert_array_equal(mask_rois[:, :4], boxes)
    assert set(np.unique(box_rois[:, 4])) <= {0.0, 1.0, 2.0, 3.0}


def test_no_detections_gives_no_items(untrained_checkpoint, tmp_path):
    """A graph traced while detections existed must still run when an image has none."""
    model = load_checkpoint(untrained_checkpoint)
    model.roi_heads.score_thresh = 1.0  # nothing scores above 1
    path = export_model(model, tmp_path / "none.onnx",
                        recipe=read_checkpoint(untrained_checkpoint)["recipe"])
    for backend in ("onnxruntime", "openvino"):
        [prediction] = Predictor(path, backend=backend, score_threshold=0.0)(PHOTOS[0])
        assert prediction.ok and prediction.items == []


def test_models_that_resize_themselves_resize_before_the_graph(untrained_checkpoint,
                                                                tmp_path):
    """``config.resize``: the model's own resize runs in torch before the graph, so the
    exported model sees the same input and maps boxes back by the same factors."""
    from fashionkit.modeling import build_model

    config = load_checkpoint(untrained_checkpoint).config.replace(resize=True, min_size=80,
                                                                  max_size=120)
    torch.manual_seed(0)
    model = build_model(config).eval()
    recipe = {"data": {"transform": "keep-ratio", "min_size": 100, "max_size": 160}}
    photos = [synthetic_photo(130, 70, seed=4), synthetic_photo(60, 90, seed=5)]
    want = Predictor(model, recipe=recipe, score_threshold=0.0, batch_size=1)(photos)
    path = export_model(model, tmp_path / "resizing.onnx", recipe=recipe)
    got = Predictor(path, score_threshold=0.0)(photos)
    for g, w in zip(got, want, strict=True):
        assert [i.category_id for i in g.items] == [i.category_id for i in w.items]
        np.testing.assert_allclose([i.box for i in g.items], [i.box for i in w.items], atol=1e-2)


def test_errors_name_the_file(exported, decisive_checkpoint, tmp_path):
    import onnx

    proto = onnx.load(str(exported["onnx"]))
    metadata = json.loads(proto.metadata_props[0].value)
    metadata["ontology_version"] = "someone-else's"
    proto.metadata_props[0].value = json.dumps(metadata)
    other = tmp_path / "other.onnx"
    onnx.save(proto, str(other))
    with pytest.raises(InvalidDataError, match=r"other\.onnx.*ontology"):
        Predictor(other)
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(InvalidDataError, match="no fashionkit metadata"):
        read_export_metadata(tmp_path / "bare.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(InvalidDataError, match=r"junk\.onnx: file: not a readable"):
        read_export_metadata(tmp_path / "junk.onnx")
    with pytest.raises(ValueError, match="exported model: run it with backend"):
        Predictor(exported["onnx"], backend="bf16")
    with pytest.raises(ValueError, match="runs .onnx files"):
        Predictor(exported["openvino"], backend="onnxruntime")
    with pytest.raises(ValueError, match="runs on the CPU"):
        Predictor(exported["onnx"], device="cuda")
    with pytest.raises(ValueError, match="writes a .xml file"):
        export_model(decisive_checkpoint, tmp_path / "x.onnx", "openvino")
    result = CliRunner().invoke(app, ["export", "--weights", str(decisive_checkpoint),
                                      "--format", "tflite", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "onnx, openvino" in result.output


def test_int8_export_quantises_the_ir_and_runs(decisive_checkpoint, eager, tmp_path):
    import openvino as ov
    from PIL import Image

    photos = tmp_path / "calibration"
    photos.mkdir()
    for k in range(3):
        Image.fromarray(synthetic_photo(110, 90, seed=10 + k)).save(photos / f"{k}.png")
    out = tmp_path / "int8.xml"
    result = CliRunner().invoke(app, ["export", "--weights", str(decisive_checkpoint),
                                      "--format", "openvino", "--out", str(out),
                                      "--int8", str(photos)])
    assert result.exit_code == 0, result.output
    ops = [n.get_type_name() for n in ov.Core().read_model(out).get_ops()]
    assert ops.count("FakeQuantize") >= ops.count("Convolution") > 0
    assert read_export_metadata(out)["quantization"]["calibration_images"] == 3
    got = Predictor(out, score_threshold=0.0)(PHOTOS)
    # An untrained model's scores are near-tied (≈ 1/47), so INT8 reorders them freely: the
    # plumbing is checked here, the accuracy on the trained checkpoint in test_backends.py.
    assert [len(p.items) for p in got] == [len(p.items) for p in eager] == [20, 20, 20]
    for p in got:
        h, w = p.image_size
        assert all(0 <= i.box[0] <= i.box[2] <= w and 0 <= i.box[1] <= i.box[3] <= h
                   for i in p.items)
        assert all(i.mask["size"] == [h, w] for i in p.items)


def test_int8_export_errors_name_the_problem(decisive_checkpoint, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a photo")
    with pytest.raises(InvalidDataError, match=r"junk\.png"):
        export_model(decisive_checkpoint, tmp_path / "m.xml", "openvino",
                     int8_calibration=[junk])
    with pytest.raises(ValueError, match="OpenVINO IR"):
        export_model(decisive_checkpoint, tmp_path / "m.onnx", int8_calibration=[junk])
    result = CliRunner().invoke(app, ["export", "--weights", str(decisive_checkpoint),
                                      "--format", "onnx", "--out", str(tmp_path / "m.onnx"),
                                      "--int8", str(junk)])
    assert result.exit_code == 2 and "--format openvino" in result.output
    result = CliRunner().invoke(app, ["export", "--weights", str(decisive_checkpoint),
                                      "--format", "openvino", "--out", str(tmp_path / "m.xml"),
                                      "--int8", str(tmp_path / "none-*.jpg")])
    assert isinstance(result.exception, InvalidDataError)  # `fashionkit` prints its problems
    assert "matches no file" in str(result.exception)
