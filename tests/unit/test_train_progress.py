"""The training progress bar keeps step, speed and ETA on a narrow terminal."""

from __future__ import annotations

import io
import re

from rich.console import Console

from vdreid.workflows import train_progress
from vdreid.workflows.train_progress import TrainProgress

METRICS = {"ce": 12.7, "rank": 4.24, "cml": 0.024, "vsd": -0.029, "vcd": -0.014, "total": 17.07}


def _last_line(width: int, monkeypatch, seconds: float = 4.0) -> str:
    """30 steps of 32 images that took ``seconds``."""
    clock = iter([0.0, seconds])
    monkeypatch.setattr(train_progress.time, "perf_counter", lambda: next(clock))
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=True, color_system=None)
    with TrainProgress(1504, 0, console=console) as bar:
        for i in range(30):
            bar.step(3, 32, i, 47, 32)
        bar.show(METRICS)
        bar._bar.refresh()
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buf.getvalue())
    return [line for line in re.split(r"[\r\n]", text) if "epoch" in line][-1]


def test_a_narrow_terminal_cuts_the_loss_terms_not_the_eta(monkeypatch):
    line = _last_line(80, monkeypatch)
    assert "epoch 4/32 step 30/47" in line and "30/1504" in line and "240 img/s" in line
    assert re.search(r"\d+:\d\d:\d\d", line)  # the ETA
    assert "total 17" in line and line.rstrip().endswith("…") and len(line.rstrip()) <= 80


def test_any_speed_fits_its_column(monkeypatch):
    assert "750k img/s" in _last_line(80, monkeypatch, seconds=30 * 32 / 750_000)


def test_a_wide_terminal_shows_every_term_total_first(monkeypatch):
    line = _last_line(160, monkeypatch)
    terms = re.findall(r"([a-z]+) -?\d+\.\d{3}", line)
    assert terms == ["total", "ce", "rank", "cml", "vsd", "vcd"]
