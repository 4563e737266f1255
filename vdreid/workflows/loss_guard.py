"""The NaN/Inf guard of a training run: stop at the first non-finite loss
term, and say what was kept and what the logged losses suggest.

Checkpoints are written only at epoch ends, after a check, so every file
the message names holds finite weights. The advice follows the total loss
seen at the log intervals before the fault: a loss that was climbing points
at the learning rate; one that was steady does not, and a lower learning
rate would only hide the fault.
"""

from __future__ import annotations

import math
from pathlib import Path

from vdreid.checkpoint import read_metadata
from vdreid.errors import CheckpointError, NumericalError
from vdreid.workflows.run_dir import META_BEST, META_EPOCH, RunDir

#: the total loss "rose" when its last finite value exceeds the first by this factor
RISE = 1.5


class LossGuard:
    """Checks every fetched set of loss terms (``check``) and remembers the
    first and the last finite total loss of the run (this process's part)."""

    def __init__(self, run: RunDir | None, *, lr: float, data_check: str, resume_command: str):
        self.run = run  # None on the processes that do not write the run
        self.lr = lr
        self.data_check = data_check
        self.resume_command = resume_command
        self.first: float | None = None
        self.last: float | None = None

    def check(self, metrics: dict[str, float], epoch: int, step: int) -> dict[str, float]:
        """``metrics`` when every value is finite; otherwise the fault is logged
        in metrics.jsonl and a NumericalError raised."""
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if not bad:
            total = metrics.get("total")
            if total is not None:
                self.first = total if self.first is None else self.first
                self.last = total
            return metrics
        if self.run is not None:
            self.run.log({"epoch": epoch, "step": step, "error": f"non-finite {', '.join(bad)}"})
        raise NumericalError(
            f"loss term(s) {', '.join(bad)} became {metrics[bad[0]]} at epoch {epoch + 1}, "
            f"step {step + 1}; training stopped. {self.kept()}. {self.advice()}"
        )

    def kept(self) -> str:
        """Which checkpoints the run folder holds, and from when."""
        if self.run is None:
            return "The lead process reports the run's checkpoints"
        held = [
            f"{path} ({when})"
            for path in (self.run.last, self.run.best)
            if (when := _when(path)) is not None
        ]
        if not held:
            return "No checkpoint was written yet"
        return "Kept " + " and ".join(held)

    def advice(self) -> str:
        """What to try, from the totals logged before the fault."""
        if self.first is None or self.last is None:
            return (
                "The loss was not finite at the first logged step: check the data "
                f"({self.data_check}) and the --pretrained weights"
            )
        if self.last > RISE * abs(self.first):
            lower = f"--set optim.lr={self.lr / 2:g}"
            how = (
                f"`{self.resume_command} {lower}` goes on from the last checkpoint"
                if self.run is not None and self.run.last.is_file()
                else f"e.g. {lower}"
            )
            return (
                f"The total loss rose from {self.first:.4g} to {self.last:.4g} before it: "
                f"lower the learning rate (optim.lr is {self.lr:g}; {how})"
            )
        return (
            f"The total loss did not rise before it ({self.first:.4g} at the first log, "
            f"{self.last:.4g} at the last), so a lower learning rate is unlikely to help: "
            "metrics.jsonl in the run folder shows the term that broke; please report it "
            "with the run's config.toml"
        )


def _when(path: Path) -> str | None:
    """'after epoch N, validation mAP x%' for a checkpoint; None when there is none."""
    if not path.is_file():
        return None
    try:
        meta = read_metadata(path)
    except CheckpointError:
        return "unreadable"
    text = f"after epoch {meta.get(META_EPOCH, '?')}"
    best = float(meta.get(META_BEST, "-inf"))
    return text + (f", validation mAP {best:.1f}%" if math.isfinite(best) else "")
