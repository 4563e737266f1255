"""A trained model at work on image files: embed, search, eval --picture, report.

One `tiny` model is trained once for the module (about 10 CPU seconds on
torch, one thread) on a synthetic SYSU-like tree of 8 identities with 6
images per camera, and evaluated there. A few CPU seconds cannot teach a
network to recognise people it never saw (docs/training.md measures that
on 380 identities), so search is tested on the identities it was trained
on: what is tested is that embed and search keep what the model knows
(the untrained network, from the same initial weights, finds the right
person about as often as chance).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vdreid.checkpoint import load_checkpoint, save_checkpoint
from vdreid.cli.app import app
from vdreid.data.readers import read_dataset
from vdreid.data.synth import Shape, synthesize
from vdreid.spec import init_state
from vdreid.workflows.embed import embed_images, load_embeddings
from vdreid.workflows.model_source import open_model
from vdreid.workflows.report import build_report

from e2e_runs import tiny_config

#: one pytest-xdist worker runs this module: its shared fixtures are costly
pytestmark = pytest.mark.xdist_group("inference")

torch = pytest.importorskip("torch")

runner = CliRunner()
EPOCHS = 50  # 100 steps of 16 images: rank 1 for ~85% of the training ids' infrared images
RANK1 = 0.5  # "most queries"; chance is 1/8 (8 identities in the gallery)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Two torch threads on a busy 2-core machine were measured 25x slower per
    training step than one (3.7 s vs 0.15 s): these small batches gain nothing
    from a second thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def people(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("people")
    shape = Shape(ids=8, test_ids=4, per_cam=6, size=(64, 32))
    synthesize("sysu", root, shape=shape, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def trained(people, tmp_path_factory):
    """The training result (run folder, last checkpoint, final evaluation)."""
    from vdreid.workflows.train import train

    out = tmp_path_factory.mktemp("run") / "run"
    cfg = tiny_config(
        people, out, "torch", epochs=EPOCHS, checkpoint_every=EPOCHS, log_interval=5,
        device="cpu", protocol={"trials": 2},
    )  # fmt: skip
    return train(cfg, progress=False)


@pytest.fixture(scope="session")
def untrained(trained, tmp_path_factory) -> Path:
    """The same network at the weights its training started from."""
    spec = load_checkpoint(trained.checkpoint).spec
    path = tmp_path_factory.mktemp("untrained") / "untrained.safetensors"
    return save_checkpoint(path, init_state(spec, 3), spec=spec, backend="torch")


def _images(people: Path, modality: int) -> list[str]:
    """The training identities' images of one modality."""
    return [r.path for r in read_dataset("sysu", people).train if int(r.modality) == modality]


