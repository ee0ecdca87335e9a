"""The TensorBundle reader against a checkpoint TensorFlow wrote (``golden/tensorbundle``)."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fashionkit.errors import InvalidDataError
from fashionkit.modeling.tensorbundle import TensorBundle, masked_crc32c
from tests.modeling.tensorbundle_cases import expected_variables

GOLDEN = Path(__file__).parent / "golden" / "tensorbundle" / "ckpt"
TFREF = Path.home() / "tfref" / "bin" / "python"


def _copy(tmp_path: Path) -> Path:
    for f in GOLDEN.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / "ckpt"


def test_reads_every_variable_tensorflow_wrote():
    bundle = TensorBundle(GOLDEN)
    expected = expected_variables()
    assert bundle.names() == sorted(expected)  # several index blocks, all entries
    for name, (dtype, values) in expected.items():
        entry = bundle.entry(name)
        assert entry.dtype == dtype, name
        if dtype == "string":
            with pytest.raises(InvalidDataError, match="string tensor"):
                bundle.read(name)
            continue
        got = bundle.read(name)
        want = np.asarray(values)
        assert got.shape == want.shape == entry.shape, name
        assert got.dtype == (np.float32 if dtype == "bfloat16" else want.dtype), name
        np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=name)


def test_masked_crc32c_matches_leveldb_reference_values():
    # LevelDB's crc32c_test: CRC32C of 32 zero bytes is 0x8a9136aa; Mask(c) = rot15(c) + const
    crc = 0x8A9136AA
    masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    assert masked_crc32c(bytes(32)) == masked


def test_missing_prefix_names_the_index(tmp_path):
    with pytest.raises(InvalidDataError, match=r"ckpt\.index.*no TensorFlow checkpoint index"):
        TensorBundle(tmp_path / "ckpt")
    prefix = _copy(tmp_path)
    with pytest.raises(InvalidDataError, match="pass the checkpoint prefix"):
        TensorBundle(f"{prefix}.index")


def test_truncated_index_is_refused(tmp_path):
    prefix = _copy(tmp_path)
    index = Path(f"{prefix}.index")
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(InvalidDataError, match="magic number"):
        TensorBundle(prefix)


def test_corrupted_index_block_is_refused(tmp_path):
    prefix = _copy(tmp_path)
    index = Path(f"{prefix}.index")
    data = bytearray(index.read_bytes())
    data[100] ^= 0xFF  # inside the first data block
    index.write_bytes(bytes(data))
    with pytest.raises(InvalidDataError, match="checksum"):
        TensorBundle(prefix)


def test_truncated_data_names_each_variable_past_the_end(tmp_path):
    prefix = _copy(tmp_path)
    shard = Path(f"{prefix}.data-00000-of-00001")
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[: size // 2])
    bundle_entries = TensorBundle(GOLDEN)
    past = [n for n in bundle_entries.names()
            if bundle_entries.entry(n).offset + bundle_entries.entry(n).size > size // 2]
    with pytest.raises(InvalidDataError) as err:
        TensorBundle(prefix)
    assert len(err.value.problems) == len(past) > 0
    assert all("truncated" in p.message and "data-00000-of-00001" in p.source
               for p in err.value.problems)


def test_missing_data_file(tmp_path):
    prefix = _copy(tmp_path)
    Path(f"{prefix}.data-00000-of-00001").unlink()
    with pytest.raises(InvalidDataError, match="data file is missing"):
        TensorBundle(prefix)


def test_corrupted_tensor_fails_its_checksum_and_names_it(tmp_path):
    prefix = _copy(tmp_path)
    entry = TensorBundle(GOLDEN).entry("scalar")
    shard = Path(f"{prefix}.data-00000-of-00001")
    data = bytearray(shard.read_bytes())
    data[entry.offset] ^= 0x01
    shard.write_bytes(bytes(data))
    bundle = TensorBundle(prefix)
    with pytest.raises(InvalidDataError, match="'scalar'.*checksum"):
        bundle.read("scalar")
    np.testing.assert_array_equal(bundle.read("global_step"), np.int64(270000))


def test_unknown_variable_is_named():
    with pytest.raises(InvalidDataError, match="'nope'.*not in the checkpoint"):
        TensorBundle(GOLDEN).entry("nope")


@pytest.mark.slow
@pytest.mark.skipif(not TFREF.exists(), reason="needs the reference venv ~/tfref (TensorFlow)")
def test_golden_checkpoint_is_what_tensorflow_writes(tmp_path):
    """Regenerates the golden checkpoint with TensorFlow and compares the files byte for byte."""
    script = Path(__file__).parent / "golden" / "make_tensorbundle.py"
    work = tmp_path / "golden"
    shutil.copytree(script.parent, work)
    shutil.copy(Path(__file__).parent / "tensorbundle_cases.py", tmp_path / "tensorbundle_cases.py")
    subprocess.run([str(TFREF), str(work / script.name)], check=True, capture_output=True)
    for folder in ("tensorbundle", "tensorbundle-numeric"):
        for f in (GOLDEN.parent.parent / folder).iterdir():
            assert (work / folder / f.name).read_bytes() == f.read_bytes(), f.name


def test_test_writer_writes_what_tensorflow_writes(tmp_path):
    from tests.modeling.tensorbundle_writer import write_bundle

    numeric = {k: (d, np.asarray(v)) for k, (d, v) in expected_variables().items()
               if d != "string"}
    write_bundle(tmp_path / "ckpt", numeric)
    golden = GOLDEN.parent.parent / "tensorbundle-numeric"
    for suffix in (".index", ".data-00000-of-00001"):
        assert (tmp_path / f"ckpt{suffix}").read_bytes() == (golden / f"ckpt{suffix}").read_bytes()


def test_index_over_several_blocks(tmp_path):
    """Thousands of long names fill several 256 KiB index blocks (separator keys, restarts)."""
    from tests.modeling.tensorbundle_writer import write_bundle

    variables = {f"{'x' * 200}/layer_{i:05d}/kernel": ("float32", np.full((2,), i, np.float32))
                 for i in range(3000)}
    write_bundle(tmp_path / "ckpt", variables)
    bundle = TensorBundle(tmp_path / "ckpt")
    assert bundle.names() == sorted(variables)
    for name in (bundle.names()[0], bundle.names()[1234], bundle.names()[-1]):
        np.testing.assert_array_equal(bundle.read(name), variables[name][1])
