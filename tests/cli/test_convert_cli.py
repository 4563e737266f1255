"""`vdreid convert` through Typer's CliRunner: the report, --json, and one
clear line with exit 2 (no traceback) for every file it cannot use. The
conversions themselves: tests/unit/test_convert.py; without torch and
MindSpore installed: test_convert_needs_no_framework below."""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from safetensors.numpy import save_file
from typer.testing import CliRunner

from vdreid.checkpoint import load_checkpoint
from vdreid.cli.app import app
from vdreid.interchange.mindspore_ckpt import write_mindspore_ckpt
from vdreid.interchange.native import torch_file_bytes

import foreign_files as ff
from without_frameworks import run_without_frameworks

#: one pytest-xdist worker runs this module: its shared fixtures are costly
pytestmark = pytest.mark.xdist_group("convert-cli")

runner = CliRunner()


def convert(*args: str):
    return runner.invoke(app, ["convert", *args])


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    path = tmp_path_factory.mktemp("official") / "model_best.pth.tar"
    obj = OrderedDict(model=ff.official_state(), epoch=80, best_top1=0.62)
    path.write_bytes(_torch_dict_bytes(obj))
    return path


def _torch_dict_bytes(obj) -> bytes:
    """torch.save's zip of {'model': state, 'epoch', 'best_top1'} (written without torch)."""
    raw = torch_file_bytes(obj["model"])
    archive = zipfile.ZipFile(io.BytesIO(raw))
    pickled = archive.read("archive/data.pkl")
    # {'model': <the state dict pickle>, 'epoch': 80, 'best_top1': 0.62}
    inner = pickled[2:-1]  # without PROTO and STOP
    extras = b"X\x05\x00\x00\x00epochK" + bytes([obj["epoch"]])
    extras += b"X\x09\x00\x00\x00best_top1G" + np.float64(obj["best_top1"]).byteswap().tobytes()
    outer = b"\x80\x02}(X\x05\x00\x00\x00model" + inner + extras + b"u."
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name in archive.namelist():
            out.writestr(name, outer if name.endswith("data.pkl") else archive.read(name))
    return buffer.getvalue()


def test_convert_reports_what_it_did(official, tmp_path):
    out = tmp_path / "official.safetensors"
    r = convert(str(official), "--out", str(out))
    assert r.exit_code == 0, r.output
    for text in (
        "(official)",
        "preset official, 395 classes",
        "888 placed",
        "171: batch-norm",
        "6: the unused ImageNet fc",
        "epoch",
        "80",
        "best_top1",
        "0.62",
    ):
        assert text in r.output, text
    assert load_checkpoint(out).meta["source_best_top1"] == "0.62"


def test_convert_json(official, tmp_path):
    r = convert(str(official), "--out", str(tmp_path / "o.safetensors"), "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["layout"] == "official" and report["preset"] == "official"
    assert report["num_classes"] == 395 and report["tensors"] == 888 and len(report["sha256"]) == 64
    assert report["source_meta"] == {"source_epoch": "80", "source_best_top1": "0.62"}


def _evil(path):
    class RunsCode:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"model": RunsCode()}, protocol=2))
    path.write_bytes(buffer.getvalue())


def _unknown_safetensors(path):
    save_file({"encoder.0.weight": np.ones((2, 2), np.float32)}, path)


def _list_pickle(path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02]q\x00(K\x01K\x02e.")  # [1, 2]
    path.write_bytes(buffer.getvalue())


def _bad_crc(path):
    raw = write_mindspore_ckpt(path, ff.mindspore_zoo_resnet50(optimiser=False)).read_bytes()
    path.write_bytes(raw + b"crc_num" + (7).to_bytes(10, "big"))


def _incomplete_official(path):
    state = ff.official_state()
    del state["RGB_backbone.base.layer3.2.conv2.weight"]
    path.write_bytes(torch_file_bytes(state))


CASES = {
    "missing": (lambda p: None, "does not exist"),
    "folder": (lambda p: p.mkdir(), "is a folder"),
    "empty": (lambda p: p.write_bytes(b""), "is empty"),
    "text": (lambda p: p.write_text("<html>404</html>"), "not a weight file vdreid reads"),
    "truncated-zip": (
        lambda p: p.write_bytes(torch_file_bytes(ff.torchvision_resnet50())[:5000]),
        "damaged zip archive",
    ),
    "npz": (lambda p: np.savez(open(p, "wb"), a=np.ones(2)), "not a torch file"),
    "code": (_evil, r"refused: its pickle asks for (posix|os)\.system"),
    "list": (_list_pickle, "holds a list, not a dict of tensors"),
    "unknown-keys": (_unknown_safetensors, "no weight layout vdreid knows.*encoder.0.weight"),
    "bad-crc": (_bad_crc, "CRC32 MindSpore stored in the file does not match"),
    "incomplete": (
        _incomplete_official,
        r"1 missing: RGB_backbone\.base\.layer3\.2\.conv2\.weight",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_unusable_file_gets_one_clear_line(tmp_path, case):
    make, message = CASES[case]
    path = tmp_path / "weights.pth"
    make(path)
    r = convert(str(path), "--out", str(tmp_path / "out.safetensors"))
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.output.startswith("error: ")
    assert re.search(message, " ".join(r.output.split())), r.output
    assert not (tmp_path / "out.safetensors").exists()


def test_convert_refuses_to_write_onto_its_source(official):
    r = convert(str(official), "--out", str(official))
    assert r.exit_code == 2 and "is the file being converted" in r.output


def test_a_backbone_has_no_framework_model_to_write(tmp_path):
    path = write_mindspore_ckpt(tmp_path / "zoo.ckpt", ff.mindspore_zoo_resnet50())
    r = convert(str(path), "--out", str(tmp_path / "x.pt"), "--to", "torch")
    assert r.exit_code == 2 and "one ImageNet backbone, not an MVD model" in r.output


def test_convert_needs_no_framework(official, tmp_path):
    """torch and MindSpore import-blocked: an official .pth.tar (torch's zip
    format) and a model-zoo .ckpt convert, and --to mindspore writes a .ckpt.
    (torch's legacy format without torch: test_interchange_readers reads the
    files torch writes with the same code, and refuses code in both.)"""
    zoo = write_mindspore_ckpt(tmp_path / "zoo.ckpt", ff.mindspore_zoo_resnet50())
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from vdreid.cli.app import app\n"
        f"for src in [{str(official)!r}, {str(zoo)!r}]:\n"
        f"    r = CliRunner().invoke(app, ['convert', src, '--out', src + '.safetensors', '--json'])\n"
        "    assert r.exit_code == 0, r.output\n"
        f"r = CliRunner().invoke(app, ['convert', {str(official)!r}, '--out', {str(tmp_path / 'm.ckpt')!r}, '--to', 'mindspore'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert not {'torch', 'mindspore'} & set(sys.modules), sorted(sys.modules)\n"
        "print('converted without frameworks')\n"
    )
    done = run_without_frameworks(["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "converted without frameworks" in done.stdout
    assert load_checkpoint(f"{zoo}.safetensors").meta["bn_eps"] == "0.0001"