def _cli(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _rank1(checkpoint: Path, people: Path, tmp: Path) -> float:
    """embed the visible gallery to a file, then search it with every infrared image."""
    gallery = tmp / f"{checkpoint.stem}-gallery.safetensors"
    _cli("embed", "-c", checkpoint, "--device", "cpu", "-o", gallery, "--quiet",
         "-i", *_images(people, 0))  # fmt: skip
    out = tmp / f"{checkpoint.stem}-search.json"
    _cli("search", "-c", checkpoint, "--device", "cpu", "-g", gallery, "--dataset", "sysu",
         "--root", people, "--json-out", out, "-k", "5", "--quiet", "-q", *_images(people, 1))  # fmt: skip
    lists = json.loads(out.read_text())["queries"]
    assert lists and all(q["query"]["modality"] == "infrared" for q in lists)
    for q in lists:  # cross-modal: visible gallery images only, ranked by distance
        assert all(m["modality"] == "visible" for m in q["matches"])
        distances = [m["distance"] for m in q["matches"]]
        assert distances == sorted(distances) and len(distances) == 5
        assert [m["true_match"] for m in q["matches"]] == [
            m["pid"] == q["query"]["pid"] for m in q["matches"]
        ]
    return float(np.mean([q["first_match"] == 1 for q in lists]))


def test_search_finds_the_person_for_most_infrared_queries_once_trained(
    trained, untrained, people, tmp_path
):
    assert _rank1(trained.checkpoint, people, tmp_path) >= RANK1
    assert _rank1(untrained, people, tmp_path) < RANK1


def test_embed_gives_the_evaluation_features_of_the_same_files(trained, people):
    ev = trained.evaluation
    model = open_model(checkpoint=trained.checkpoint, device="cpu")
    result = embed_images(model, [Path(r.path) for r in ev.records], batch_size=7, progress=False)
    assert np.abs(result.features - ev.features).max() < 1e-5
    truth = [int(r.modality) for r in ev.records]
    assert result.modalities().tolist() == truth  # equal channels: infrared, for every image


def test_a_checkpoint_embeds_alike_on_every_backend(trained, people, backend_name, tmp_path):
    """The model-source seam with the sources that exist today: a checkpoint on each backend."""
    files = _images(people, 1)[:6] + _images(people, 0)[:6]
    out = tmp_path / f"{backend_name}.npy"
    _cli("embed", "-c", trained.checkpoint, "--backend", backend_name, "-o", out, "--quiet",
         "--batch-size", "5", "-i", *files)  # fmt: skip
    here = load_embeddings(out)
    reference = embed_images(open_model(checkpoint=trained.checkpoint, device="cpu"),
                             [Path(f) for f in files], progress=False)  # fmt: skip
    assert np.abs(here.features - reference.features).max() < 1e-4
    assert [e.path for e in here.images] == files


def test_an_exported_onnx_file_embeds_as_its_checkpoint(trained, people, tmp_path):
    """--model M.onnx with no --backend: the ONNX Runtime backend runs the exported file,
    its input size and normalisation read from the file's metadata."""
    pytest.importorskip("onnxruntime")
    from vdreid.workflows.export import export_checkpoint

    onnx = tmp_path / "tiny.onnx"
    export_checkpoint(trained.checkpoint, onnx, backend="torch", device="cpu")
    files = _images(people, 1)[:6] + _images(people, 0)[:6]
    out = tmp_path / "from-onnx.npy"
    _cli("embed", "--model", onnx, "-o", out, "--quiet", "-i", *files)
    assert open_model(model_file=onnx).describe() == f"onnx {onnx} on onnxruntime"
    reference = embed_images(open_model(checkpoint=trained.checkpoint, device="cpu"),
                             [Path(f) for f in files], progress=False)  # fmt: skip
    assert np.abs(load_embeddings(out).features - reference.features).max() < 1e-4


def test_eval_picture_ranks_as_the_metrics_do(trained, people, tmp_path):
    from vdreid.workflows.pictures import trial_lists

    ev = trained.evaluation
    lists = trial_lists(ev.records, ev.trials[0], ev.features, np.arange(len(ev.records)),
                        distance=ev.distance, order="given", limit=None)  # fmt: skip
    judged = [r.first_match for r in lists if r.first_match]
    assert np.mean(np.array(judged) == 1) == pytest.approx(ev.result.trials[0].cmc[0])
    picture = tmp_path / "worst.png"
    r = _cli("eval", "--checkpoint", trained.checkpoint, "--dataset", "sysu", "--root", people,
             "--device", "cpu", "--trials", "2", "--picture", picture, "--picture-queries", "3",
             "--quiet")  # fmt: skip
    assert f"ranked lists: {picture}" in r.output
    image = Image.open(picture)
    assert image.format == "PNG" and image.size[0] > 1000 and 600 < image.size[1] < 900


def test_report_of_the_run_draws_every_picture(trained, people, tmp_path):
    from vdreid.workflows.export import export_checkpoint

    onnx = tmp_path / "<script>.onnx"
    export_checkpoint(trained.checkpoint, onnx, backend="torch", device="cpu")
    report = build_report(trained.run_dir, queries=3, progress=False)
    assert report.notes == ()
    html = report.html
    assert html.count('src="data:image/png;base64,') == 5  # CMC, loss, best, worst, map
    for title in ("Ranked lists, best first", "Ranked lists, worst first", "Embedding map"):
        assert f">{title}</h2>" in html
    assert "&lt;script&gt;.onnx" in html and "<script>" not in html
    assert "present, unchanged" in html and html.count(">ok</td>") == 1  # one checkpoint
    report.write(tmp_path / "report.html")
    r = _cli("report", trained.run_dir, "--out", tmp_path / "cli.html", "--no-model-pictures",
             "--compare", trained.run_dir / "eval.json")  # fmt: skip
    assert r.output.strip().splitlines()[-1] == f"report: {tmp_path / 'cli.html'}"
    r = _cli("report", trained.run_dir, "--out", tmp_path / "cli.html", "--no-model-pictures",
             "--json")  # fmt: skip
    assert json.loads(r.stdout) == {
        "report": str(tmp_path / "cli.html"), "run_dir": str(trained.run_dir), "notes": []
    }  # fmt: skip
    first = html.index('src="data:image/png;base64,') + len('src="data:image/png;base64,')
    import base64

    cmc = Image.open(io.BytesIO(base64.b64decode(html[first : html.index('"', first)])))
    assert cmc.size == (900, 480)
