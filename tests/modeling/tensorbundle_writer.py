"""A TensorBundle writer for tests: checkpoints in TensorFlow's format without TensorFlow.

It writes what TensorFlow's ``SaveV2`` writes for the same variables, byte for byte (one shard,
an uncompressed sorted table with 256 KiB blocks and a restart point every 16 keys, header
``num_shards=1, version.producer=1``); ``test_tensorbundle.py`` checks that against a file
TensorFlow wrote. Tests use it to make full-size official checkpoints from a seed rule instead
of committing hundreds of megabytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from fashionkit.modeling.tensorbundle import TABLE_MAGIC, masked_crc32c

_BLOCK_SIZE = 262144
_RESTART_INTERVAL = 16
_DTYPE_CODES = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6,
                "int64": 9, "bool": 10, "bfloat16": 14, "float16": 19}


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value) if value else b""


def _field_bytes(field: int, value: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(value)) + value


def _entry_proto(dtype: str, shape: tuple[int, ...], offset: int, size: int, crc: int) -> bytes:
    dims = b"".join(_field_bytes(2, _field_varint(1, d)) for d in shape)
    return (_field_varint(1, _DTYPE_CODES[dtype]) + _field_bytes(2, dims)
            + _field_varint(4, offset) + _field_varint(5, size)
            + _varint(6 << 3 | 5) + struct.pack("<I", crc))


class _Block:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.restarts = [0]
        self.count = 0
        self.last = b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count < _RESTART_INTERVAL:
            while shared < min(len(key), len(self.last)) and key[shared] == self.last[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.count = 0
        self.buf += _varint(shared) + _varint(len(key) - shared) + _varint(len(value))
        self.buf += key[shared:] + value
        self.last = key
        self.count += 1

    def size_estimate(self) -> int:
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        return bytes(self.buf) + b"".join(struct.pack("<I", r) for r in self.restarts) + \
            struct.pack("<I", len(self.restarts))


def _short_successor(key: bytes) -> bytes:
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key


def _shortest_separator(start: bytes, limit: bytes) -> bytes:
    n = 0
    while n < min(len(start), len(limit)) and start[n] == limit[n]:
        n += 1
    if n < min(len(start), len(limit)):
        byte = start[n]
        if byte < 0xFF and byte + 1 < limit[n]:
            return start[:n] + bytes([byte + 1])
    return start


def write_bundle(prefix: str | Path, variables: dict[str, tuple[str, np.ndarray]]) -> None:
    """Writes ``prefix.index`` and ``prefix.data-00000-of-00001`` holding ``variables``
    (name → (dtype name, values)), in name order as TensorFlow sorts them."""
    prefix = str(prefix)
    data = bytearray()
    entries: list[tuple[bytes, bytes]] = [(b"", _field_varint(1, 1) + _field_bytes(3, _field_varint(1, 1)))]
    for name in sorted(variables):
        dtype, values = variables[name]
        array = np.asarray(values)
        if dtype == "bfloat16":
            raw = (np.ascontiguousarray(array, dtype="<f4").view("<u4") >> 16).astype("<u2").tobytes()
        else:
            raw = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
        entries.append((name.encode(), _entry_proto(dtype, array.shape, len(data), len(raw),
                                                   masked_crc32c(raw))))
        data += raw
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))

    out = bytearray()
    index = _Block()

    def write_block(contents: bytes) -> bytes:
        handle = _varint(len(out)) + _varint(len(contents))
        out.extend(contents + b"\x00")
        out.extend(struct.pack("<I", masked_crc32c(contents + b"\x00")))
        return handle

    block = _Block()
    pending: bytes | None = None
    block_last = b""
    for key, value in entries:
        if pending is not None:
            index.add(_shortest_separator(block_last, key), pending)
            pending = None
        block.add(key, value)
        if block.size_estimate() >= _BLOCK_SIZE:
            block_last = block.last
            pending = write_block(block.finish())
            block = _Block()
    if block.count or pending is None:
        block_last = block.last
        pending = write_block(block.finish())
    index.add(_short_successor(block_last), pending)
    meta = write_block(_Block().finish())
    index_handle = write_block(index.finish())
    footer = meta + index_handle
    out += footer + bytes(40 - len(footer)) + struct.pack("<Q", TABLE_MAGIC)
    Path(f"{prefix}.index").write_bytes(bytes(out))
