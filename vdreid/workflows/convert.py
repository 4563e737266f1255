"""`vdreid convert`: another code base's weights in, vdreid's (or a framework's) out.

source file -> vdreid.interchange (read without torch or MindSpore, layout
by content or ``--from``, canonical names) -> a vdreid checkpoint or
backbone file (safetensors, the source's name, sha256, layout, epoch and
best_top1 in its metadata), or with ``--to torch|mindspore`` the state dict
/ .ckpt of the model on that framework (vdreid.interchange.native). Every
file is written through vdreid.outputs (atomic, the umask's mode).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vdreid import outputs
from vdreid.checkpoint import save_checkpoint
from vdreid.errors import CheckpointError, ConfigError
from vdreid.interchange.convert import Converted, convert_file
from vdreid.interchange.native import NATIVE_FORMATS, native_bytes

#: --to choices: vdreid's safetensors, then the frameworks' own files
TO_CHOICES = ("vdreid", *NATIVE_FORMATS)


@dataclasses.dataclass(frozen=True)
class ConvertResult:
    source: Path
    out: Path
    to: str
    converted: Converted


def convert(
    source: str | Path, out: str | Path, *, from_: str = "auto", to: str = "vdreid"
) -> ConvertResult:
    """Convert ``source`` into ``out`` (see the module docstring)."""
    source, out = Path(source), Path(out)
    if to not in TO_CHOICES:
        raise ConfigError(f"--to {to!r} is not a format; choose one of {', '.join(TO_CHOICES)}")
    # checked before any work: not the source, not a folder, writable (vdreid.outputs)
    outputs.refuse_input(out, {"file being converted": source}, "--out")
    outputs.check_writable(out, "--out")
    converted = convert_file(source, from_)
    if to == "vdreid":
        save_checkpoint(out, converted.tensors, spec=converted.spec, meta=converted.meta)
    elif converted.spec is None:
        raise CheckpointError(
            f"{source} is one ImageNet backbone, not an MVD model, so there is no {to} model "
            f"file to write; --to {to} takes a vdreid checkpoint or an official/msport one"
        )
    else:
        outputs.write_bytes(out, native_bytes(to, converted.spec, converted.tensors), "--out")
    return ConvertResult(source, out, to, converted)
