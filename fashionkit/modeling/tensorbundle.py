"""TensorFlow checkpoints read without TensorFlow: the TensorBundle format.

A checkpoint ``PREFIX`` is ``PREFIX.index`` and ``PREFIX.data-SSSSS-of-NNNNN`` shards. The index is
a LevelDB-style sorted table (blocks of prefix-compressed keys, a block index, a 48-byte footer
ending in a magic number); under the empty key it holds a ``BundleHeaderProto`` (shard count,
endianness), under every other key, a variable name, a ``BundleEntryProto`` (dtype, shape, shard,
byte offset and size in that shard, CRC32C of the bytes). A tensor's bytes are its values in
row-major order.

Reading TensorFlow's own files needs no TensorFlow: the table and the two protocol buffer
messages are parsed here (a few fields each), and every block and tensor is checked against its
CRC32C, so a truncated or corrupted download is an error that names the file and the variable
rather than weights that are silently wrong. The format's definition is TensorFlow's
``tensorflow/core/util/tensor_bundle/tensor_bundle.proto`` and ``core/lib/io/table_format.txt``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numpy as np

from fashionkit.errors import InvalidDataError, Problem

__all__ = ["TensorBundle", "TensorEntry", "masked_crc32c", "TABLE_MAGIC"]

#: The sorted-table footer's magic number (little-endian fixed64).
TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # compression type byte + masked CRC32C

# TensorFlow's DataType enum (types.proto) → numpy. bfloat16 has no numpy dtype: its 16 bits are
# the high half of a float32 and are widened on reading.
_DTYPES: dict[int, tuple[str, np.dtype]] = {
    1: ("float32", np.dtype("<f4")),
    2: ("float64", np.dtype("<f8")),
    3: ("int32", np.dtype("<i4")),
    4: ("uint8", np.dtype("u1")),
    5: ("int16", np.dtype("<i2")),
    6: ("int8", np.dtype("i1")),
    9: ("int64", np.dtype("<i8")),
    10: ("bool", np.dtype("?")),
    14: ("bfloat16", np.dtype("<u2")),
    17: ("uint16", np.dtype("<u2")),
    19: ("float16", np.dtype("<f2")),
    22: ("uint32", np.dtype("<u4")),
    23: ("uint64", np.dtype("<u8")),
}
_DT_STRING = 7


def masked_crc32c(data: bytes | memoryview) -> int:
    """CRC32C as TensorFlow and LevelDB store it: rotated and offset, so that the CRC of data
    holding CRCs stays well distributed."""
    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@dataclass(frozen=True)
class TensorEntry:
    """Where one variable's values are: ``dtype`` a name such as ``"float32"`` (``"string"`` for
    string tensors), ``shape`` its dimensions, ``shard``/``offset``/``size`` the bytes in the
    shard file, ``crc32c`` their masked CRC32C."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int


class _Malformed(Exception):
    """A structural error inside the index file; turned into an InvalidDataError naming it."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Malformed("a number runs past the end of its record")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Malformed("a number is longer than 10 bytes")


def _proto_fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """``(field number, wire type, value)`` of a protocol buffer message: varints and fixed
    numbers as int, length-delimited fields as a view of their bytes."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        value: int | memoryview
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise _Malformed("a fixed64 field runs past the end of its record")
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise _Malformed("a length-delimited field runs past the end of its record")
            value = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            if pos + 4 > len(buf):
                raise _Malformed("a fixed32 field runs past the end of its record")
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise _Malformed(f"unknown protocol buffer wire type {wire}")
        yield field, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _parse_shape(buf: memoryview) -> tuple[int, ...]:
    dims: list[int] = []
    for field, _, value in _proto_fields(buf):
        if field == 2 and isinstance(value, memoryview):  # repeated Dim
            size = 0
            for f, _, v in _proto_fields(value):
                if f == 1 and isinstance(v, int):
                    size = _signed64(v)
            dims.append(size)
        elif field == 3 and value:
            raise _Malformed("the shape has unknown rank")
    if any(d < 0 for d in dims):
        raise _Malformed(f"the shape {dims} has an unknown dimension")
    return tuple(dims)


