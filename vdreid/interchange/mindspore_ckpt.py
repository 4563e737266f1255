"""MindSpore .ckpt files read and written without MindSpore.

A .ckpt is protobuf (MindSpore's checkpoint.proto)::

    message Checkpoint { repeated Value value = 1; }
    message Value { required string tag = 1;
                    oneof value { TensorProto tensor = 2; MapTensorProto maptensor = 3; } }
    message TensorProto { repeated int64 dims = 1; required string tensor_type = 2;
                          required bytes tensor_content = 3; }

``mindspore.save_checkpoint`` writes one Checkpoint message per tensor (or
per 512 MB slice of a large one: consecutive values with the same tag are
concatenated on reading) and, with ``crc_check=True``, appends ``crc_num``
and a 10-byte big-endian CRC32 of everything before it. This module reads
that wire format with a few lines of varint arithmetic (no protobuf
package, no MindSpore) and writes the same bytes MindSpore would.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from vdreid import outputs
from vdreid.errors import CheckpointError

#: MindSpore's tensor_type strings -> numpy dtype (BFloat16: raw uint16, widened on reading)
TENSOR_TYPES = {
    "Float64": np.float64,
    "Float32": np.float32,
    "Float16": np.float16,
    "BFloat16": np.uint16,
    "Int64": np.int64,
    "Int32": np.int32,
    "Int16": np.int16,
    "Int8": np.int8,
    "UInt64": np.uint64,
    "UInt32": np.uint32,
    "UInt16": np.uint16,
    "UInt8": np.uint8,
    "Bool": np.bool_,
}
NUMPY_TYPES = {np.dtype(v): k for k, v in TENSOR_TYPES.items() if k != "BFloat16"}
CRC_MARK = b"crc_num"
CRC_TRAILER = len(CRC_MARK) + 10
WIRE_VARINT, WIRE_64BIT, WIRE_BYTES, WIRE_32BIT = 0, 1, 2, 5


class _Damaged(Exception):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise _Damaged("a varint runs past the end")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise _Damaged("a varint longer than 10 bytes")


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of one message; unknown types are damage."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == WIRE_VARINT:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == WIRE_BYTES:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise _Damaged(f"field {number} runs past the end")
            yield number, wire, data[pos : pos + size]
            pos += size
        elif wire == WIRE_64BIT:
            pos += 8
        elif wire == WIRE_32BIT:
            pos += 4
        else:
            raise _Damaged(f"wire type {wire}")
    if pos != len(data):
        raise _Damaged("a field runs past the end")


def _tensor(data: bytes) -> tuple[list[int], str, bytes]:
    dims: list[int] = []
    kind, content = None, b""
    for number, wire, value in _fields(data):
        if number == 1 and wire == WIRE_VARINT:
            dims.append(int(value))  # type: ignore[arg-type]
        elif number == 1 and wire == WIRE_BYTES:  # packed
            pos, raw = 0, value
            while pos < len(raw):  # type: ignore[arg-type]
                d, pos = _varint(raw, pos)  # type: ignore[arg-type]
                dims.append(d)
        elif number == 2 and wire == WIRE_BYTES:
            kind = bytes(value).decode("utf-8")  # type: ignore[arg-type]
        elif number == 3 and wire == WIRE_BYTES:
            content = bytes(value)  # type: ignore[arg-type]
    if kind is None:
        raise _Damaged("a tensor without its type")
    return [d - (1 << 64) if d >= 1 << 63 else d for d in dims], kind, content


def _values(data: bytes) -> Iterator[tuple[str, list[int], str, bytes]]:
    for number, wire, value in _fields(data):
        if number != 1 or wire != WIRE_BYTES:
            raise _Damaged(f"a top-level field {number} (a checkpoint holds only values)")
        tag, tensor, is_map = None, None, False
        for n, w, v in _fields(value):  # type: ignore[arg-type]
            if n == 1 and w == WIRE_BYTES:
                tag = bytes(v).decode("utf-8")  # type: ignore[arg-type]
            elif n == 2 and w == WIRE_BYTES:
                tensor = _tensor(v)  # type: ignore[arg-type]
            elif n == 3:
                is_map = True
        if tag is None:
            raise _Damaged("a value without its tag")
        if is_map:
            raise _Damaged(f"{tag!r} is a MapTensor (embedding tables), which vdreid does not read")
        if tensor is None:
            raise _Damaged(f"{tag!r} holds no tensor")
        yield (tag, *tensor)


def _array(tag: str, dims: list[int], kind: str, content: bytes) -> np.ndarray | str:
    if kind == "str":
        return np.frombuffer(content, f"<U{len(content) // 4}")[0].item() if content else ""
    if kind not in TENSOR_TYPES:
        raise _Damaged(
            f"{tag!r} has tensor type {kind!r}, expected one of {', '.join(TENSOR_TYPES)}"
        )
    dtype = np.dtype(TENSOR_TYPES[kind]).newbyteorder("<")
    count = len(content) // dtype.itemsize
    if len(content) % dtype.itemsize:
        raise _Damaged(f"{tag!r} holds {len(content)} bytes, not a whole number of {kind}")
    values = np.frombuffer(content, dtype, count=count).astype(dtype.newbyteorder("="))
    shape = tuple(dims)
    if shape == (0,) and count == 1:  # how some MindSpore versions write a scalar
        shape = ()
    if int(np.prod(shape)) != count:
        raise _Damaged(f"{tag!r} has dims {dims} but {count} values")
    values = values.reshape(shape)
    if kind == "BFloat16":
        return (values.astype(np.uint32) << 16).view(np.float32)
    return values


def is_mindspore_ckpt(head: bytes) -> bool:
    """Whether a file starting with ``head`` looks like a .ckpt: a Checkpoint
    value (field 1, length-delimited) whose first field is the tag."""
    try:
        size, pos = _varint(head, 1) if head[:1] == b"\x0a" else (0, 0)
    except _Damaged:
        return False
    if pos == 0 or size == 0 or pos >= len(head):
        return False
    return head[pos : pos + 1] == b"\x0a"


def load_mindspore_ckpt(path: str | Path) -> dict[str, np.ndarray | str]:
    """Tag -> numpy array (or string) of every value in the .ckpt at ``path``,
    in file order. CheckpointError for a damaged file or a failed CRC."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data[-CRC_TRAILER:-10] == CRC_MARK:
        expected = int.from_bytes(data[-10:], "big")
        data = data[:-CRC_TRAILER]
        if binascii.crc32(data) != expected:
            raise CheckpointError(
                f"{path}: the CRC32 MindSpore stored in the file does not match its content; "
                "the file is damaged: download or copy it again"
            )
    out: dict[str, np.ndarray | str] = {}
    try:
        pieces: list[tuple[str, list[int], str, bytes]] = []
        for value in _values(data):
            if pieces and value[0] != pieces[-1][0]:
                out[pieces[0][0]] = _joined(pieces)
                pieces = []
            pieces.append(value)
        if pieces:
            out[pieces[0][0]] = _joined(pieces)
    except _Damaged as exc:
        raise CheckpointError(
            f"{path} is not a readable MindSpore checkpoint ({exc}); it is damaged, encrypted "
            "(vdreid reads only plain .ckpt files) or not a .ckpt at all"
        ) from None
    if not out:
        raise CheckpointError(f"{path} holds no tensors; expected a MindSpore .ckpt")
    return out


