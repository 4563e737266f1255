"""torch files (.pth, .pth.tar, .pt) read without torch, and without running their pickle.

``torch.save`` pickles the object and stores each tensor's storage as raw
bytes: in a zip archive since torch 1.6 (``<root>/data.pkl`` and
``<root>/data/<key>``), or, in the LEGACY format older files use
(torchvision's resnet50-19c8e357.pth), as a sequence of pickles (magic
number, protocol version, system info, the object, the storage keys)
followed by every storage's bytes, each after its element count.

The object is unpickled by :class:`_TensorUnpickler`, whose ``find_class``
answers only from an allow-list of what tensor files need (the tensor and
parameter rebuild functions, the storage types, OrderedDict, a few plain
builtins, numpy's numeric scalars) with stand-ins written here; any other
global (``os.system``, ``builtins.eval``, a class of some package) is
refused before anything runs, so a malicious file raises a CheckpointError
instead of executing code. Tensors come back as numpy arrays (bfloat16
widened to float32, which holds every bfloat16 value), containers as dicts,
lists and tuples, numbers as Python numbers: what
``torch.load(weights_only=True)`` gives, minus torch.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import pickletools
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vdreid.errors import CheckpointError

#: the first pickle of a legacy file holds this number
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
ZIP_MAGIC = b"PK\x03\x04"

#: torch storage type -> numpy dtype of its elements (bfloat16: raw uint16)
STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class RefusedPickle(Exception):
    """The pickle asked for something a tensor file never needs."""


@dataclasses.dataclass(frozen=True)
class StorageType:
    """What ``torch.FloatStorage`` (etc.) unpickles to here."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclasses.dataclass
class Storage:
    """One storage of the file; its bytes arrive at once (zip) or later (legacy).
    Very old files also store views: ``base`` from element ``base_offset``."""

    key: str
    type: StorageType
    numel: int
    data: np.ndarray | None = None
    base: Storage | None = None
    base_offset: int = 0

    def values(self) -> np.ndarray | None:
        if self.base is None:
            return self.data
        flat = self.base.values()
        return None if flat is None else flat[self.base_offset : self.base_offset + self.numel]


@dataclasses.dataclass
class PendingTensor:
    """A tensor whose storage may not be read yet: materialised at the end."""

    storage: Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        flat = self.storage.values()
        if flat is None:
            raise CheckpointError(
                f"storage {self.storage.key} of a tensor is missing from the file; "
                "the file is truncated or damaged: download it again"
            )
        if not self.size:
            values = flat[self.offset : self.offset + 1].reshape(())
        else:
            needed = (
                self.offset
                + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
                + 1
            )
            if any(n == 0 for n in self.size):
                values = np.zeros(self.size, flat.dtype)
            elif needed > flat.size:
                raise CheckpointError(
                    f"a tensor of shape {self.size} reads past the end of storage "
                    f"{self.storage.key} ({flat.size} elements); the file is damaged"
                )
            else:
                item = flat.dtype.itemsize
                values = np.lib.stride_tricks.as_strided(
                    flat[self.offset :],
                    shape=self.size,
                    strides=tuple(s * item for s in self.stride),
                    writeable=False,
                )
        values = np.array(values, copy=True)  # own, contiguous memory
        if self.storage.type.name == "BFloat16Storage":  # the high half of a float32
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values


# -- the stand-ins the allow-list hands out ---------------------------------------
def _rebuild_tensor(storage: Storage, offset: int, size: Any, stride: Any) -> PendingTensor:
    if not isinstance(storage, Storage):
        raise RefusedPickle(f"a tensor rebuilt from {type(storage).__name__}, not a storage")
    size, stride = tuple(int(n) for n in size), tuple(int(n) for n in stride)
    if len(size) != len(stride) or min((*size, *stride, offset), default=0) < 0:
        raise ValueError(f"a tensor of size {size} with strides {stride} at offset {offset}")
    return PendingTensor(storage, int(offset), size, stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *_):
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *_):
    return data  # a Parameter is its tensor


def _ordered_dict(*args: Any) -> OrderedDict:
    return OrderedDict(*args)


def _torch_size(*args: Any) -> tuple[int, ...]:
    return tuple(*args)


