"""The HTML report, parsed (html.parser): pictures embedded, every name escaped,
checks of checkpoints and exports. A run folder is written here without a
framework; the pictures that need a model are covered in tests/e2e."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vdreid.checkpoint import save_checkpoint
from vdreid.config import dump_toml, resolve_train_config
from vdreid.errors import DataError, OutputError
from vdreid.presets import recipe
from vdreid.report.html_page import Figure, Page, Table, Text, render_page
from vdreid.spec import init_state
from vdreid.workflows.export_log import sha256
from vdreid.workflows.report import build_report, check_target, read_comparison, run_folder
from vdreid.workflows.run_dir import RunDir

EVIL = "<script>alert('x')"  # a file name: no slash


class Parsed(HTMLParser):
    """Tags, image sources and text of a page."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[str] = []
        self.images: list[dict[str, str]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append({k: v or "" for k, v in attrs})

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def decoded_images(page: Parsed) -> list[Image.Image]:
    out = []
    for img in page.images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix), img["src"][:40]
        image = Image.open(io.BytesIO(base64.b64decode(img["src"][len(prefix) :])))
        assert image.format == "PNG"
        assert image.size == (int(img["width"]), int(img["height"]))
        out.append(image)
    return out


def test_page_embeds_pictures_and_escapes_every_text():
    from vdreid.report.cmc import cmc_curve, cmc_picture

    ev = {"trials": [{"cmc": [0.5] * 20}], "summary": {"R1": {"mean": 50}, "mAP": {"mean": 40}}}
    picture = cmc_picture([cmc_curve(EVIL, ev)])
    page = Page(
        title=f"report {EVIL}",
        facts=(("run folder", f"/runs/{EVIL}"),),
        notes=(f"a note about {EVIL}",),
        blocks=(
            Figure(f"CMC {EVIL}", picture, caption=EVIL),
            Table("files", ("file", "check"), ((f"{EVIL}.onnx", ("ok", "good")),)),
            Text("config", f'root = "{EVIL}"'),
        ),
        footer=EVIL,
    )
    html = render_page(page)
    parsed = Parsed(html)
    assert "script" not in parsed.tags  # shown, never run
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert parsed.all_text.count(EVIL) >= 7  # every place shows the name as text
    (image,) = decoded_images(parsed)
    assert image.size == (picture.width, picture.height)


