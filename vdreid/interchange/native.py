"""Framework-native files of a vdreid model, written without the framework.

For people whose own code wants one: ``--to torch`` writes the state dict
the torch backend's model holds (``torch.load`` + ``load_state_dict``
read it), ``--to mindspore`` the .ckpt of the MindSpore backend's Cell
(``mindspore.load_checkpoint`` + ``load_param_into_net``). Both backends
lay their modules out under the canonical names and rename only the
batch-norm leaves (layouts.TORCH_LEAVES, MINDSPORE_LEAVES); torch also
keeps a step counter per batch norm, written as 0.

The torch file is torch.save's zip format: ``<root>/data.pkl``, a
protocol-2 pickle of an OrderedDict whose tensors are
``torch._utils._rebuild_tensor_v2`` calls on persistent storage ids, and
``<root>/data/<key>`` with each storage's bytes. The pickle is written
opcode by opcode here (pickle.Pickler would need torch's classes to name
them), so writing needs no torch.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Mapping

import numpy as np

from vdreid.errors import CheckpointError
from vdreid.interchange.layouts import MINDSPORE_LEAVES, TORCH_BN_COUNTER, TORCH_LEAVES
from vdreid.interchange.mindspore_ckpt import encode_value
from vdreid.interchange.torch_files import STORAGE_DTYPES
from vdreid.spec.model import ModelSpec
from vdreid.spec.params import param_table, renamed_leaves

#: --to choices besides vdreid's own safetensors
NATIVE_FORMATS = ("torch", "mindspore")
_STORAGE_OF = {np.dtype(v): k for k, v in STORAGE_DTYPES.items() if k != "BFloat16Storage"}


def torch_state(spec: ModelSpec, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The torch backend's state_dict of ``spec`` holding the canonical ``tensors``."""
    table = param_table(spec)
    keys = renamed_leaves(table, TORCH_LEAVES)
    out: dict[str, np.ndarray] = {}
    for name, info in table.items():
        out[keys[name]] = np.asarray(tensors[name], np.float32)
        if info.role == "bn_var":  # the last leaf of a batch norm: its counter follows
            out[f"{name[: -len('.var')]}.{TORCH_BN_COUNTER}"] = np.zeros((), np.int64)
    return out


def mindspore_state(spec: ModelSpec, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The MindSpore backend's parameters of ``spec`` holding the canonical ``tensors``."""
    keys = renamed_leaves(param_table(spec), MINDSPORE_LEAVES)
    return {keys[name]: np.asarray(tensors[name], np.float32) for name in keys}


# -- torch.save's zip format ----------------------------------------------------------
def _unicode(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    if -(1 << 31) <= value < 1 << 31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor_pickle(key: str, array: np.ndarray) -> bytes:
    storage = _STORAGE_OF.get(array.dtype)
    if storage is None:
        raise CheckpointError(f"a tensor of dtype {array.dtype} cannot be written as a torch file")
    strides = [s // array.itemsize for s in array.strides] if array.size else [1] * array.ndim
    pid = _tuple(
        [
            _unicode("storage"),
            f"ctorch\n{storage}\n".encode(),
            _unicode(key),
            _unicode("cpu"),
            _int(array.size),
        ]
    )
    args = _tuple(
        [
            pid + b"Q",  # BINPERSID: the storage
            _int(0),  # storage offset
            _tuple([_int(n) for n in array.shape]),
            _tuple([_int(s) for s in strides]),
            b"\x89",  # requires_grad False
            b"ccollections\nOrderedDict\n)R",  # backward hooks: OrderedDict()
        ]
    )
    return b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R"


def torch_file_bytes(state: Mapping[str, np.ndarray], root: str = "archive") -> bytes:
    """A torch.save zip archive of the OrderedDict ``state`` (C-contiguous arrays)."""
    arrays = {k: np.asarray(v, order="C") for k, v in state.items()}  # 0-d stays 0-d
    body = b"".join(
        _unicode(name) + _tensor_pickle(str(i), a) for i, (name, a) in enumerate(arrays.items())
    )
    pickled = b"\x80\x02ccollections\nOrderedDict\n)R(" + body + b"u."
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{root}/data.pkl", pickled)
        archive.writestr(f"{root}/byteorder", "little")
        for i, a in enumerate(arrays.values()):
            archive.writestr(f"{root}/data/{i}", a.astype(a.dtype.newbyteorder("<")).tobytes())
        archive.writestr(f"{root}/version", "3\n")
    return buffer.getvalue()


def mindspore_file_bytes(state: Mapping[str, np.ndarray]) -> bytes:
    """A MindSpore .ckpt of ``state`` (the bytes mindspore.save_checkpoint writes)."""
    return b"".join(encode_value(tag, value) for tag, value in state.items())


def native_bytes(fmt: str, spec: ModelSpec, tensors: Mapping[str, np.ndarray]) -> bytes:
    """The ``fmt`` (torch, mindspore) file of a canonical model state."""
    if fmt == "torch":
        data = torch_file_bytes(torch_state(spec, tensors))
    elif fmt == "mindspore":
        data = mindspore_file_bytes(mindspore_state(spec, tensors))
    else:
        raise CheckpointError(
            f"--to {fmt!r} is not a format; choose one of {', '.join(NATIVE_FORMATS)}"
        )
    return data