def _joined(pieces: list[tuple[str, list[int], str, bytes]]) -> np.ndarray | str:
    tag, dims, kind, _ = pieces[0]
    return _array(tag, dims, kind, b"".join(p[3] for p in pieces))


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _key(number, WIRE_BYTES) + _encode_varint(len(payload)) + payload


def encode_value(tag: str, array: np.ndarray) -> bytes:
    """One Checkpoint message holding ``tag``: the bytes MindSpore writes per tensor."""
    array = np.asarray(array)
    kind = NUMPY_TYPES.get(array.dtype.newbyteorder("="))
    if kind is None:
        raise CheckpointError(
            f"tensor {tag!r} has dtype {array.dtype}, which a MindSpore checkpoint cannot hold"
        )
    tensor = b"".join(_key(1, WIRE_VARINT) + _encode_varint(int(d)) for d in array.shape)
    tensor += _bytes_field(2, kind.encode())
    tensor += _bytes_field(3, np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes())
    value = _bytes_field(1, tag.encode("utf-8")) + _bytes_field(2, tensor)
    return _bytes_field(1, value)


def write_mindspore_ckpt(path: str | Path, tensors: Mapping[str, np.ndarray]) -> Path:
    """Write ``tensors`` (tag -> array) as a MindSpore .ckpt at ``path``."""
    data = b"".join(encode_value(tag, value) for tag, value in tensors.items())
    return outputs.write_bytes(path, data, "MindSpore checkpoint")