def _parse_entry(name: str, buf: memoryview) -> TensorEntry:
    dtype_code = shard = offset = size = crc = 0
    shape: tuple[int, ...] = ()
    for field, _, value in _proto_fields(buf):
        if field == 1 and isinstance(value, int):
            dtype_code = value
        elif field == 2 and isinstance(value, memoryview):
            shape = _parse_shape(value)
        elif field == 3 and isinstance(value, int):
            shard = value
        elif field == 4 and isinstance(value, int):
            offset = _signed64(value)
        elif field == 5 and isinstance(value, int):
            size = _signed64(value)
        elif field == 6 and isinstance(value, int):
            crc = value
        elif field == 7:
            raise _Malformed("it is a partitioned variable (slices), which is not supported")
    if dtype_code == _DT_STRING:
        dtype = "string"
    elif dtype_code in _DTYPES:
        dtype = _DTYPES[dtype_code][0]
    else:
        raise _Malformed(f"TensorFlow dtype {dtype_code} is not supported")
    if offset < 0 or size < 0:
        raise _Malformed(f"negative offset {offset} or size {size}")
    return TensorEntry(name, dtype, shape, shard, offset, size, crc)


class TensorBundle:
    """The variables of a TensorFlow checkpoint ``prefix`` (``model.ckpt`` for the files
    ``model.ckpt.index`` and ``model.ckpt.data-00000-of-00001``).

    Opening reads and checks the whole index (every block's CRC, every entry) and that each shard
    holds the bytes its entries point at; :meth:`read` reads one variable and checks its CRC.
    Every error is an :class:`~fashionkit.errors.InvalidDataError` naming the file and, where
    there is one, the variable.
    """

    def __init__(self, prefix: str | os.PathLike):
        self.prefix = Path(prefix)
        self.index_path = Path(f"{self.prefix}.index")
        if not self.index_path.is_file():
            hint = ""
            if self.prefix.suffix in (".index",) or ".data-" in self.prefix.name:
                hint = " (pass the checkpoint prefix, without .index or .data-…)"
            raise InvalidDataError.in_file(
                self.index_path, f"no TensorFlow checkpoint index here{hint}")
        data = self.index_path.read_bytes()
        try:
            header, self._entries = self._read_index(memoryview(data))
        except _Malformed as err:
            raise InvalidDataError.in_file(
                self.index_path, f"not a readable TensorFlow checkpoint index: {err}") from None
        self.num_shards, big_endian = header
        if big_endian:
            raise InvalidDataError.in_file(
                self.index_path, "the checkpoint was written big-endian, which is not supported")
        self._check_shards()

    # --- the sorted table -------------------------------------------------------------------

    @staticmethod
    def _block(data: memoryview, offset: int, size: int) -> memoryview:
        end = offset + size + _BLOCK_TRAILER_SIZE
        if offset < 0 or size < 0 or end > len(data) - _FOOTER_SIZE + _BLOCK_TRAILER_SIZE:
            raise _Malformed(f"a block at byte {offset} runs past the end of the file "
                             "(truncated?)")
        contents = data[offset:offset + size + 1]  # with the compression type byte
        compression = contents[-1]
        (stored_crc,) = struct.unpack_from("<I", data, offset + size + 1)
        if masked_crc32c(contents) != stored_crc:
            raise _Malformed(f"the block at byte {offset} fails its checksum (corrupted?)")
        if compression != 0:
            raise _Malformed(f"the block at byte {offset} is compressed (type {compression}); "
                             "TensorFlow writes checkpoint indexes uncompressed")
        return contents[:-1]

    @staticmethod
    def _block_entries(block: memoryview) -> Iterator[tuple[bytes, memoryview]]:
        if len(block) < 4:
            raise _Malformed("a block is shorter than its restart count")
        (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
        limit = len(block) - 4 - 4 * num_restarts
        if limit < 0:
            raise _Malformed("a block's restart array is larger than the block")
        pos, key = 0, b""
        while pos < limit:
            shared, pos = _varint(block, pos)
            unshared, pos = _varint(block, pos)
            value_len, pos = _varint(block, pos)
            if shared > len(key) or pos + unshared + value_len > limit:
                raise _Malformed("a key or value runs past the end of its block")
            key = key[:shared] + bytes(block[pos:pos + unshared])
            pos += unshared
            yield key, block[pos:pos + value_len]
            pos += value_len

    def _read_index(self, data: memoryview) -> tuple[tuple[int, bool], dict[str, TensorEntry]]:
        if len(data) < _FOOTER_SIZE:
            raise _Malformed(f"{len(data)} bytes is shorter than the table footer")
        (magic,) = struct.unpack_from("<Q", data, len(data) - 8)
        if magic != TABLE_MAGIC:
            raise _Malformed("the file does not end in the table's magic number "
                             "(not an .index file, or truncated)")
        footer = data[len(data) - _FOOTER_SIZE:]
        _, pos = _varint(footer, 0)  # metaindex handle: unused by TensorBundle
        _, pos = _varint(footer, pos)
        index_offset, pos = _varint(footer, pos)
        index_size, pos = _varint(footer, pos)
        header: tuple[int, bool] | None = None
        entries: dict[str, TensorEntry] = {}
        for _, handle in self._block_entries(self._block(data, index_offset, index_size)):
            offset, p = _varint(handle, 0)
            size, _ = _varint(handle, p)
            for key, value in self._block_entries(self._block(data, offset, size)):
                if key == b"":
                    shards, big_endian = 1, False
                    for field, _, v in _proto_fields(value):
                        if field == 1 and isinstance(v, int):
                            shards = v
                        elif field == 2 and isinstance(v, int):
                            big_endian = v == 1
                    header = (shards, big_endian)
                    continue
                try:
                    name = key.decode("utf-8")
                except UnicodeDecodeError:
                    raise _Malformed(f"variable name {key!r} is not UTF-8") from None
                try:
                    entries[name] = _parse_entry(name, value)
                except _Malformed as err:
                    raise _Malformed(f"variable {name!r}: {err}") from None
        if header is None:
            raise _Malformed("it has no bundle header (the entry under the empty key)")
        if header[0] < 1:
            raise _Malformed(f"the header names {header[0]} data shards")
        return header, entries

    # --- shards and tensors ----------------------------------------------------------------

    def shard_path(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def _check_shards(self) -> None:
        sizes: dict[int, int] = {}
        problems: list[Problem] = []
        for entry in self._entries.values():
            if entry.shard >= self.num_shards:
                problems.append(Problem(str(self.index_path), f"variable {entry.name!r}",
                                        f"in shard {entry.shard} of {self.num_shards}"))
                continue
            path = self.shard_path(entry.shard)
            if entry.shard not in sizes:
                sizes[entry.shard] = path.stat().st_size if path.is_file() else -1
            have = sizes[entry.shard]
            if have < 0:
                problems.append(Problem(str(path), f"variable {entry.name!r}",
                                        "the data file is missing"))
            elif entry.offset + entry.size > have:
                problems.append(Problem(
                    str(path), f"variable {entry.name!r}",
                    f"needs bytes {entry.offset}..{entry.offset + entry.size} but the file has "
                    f"{have} (truncated?)"))
        if problems:
            raise InvalidDataError(problems)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """Variable names, sorted (the index's order)."""
        return list(self._entries)

    def entry(self, name: str) -> TensorEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise InvalidDataError([Problem(str(self.index_path), f"variable {name!r}",
                                            "not in the checkpoint")]) from None

    def read(self, name: str) -> np.ndarray:
        """The variable's values (bfloat16 widened to float32), checked against its CRC32C."""
        entry = self.entry(name)
        path = self.shard_path(entry.shard)

        def fail(message: str) -> InvalidDataError:
            return InvalidDataError([Problem(str(path), f"variable {name!r}", message)])

        if entry.dtype == "string":
            raise fail("is a string tensor; only numeric variables are read")
        dtype = _DTYPES_BY_NAME[entry.dtype]
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise fail(f"{entry.size} bytes do not hold a {entry.dtype} tensor of shape "
                       f"{list(entry.shape)}")
        with open(path, "rb") as f:
            f.seek(entry.offset)
            raw = f.read(entry.size)
        if len(raw) != entry.size:
            raise fail(f"only {len(raw)} of {entry.size} bytes could be read (truncated?)")
        if masked_crc32c(raw) != entry.crc32c:
            raise fail("its bytes fail their checksum (corrupted?)")
        values = np.frombuffer(raw, dtype=dtype).reshape(entry.shape)
        if entry.dtype == "bfloat16":
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values.copy()


_DTYPES_BY_NAME = {name: dtype for name, dtype in _DTYPES.values()}
