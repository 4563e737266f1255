"""Weight files of any kind, read into one shape: tensors by key, plus the rest.

A file is recognised by its content, never by its name: a zip archive or a
legacy pickle written by ``torch.save`` (read by torch_files, without
torch), a safetensors file (read by the safetensors package; a vdreid
checkpoint is one with the spec in its metadata), or a MindSpore .ckpt
(read by mindspore_ckpt, without MindSpore). Then the keys tell the layout
(vdreid.interchange.layouts): :func:`detect_layout`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open

from vdreid.checkpoint import META_SPEC
from vdreid.errors import CheckpointError
from vdreid.interchange.layouts import LAYOUTS, MINDSPORE_LEAVES, TORCH_LEAVES
from vdreid.interchange.mindspore_ckpt import is_mindspore_ckpt, load_mindspore_ckpt
from vdreid.interchange.torch_files import is_torch_file, load_torch_file

#: containers by what their files start with
CONTAINERS = ("torch", "safetensors", "mindspore")
#: top-level entries of a torch checkpoint dict that hold the state dict
STATE_DICT_KEYS = ("model", "state_dict", "model_state_dict", "net")
#: what --from accepts besides the layouts: vdreid's own checkpoints and backbone files
VDREID_KINDS = ("vdreid", "vdreid-backbone")


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """A weight file as read: tensors by key (numpy), other top-level values."""

    path: Path
    container: str
    tensors: dict[str, np.ndarray]
    #: top-level entries that are not tensors (epoch, best_top1, metadata strings)
    extras: dict[str, Any]
    #: what the file's top level holds, for messages about unknown files
    top_level: tuple[str, ...]
    sha256: str

    def describe(self) -> str:
        keys = list(self.tensors)
        shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
        return (
            f"a {self.container} file whose top level holds {', '.join(self.top_level[:6]) or 'nothing'}"
            f"{', ...' if len(self.top_level) > 6 else ''}; {len(keys)} tensors"
            + (f", first: {shown}" if keys else "")
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    size = int.from_bytes(head[:8], "little")
    return 2 <= size < (1 << 30) and head[8:9] == b"{"


def container_of(path: Path) -> str:
    """Which container the file at ``path`` is, by its first bytes."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise CheckpointError(
            f"{path} {what}; pass a weight file (.pth, .pth.tar, .ckpt, .safetensors)"
        )
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head:
        raise CheckpointError(f"{path} is empty; the download or copy did not finish")
    if is_torch_file(head):
        return "torch"
    if _is_safetensors(head):
        return "safetensors"
    if is_mindspore_ckpt(head):
        return "mindspore"
    raise CheckpointError(
        f"{path} is not a weight file vdreid reads: it starts with {head[:16]!r}, which is "
        "neither a torch file (zip archive or legacy pickle), a safetensors file nor a "
        "MindSpore .ckpt"
    )


def read_source(path: str | Path) -> SourceFile:
    """Read any weight file vdreid knows; CheckpointError says what is wrong otherwise."""
    path = Path(path)
    container = container_of(path)
    if container == "torch":
        tensors, extras, top = _torch_parts(load_torch_file(path), path)
    elif container == "safetensors":
        tensors, extras, top = _safetensors_parts(path)
    else:
        raw = load_mindspore_ckpt(path)
        tensors = {k: v for k, v in raw.items() if isinstance(v, np.ndarray)}
        extras = {k: v for k, v in raw.items() if not isinstance(v, np.ndarray)}
        top = tuple(raw)
    return SourceFile(path, container, _unprefixed(tensors), extras, top, sha256_of(path))


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) for k in value)
        and any(isinstance(v, np.ndarray) for v in value.values())
    )


def _torch_parts(obj: Any, path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any], tuple]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__}, not a dict of tensors; save a state dict "
            "(torch.save(model.state_dict(), ...)) or a dict holding one"
        )
    top = tuple(str(k) for k in obj)
    state = obj
    if not _is_state_dict(obj) or any(k in obj for k in STATE_DICT_KEYS):
        inner = next((obj[k] for k in STATE_DICT_KEYS if _is_state_dict(obj.get(k))), None)
        state = inner if inner is not None else obj
    tensors = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    extras = {
        str(k): v
        for k, v in obj.items()
        if state is not obj and isinstance(v, (int, float, str)) and not isinstance(v, bool)
    }
    return tensors, extras, top


def _safetensors_parts(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any], tuple]:
    try:
        with safe_open(str(path), framework="numpy") as fh:
            extras: dict[str, Any] = dict(fh.metadata() or {})
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is a damaged safetensors file ({exc}); download or copy it again"
        ) from None
    return tensors, extras, tuple(tensors)


def _unprefixed(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Without the ``module.`` prefix DataParallel adds to every key."""
    if tensors and all(k.startswith("module.") for k in tensors):
        return {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


# -- layouts -------------------------------------------------------------------------
# both name the shared trunk shared_backbone.base: the branch-specific names tell them apart
_OFFICIAL = re.compile(r"^(RGB|IR)_(backbone|Bottleneck)\.")
_MSPORT = re.compile(r"^(rgb_backbone\.visible|ir_backbone\.thermal)\.")


def detect_layout(source: SourceFile) -> str:
    """The layout (or vdreid kind) of ``source``'s keys; CheckpointError when
    none fits, saying what the file holds and which formats vdreid knows."""
    keys = source.tensors
    if source.container == "safetensors" and META_SPEC in source.extras:
        return "vdreid"
    if keys and all(k.startswith("backbone.") for k in keys):
        return "vdreid-backbone"
    if any(_OFFICIAL.match(k) for k in keys):
        return "official"
    if any(_MSPORT.match(k) for k in keys):
        return "msport"
    bn = "bn1.{}"
    if "conv1.weight" in keys and bn.format(MINDSPORE_LEAVES["mean"]) in keys:
        return "mindspore-zoo"
    if "conv1.weight" in keys and bn.format(TORCH_LEAVES["mean"]) in keys:
        return "timm" if source.container == "safetensors" else "torchvision"
    raise CheckpointError(
        f"{source.path} is no weight layout vdreid knows: {source.describe()}. Known: "
        + "; ".join(f"{name} ({layout.description})" for name, layout in LAYOUTS.items())
        + "; a vdreid checkpoint or backbone file (.safetensors)"
    )
