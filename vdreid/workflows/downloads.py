"""Files vdreid fetches once and keeps: torch hub's cache folder, a hash check, a progress bar.

``--pretrained imagenet`` means torchvision's original ImageNet ResNet-50
(resnet50-19c8e357.pth, the file the authors' code loads). It is looked up
where torch hub keeps it, ``$TORCH_HOME/hub/checkpoints`` (TORCH_HOME
defaults to ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch``), so a file
torch or torchvision downloaded before is reused; a missing one is
downloaded beside its final place under a temporary name, its sha256 is
checked against the prefix in its name (torch hub's convention) and only
then moved into place. Offline, the error says where to put the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from vdreid import outputs
from vdreid.errors import CheckpointError

CHUNK = 1 << 20
TIMEOUT_S = 30


@dataclasses.dataclass(frozen=True)
class HubFile:
    """A file torch hub caches: where it comes from and the sha256 prefix it must have."""

    url: str
    sha256_prefix: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


#: torchvision's original ImageNet ResNet-50 (the official MVD code's pretrained weights)
IMAGENET_RESNET50 = HubFile(
    "https://download.pytorch.org/models/resnet50-19c8e357.pth", sha256_prefix="19c8e357"
)


def torch_hub_checkpoints() -> Path:
    """torch hub's checkpoint folder, found as torch.hub finds it."""
    home = os.environ.get("TORCH_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        home = os.path.join(cache, "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def fetch(file: HubFile, *, progress: bool = True, console: Console | None = None) -> Path:
    """The cached copy of ``file``, downloaded first when it is missing."""
    folder = torch_hub_checkpoints()
    path = folder / file.name
    if path.is_file():
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(
            f"cannot create torch hub's cache folder {folder} ({exc.strerror or exc}); set "
            "TORCH_HOME to a writable folder"
        ) from None
    # a temporary name beside its place, moved there only once its hash is right
    with outputs.atomic(path, f"the download of {file.name}") as tmp:
        digest = _download(file, tmp, progress, console or Console(stderr=True))
        if not digest.startswith(file.sha256_prefix):
            raise CheckpointError(
                f"the file downloaded from {file.url} has sha256 {digest[:16]}..., not "
                f"{file.sha256_prefix}...: it is not the published file (a proxy page or a "
                "damaged download); nothing was kept, try again"
            )
    return path


def _download(file: HubFile, tmp: Path, progress: bool, console: Console) -> str:
    digest = hashlib.sha256()
    try:
        with (
            urllib.request.urlopen(file.url, timeout=TIMEOUT_S) as response,
            open(tmp, "wb") as out,
        ):
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = Progress(
                TextColumn(f"downloading {file.name}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=console,
                transient=True,
                disable=not progress,
            )
            with bar:
                task = bar.add_task("download", total=total)
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    digest.update(block)
                    bar.advance(task, len(block))
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise CheckpointError(
            f"cannot download {file.url} ({reason}); without a network, download it on another "
            f"machine and put it at {torch_hub_checkpoints() / file.name} (or pass the file: "
            "--pretrained PATH)"
        ) from None
    return digest.hexdigest()
