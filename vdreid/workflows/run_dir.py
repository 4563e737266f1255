"""The run folder: what a training run writes, and where.

<out>/config.toml            the resolved TrainConfig (readable by --config)
<out>/spec.json, loss.json   the model and loss specs
<out>/metrics.jsonl          one JSON object per log interval / validation
<out>/checkpoints/last.safetensors, best.safetensors
<out>/eval.json              the final evaluation with the dataset's protocol
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vdreid.config import TrainConfig, dump_toml
from vdreid.errors import ConfigError


class RunDir:
    def __init__(self, root: Path):
        self.root = Path(root)

    config = property(lambda self: self.root / "config.toml")
    spec = property(lambda self: self.root / "spec.json")
    loss = property(lambda self: self.root / "loss.json")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    checkpoints = property(lambda self: self.root / "checkpoints")
    last = property(lambda self: self.root / "checkpoints" / "last.safetensors")
    best = property(lambda self: self.root / "checkpoints" / "best.safetensors")
    evaluation = property(lambda self: self.root / "eval.json")

    def prepare(self, cfg: TrainConfig, spec_json: str, loss_json: str, *, resuming: bool) -> None:
        """Create the folder and write the resolved configuration.

        A fresh run refuses a folder that already holds a checkpoint (resume it
        with --resume auto, or choose another --out) so that no run is
        overwritten by accident.
        """
        if self.last.exists() and not resuming:
            raise ConfigError(
                f"{self.root} already holds a run ({self.last}); resume it with --resume auto "
                "or choose another --out"
            )
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        self.config.write_text(dump_toml(cfg))
        self.spec.write_text(spec_json)
        self.loss.write_text(loss_json)

    def log(self, record: dict[str, Any]) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics.exists():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]