def _encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode``: how protocol-2 pickles spell a bytes object."""
    return text.encode(encoding)


@dataclasses.dataclass
class _NumpyDtype:
    """numpy.dtype(...) of a pickled numpy scalar; numeric kinds only."""

    dtype: np.dtype

    def __setstate__(self, state: Any) -> None:  # (version, byte order, ...)
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.dtype = self.dtype.newbyteorder(state[1] if state[1] != "|" else "=")


def _numpy_dtype(spec: Any, align: bool = False, copy: bool = False) -> _NumpyDtype:
    dtype = np.dtype(spec) if isinstance(spec, str) and len(spec) <= 4 else None
    if dtype is None or dtype.kind not in "biuf":
        raise RefusedPickle(f"numpy dtype {spec!r} (only numeric scalars are read)")
    return _NumpyDtype(dtype)


def _numpy_scalar(dtype: _NumpyDtype, data: bytes) -> int | float | bool:
    if not isinstance(dtype, _NumpyDtype) or not isinstance(data, bytes):
        raise RefusedPickle("a numpy scalar that is not a number")
    return np.frombuffer(data, dtype.dtype, count=1)[0].item()


#: (module, name) -> what it unpickles to. Nothing else is ever looked up.
ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _torch_size,
    # protocol-2 pickles name builtins by their Python 2 module, __builtin__
    **{
        (module, t.__name__): t
        for module in ("builtins", "__builtin__")
        for t in (set, frozenset, slice)
    },
    ("_codecs", "encode"): _encode,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
}
ALLOWED_DESCRIPTION = (
    "tensors, parameters, storages, OrderedDict, dicts, lists, tuples, sets, strings, "
    "bytes and numbers"
)


class _TensorUnpickler(pickle.Unpickler):
    """An Unpickler that builds only what ALLOWED names; storages come from ``storages``."""

    def __init__(self, stream: io.BytesIO, storages: Callable[[tuple[Any, ...]], Storage]):
        super().__init__(stream, encoding="utf-8")
        self._storage = storages

    def find_class(self, module: str, name: str) -> Any:
        found = ALLOWED.get((module, name))
        if found is None:
            raise RefusedPickle(f"{module}.{name}")
        return found

    def persistent_load(self, pid: Any) -> Storage:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise RefusedPickle(f"a persistent reference {str(pid)[:60]!r}")
        return self._storage(pid)


def _unpickle(data: bytes, storages: Callable[[tuple[Any, ...]], Storage], path: Path) -> Any:
    try:
        return _TensorUnpickler(io.BytesIO(data), storages).load()
    except RefusedPickle as exc:
        raise CheckpointError(
            f"{path} was refused: its pickle asks for {exc}, which a tensor file never needs "
            f"(allowed: {ALLOWED_DESCRIPTION}). vdreid does not run such pickles: re-save the "
            "weights alone (torch.save(model.state_dict(), ...)) or as safetensors"
        ) from None
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"{path}: its pickle is damaged ({type(exc).__name__}: {exc}); "
            "the file is truncated or not a torch file: download it again"
        ) from None


def _storage_type(value: Any) -> StorageType:
    if not isinstance(value, StorageType):
        raise RefusedPickle(f"a storage of type {value!r}")
    return value


# -- the zip format (torch >= 1.6) -------------------------------------------------
def _read_zip(path: Path) -> Any:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{path}: a damaged zip archive ({exc}); download it again") from None
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pickles:
            raise CheckpointError(
                f"{path} is a zip archive without <folder>/data.pkl, so not a torch file "
                f"(it holds {', '.join(names[:4])}{', ...' if len(names) > 4 else ''})"
            )
        root = pickles[0].rsplit("/", 1)[0]
        byteorder = "little"
        if f"{root}/byteorder" in names:
            byteorder = archive.read(f"{root}/byteorder").decode().strip() or "little"
        found: dict[str, Storage] = {}

        def storage(pid: tuple[Any, ...]) -> Storage:
            _, kind, key, _location, numel = pid[:5]
            key = str(key)
            if key not in found:
                kind = _storage_type(kind)
                try:
                    raw = archive.read(f"{root}/data/{key}")
                except KeyError:
                    raise CheckpointError(
                        f"{path}: storage {key} is missing from the archive; the file is "
                        "damaged: download it again"
                    ) from None
                dtype = kind.dtype.newbyteorder("<" if byteorder == "little" else ">")
                data = np.frombuffer(raw, dtype, count=len(raw) // dtype.itemsize)
                found[key] = Storage(key, kind, int(numel), data.astype(kind.dtype, copy=False))
            return found[key]

        try:
            return _unpickle(archive.read(pickles[0]), storage, path)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CheckpointError(
                f"{path}: a damaged zip archive ({exc}); download it again"
            ) from None


# -- the legacy format (torch < 1.6, torchvision's original weights) ---------------
def _skip_pickle(data: bytes, start: int, path: Path) -> int:
    """Where the pickle starting at ``start`` ends, found by reading its opcodes
    (pickletools parses them; nothing is built or called)."""
    try:
        for op, _arg, pos in pickletools.genops(io.BytesIO(data[start:])):
            if op.name == "STOP" and pos is not None:
                return start + pos + 1
    except Exception as exc:
        raise CheckpointError(
            f"{path}: a damaged pickle in a legacy torch file ({exc}); download it again"
        ) from None
    raise CheckpointError(f"{path}: a legacy torch file cut short; download it again")


def _read_legacy(path: Path, data: bytes) -> Any:
    pos = 0
    header = []
    for _ in range(3):  # magic number, protocol version, system info
        end = _skip_pickle(data, pos, path)
        header.append(_unpickle(data[pos:end], _no_storage, path))
        pos = end
    magic, protocol, info = header
    if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
        raise CheckpointError(
            f"{path} is not a torch file (magic {magic!r}, protocol {protocol!r}); expected "
            "a file written by torch.save"
        )
    little = not isinstance(info, dict) or info.get("little_endian", True)
    found: dict[str, Storage] = {}

    def storage(pid: tuple[Any, ...]) -> Storage:
        _, kind, key, _location, numel = pid[:5]
        key = str(key)
        if key not in found:
            found[key] = Storage(key, _storage_type(kind), int(numel))
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return found[key]
        view_key, offset, view_size = view  # a view of the root storage ``key``
        if str(view_key) not in found:
            found[str(view_key)] = Storage(
                str(view_key), found[key].type, int(view_size), None, found[key], int(offset)
            )
        return found[str(view_key)]

    end = _skip_pickle(data, pos, path)
    obj = _unpickle(data[pos:end], storage, path)
    pos = end
    end = _skip_pickle(data, pos, path)
    keys = _unpickle(data[pos:end], _no_storage, path)
    pos = end
    for key in keys:
        key = str(key)
        if key not in found:
            raise CheckpointError(f"{path}: storage {key} is listed but never used; damaged file")
        s = found[key]
        if pos + 8 > len(data):
            raise CheckpointError(f"{path}: storage {key} is cut short; download it again")
        (count,) = struct.unpack("<q" if little else ">q", data[pos : pos + 8])
        pos += 8
        dtype = s.type.dtype.newbyteorder("<" if little else ">")
        size = count * dtype.itemsize
        if count < 0 or pos + size > len(data):
            raise CheckpointError(f"{path}: storage {key} is cut short; download it again")
        s.data = np.frombuffer(data, dtype, count=count, offset=pos).astype(s.type.dtype)
        pos += size
    return obj


def _no_storage(pid: tuple[Any, ...]) -> Storage:
    raise RefusedPickle("a storage outside the object pickle")


# -- entry point ------------------------------------------------------------------
def is_torch_file(head: bytes) -> bool:
    """Whether a file starting with ``head`` looks like torch.save's output."""
    return head.startswith(ZIP_MAGIC) or head.startswith(b"\x80\x02\x8a\x0a")


def load_torch_file(path: str | Path) -> Any:
    """The object torch.save wrote to ``path``, tensors as numpy arrays.

    CheckpointError for a file that is not a torch file, is damaged, or whose
    pickle asks for anything but tensors and plain containers.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data.startswith(ZIP_MAGIC):
        obj = _read_zip(path)
    elif data.startswith(b"\x80\x02\x8a\x0a"):
        obj = _read_legacy(path, data)
    else:
        raise CheckpointError(
            f"{path} is not a torch file: it is neither a zip archive nor a legacy torch pickle"
        )
    return materialise(obj)


def materialise(obj: Any) -> Any:
    """Replace every PendingTensor in ``obj`` by its numpy array."""
    if isinstance(obj, PendingTensor):
        return obj.array()
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, OrderedDict) else {}
        for k, v in obj.items():
            out[k] = materialise(v)
        return out
    if isinstance(obj, list):
        return [materialise(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(materialise(v) for v in obj)
    return obj
