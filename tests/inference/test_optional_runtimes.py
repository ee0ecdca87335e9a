"""The export runtimes (onnx, onnxruntime, openvino, nncf) are an optional extra: the package
and its torch backends work without them, and using an exported backend without them says
how to install them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fashionkit.cli import main
from fashionkit.errors import EXIT_INVALID_INPUT, FashionkitError
from fashionkit.inference import Predictor
from fashionkit.inference.export import (
    EXPORT_EXTRA,
    ExportedModel,
    ExportRuntimeMissingError,
    export_model,
    import_runtime,
)

RUNTIMES = ("onnx", "onnxruntime", "openvino", "nncf")


def test_importing_and_running_the_torch_backends_imports_no_runtime(untrained_checkpoint):
    code = (
        "import sys, numpy as np\n"
        "from fashionkit.inference import Predictor\n"
        f"p = Predictor({str(untrained_checkpoint)!r}, backend='eager', score_threshold=0.0)\n"
        "[r] = p(np.zeros((40, 50, 3), np.uint8))\n"
        "assert r.ok\n"
        f"print(sorted(m for m in {RUNTIMES!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_missing_runtime_says_how_to_install_it(monkeypatch, runtime):
    monkeypatch.setitem(sys.modules, runtime, None)  # what `import runtime` sees when absent
    with pytest.raises(ExportRuntimeMissingError) as info:
        import_runtime(runtime, "the test")
    assert isinstance(info.value, FashionkitError)
    assert str(info.value) == (f"the test needs {runtime}, which is not installed: install the "
                               f"export runtimes with {EXPORT_EXTRA}")
    assert EXPORT_EXTRA == "pip install 'fashionkit[export]'"


def test_export_without_openvino(monkeypatch, capsys, untrained_checkpoint, tmp_path):
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ExportRuntimeMissingError, match=r"needs openvino.*fashionkit\[export\]"):
        export_model(untrained_checkpoint, tmp_path / "m.xml", "openvino")
    assert not (tmp_path / "m.xml").exists()
    monkeypatch.setattr(sys, "argv", ["fashionkit", "export", "--weights",
                                      str(untrained_checkpoint), "--format", "openvino",
                                      "--out", str(tmp_path / "m.xml")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == EXIT_INVALID_INPUT
    assert "pip install 'fashionkit[export]'" in capsys.readouterr().err


def test_onnx_backends_without_onnx(monkeypatch, untrained_checkpoint, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ExportRuntimeMissingError, match="fashionkit export needs onnx"):
        Predictor(untrained_checkpoint, backend="onnxruntime")
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not read")
    with pytest.raises(ExportRuntimeMissingError, match="reading model.onnx needs onnx"):
        ExportedModel(fake, "onnxruntime")
