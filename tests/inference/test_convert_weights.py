"""``fashionkit convert-weights --from tf-fashionpedia PREFIX --out MODEL.pt``: its arguments,
errors (exit code 2, a message, no traceback, nothing written) and, on a checkpoint rebuilt
from the golden manifest without TensorFlow, conversion then detection end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fashionkit.cli import main
from fashionkit.cli.weights import checkpoint_prefix
from fashionkit.errors import EXIT_INVALID_INPUT, InvalidDataError


def _main(monkeypatch, capsys, *args) -> tuple[int, str]:
    """The real entry point (exit codes and messages are ``main()``'s): (exit code, output)."""
    monkeypatch.setattr(sys, "argv", ["fashionkit", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    code = info.value.code
    return (0 if code is None else int(code)), captured.out + captured.err


def _fake_checkpoint(folder: Path, name: str = "model.ckpt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.index").write_bytes(b"")
    (folder / f"{name}.data-00000-of-00001").write_bytes(b"")
    return folder / name


def test_the_prefix_is_found_from_its_files_or_its_folder(tmp_path):
    prefix = _fake_checkpoint(tmp_path / "release")
    assert checkpoint_prefix(prefix) == prefix
    assert checkpoint_prefix(prefix.with_name("model.ckpt.index")) == prefix
    assert checkpoint_prefix(prefix.with_name("model.ckpt.data-00000-of-00001")) == prefix
    assert checkpoint_prefix(tmp_path / "release") == prefix
    _fake_checkpoint(tmp_path / "release", "model.ckpt-2000")
    with pytest.raises(InvalidDataError, match="model.ckpt-2000.index, model.ckpt.index"):
        checkpoint_prefix(tmp_path / "release")
    with pytest.raises(InvalidDataError, match=r"nope.index not found"):
        checkpoint_prefix(tmp_path / "nope")


@pytest.mark.parametrize("case", ["missing prefix", "unsupported --from", "bad --image-size",
                                  "empty folder"])
def test_invalid_input_exits_2_with_a_message_and_writes_nothing(monkeypatch, capsys, tmp_path,
                                                                 case):
    prefix = _fake_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "model.pt"
    args = {"missing prefix": ["--from", "tf-fashionpedia", tmp_path / "absent" / "model.ckpt"],
            "unsupported --from": ["--from", "tf-detectron", prefix],
            "bad --image-size": ["--from", "tf-fashionpedia", prefix, "--image-size", "0"],
            "empty folder": ["--from", "tf-fashionpedia", tmp_path]}[case]
    (tmp_path / "ckpt2").mkdir()
    code, output = _main(monkeypatch, capsys, "convert-weights", *args, "--out", out)
    assert code == EXIT_INVALID_INPUT, output
    assert "Traceback" not in output
    expected = {"missing prefix": "model.ckpt.index not found",
                "unsupported --from": "'tf-detectron' is not one of tf-fashionpedia",
                "bad --image-size": "--image-size",
                "empty folder": "no *.index file"}[case]
    assert expected in " ".join(output.split()), output
    assert not out.exists()