def _run_folder(root: Path) -> Path:
    """A run folder as `vdreid train` leaves it, with one good and two damaged checkpoints."""
    run = root / f"run {EVIL}"
    spec = recipe("tiny").model_spec(4)
    cfg = resolve_train_config(
        None, {"preset": "tiny", "root": str(root / "data"), "out": str(run)}
    )
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text(dump_toml(cfg))
    (run / "spec.json").write_text(spec.model_dump_json())
    state = init_state(spec, 0)
    save_checkpoint(run / "checkpoints" / "last.safetensors", state, spec=spec, backend="torch",
                    meta={"epoch": "3"})  # fmt: skip
    bad = dict(state)
    first = next(iter(bad))
    bad[first] = np.full_like(bad[first], np.nan)
    save_checkpoint(run / "checkpoints" / "nan.safetensors", bad, spec=spec)
    del bad[first]
    save_checkpoint(run / "checkpoints" / "short.safetensors", bad, spec=spec)
    lines = []
    for e in range(2):
        for s in range(3):
            lines.append({"epoch": e, "step": s, "global_step": 3 * e + s + 1, "total": 5.0 - e,
                          "ce": 4.0 - e, "lr_backbone": 0.01})  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    trials = [{"cmc": [0.3 + 0.03 * k for k in range(20)], "mAP": 0.3, "mINP": 0.2}] * 2
    summary = {m: {"mean": 30.0, "std": 1.5} for m in ("R1", "R5", "R10", "R20", "mAP", "mINP")}
    evaluation = {"dataset": "sysu", "protocol": {"mode": "all", "shots": 1, "sampler": "official"},
                  "distance": "euclidean", "num_trials": 2, "summary": summary, "trials": trials}  # fmt: skip
    (run / "eval.json").write_text(json.dumps(evaluation))
    kept, changed, gone = root / f"{EVIL}.onnx", root / "changed.onnx", root / "gone.onnx"
    for p in (kept, changed, gone):
        p.write_bytes(b"model")
    records = [
        {"path": str(p), "format": "onnx", "backend": "torch", "max_abs_diff": 2e-7,
         "min_cosine": 1.0, "tolerance": 1e-4, "ok": True, "sha256": sha256(p)}
        for p in (kept, changed, gone)
    ]  # fmt: skip
    changed.write_bytes(b"tampered")
    gone.unlink()
    (run / "exports.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"torn')
    return run


def _rows(html: str, section: str) -> list[str]:
    """The table rows' text of one section (between its heading and the next)."""
    part = html.split(f">{section}</h2>", 1)[1].split("</tbody>", 1)[0]
    return [Parsed(row).all_text for row in part.split("<tr>")[2:]]


def test_report_of_a_run_folder_checks_checkpoints_and_exports(tmp_path):
    run = _run_folder(tmp_path)
    untrained = json.loads((run / "eval.json").read_text())
    report = build_report(run, label="trained", compare=[("untrained", untrained)],
                          model_pictures=False)  # fmt: skip
    html = report.html
    parsed = Parsed(html)
    assert "script" not in parsed.tags and "&lt;script&gt;" in html
    assert len(decoded_images(parsed)) == 2  # CMC and loss curves
    metrics = _rows(html, "Metrics")
    assert len(metrics) == 2 and metrics[0].startswith("trained") and "30.00 ± 1.50" in metrics[0]
    checkpoints = dict(r.split(".safetensors", 1) for r in _rows(html, "Checkpoints"))
    assert checkpoints["last"].endswith("ok") and "3torch" in checkpoints["last"]
    assert "NaN or Inf in 1 tensor(s)" in checkpoints["nan"]
    assert "1 missing" in checkpoints["short"]
    exports = _rows(html, "Exports")
    assert len(exports) == 3  # the torn last line is skipped
    assert f"{EVIL}.onnx" in exports[0] and exports[0].endswith("verifiedpresent, unchanged")
    assert exports[1].endswith("changed since it was verified")
    assert exports[2].endswith("missing")
    assert "ranked lists" not in " ".join(report.notes)  # not asked for: no note
    out = report.write(tmp_path / "report.html")
    assert out.read_text(encoding="utf-8") == html


def test_a_report_in_the_run_folder_is_listed_as_the_runs_and_never_replaces_its_files(tmp_path):
    run = RunDir(_run_folder(tmp_path))
    with pytest.raises(OutputError, match="the run's evaluation this command reads"):
        check_target(run.evaluation, run)
    with pytest.raises(OutputError, match="--compare"):
        check_target(tmp_path / "untrained.json", run, [tmp_path / "untrained.json"])
    report = build_report(run.root, model_pictures=False)
    assert not run.files.has_marker()  # a run of an older vdreid: no file list yet
    report.write(run.report, run_folder(run.root))
    owned = run.files.owned()
    assert "report.html" in owned and "eval.json" in owned  # its own files listed with it
    assert "checkpoints/nan.safetensors" not in owned  # not a file a run writes
    assert run.report.read_text(encoding="utf-8") == report.html


def test_report_says_what_it_could_not_draw(tmp_path):
    run = _run_folder(tmp_path)
    (run / "metrics.jsonl").unlink()
    (run / "eval.json").unlink()
    report = build_report(run, progress=False)  # the dataset root does not exist
    notes = " ".join(report.notes)
    assert "no evaluation" in notes and "no loss curves" in notes
    assert "ranked lists and the embedding map omitted" in notes and "does not exist" in notes
    assert 'class="notes"' in report.html and Parsed(report.html).images == []


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(DataError, match="is not a run folder"):
        build_report(tmp_path)


def test_comparisons_are_eval_files_or_run_folders(tmp_path):
    run = _run_folder(tmp_path)
    label, data = read_comparison(run)
    assert label == run.name and data["num_trials"] == 2
    (tmp_path / "untrained.json").write_text((run / "eval.json").read_text())
    assert read_comparison(tmp_path / "untrained.json")[0] == "untrained"
    with pytest.raises(DataError, match="--compare"):
        read_comparison(tmp_path / "nothing.json")
