"""The backend contract (vdreid.backend.Backend) and the export recipe
(vdreid.verified_export), on the fake numpy backend and plain callables:
what a backend does not support is a NotSupported error naming it, trainer
options are one typed object a backend may refuse, and an export reaches its
destination only verified, atomically."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from vdreid.errors import ConfigError, ExportError, NotSupported
from vdreid.presets import recipe
from vdreid.trainer import TrainerOptions
from vdreid.verified_export import EXPORT_TOLERANCE, example_batch, verified_export

from fake_backend import FakeBackend


@pytest.fixture(scope="module")
def spec():
    return recipe("tiny").model_spec(3)


def test_what_a_backend_does_not_do_is_said_by_name(spec):
    backend = FakeBackend()
    model = backend.build(spec)
    with pytest.raises(NotSupported, match="the fake backend does not train.*torch or mindspore"):
        backend.trainer(model, recipe("tiny").loss, recipe("tiny").optim)  # trains = False

    class TrainsWithoutATrainer(FakeBackend):
        trains = True

    with pytest.raises(NotSupported, match="the fake backend does not support training"):
        TrainsWithoutATrainer().trainer(model, recipe("tiny").loss, recipe("tiny").optim)

    class FeaturesOnly(FakeBackend):
        name = "features-only"
        export_formats = ()

    bare = FeaturesOnly()
    with pytest.raises(NotSupported, match="the features-only backend does not support exporting"):
        bare.export(model, "npz", "m.npz", example=example_batch(spec, 2))
    assert bare.init_distributed("cpu") is None  # the trainer joins, if any


def test_an_option_a_backend_cannot_honour_is_refused_before_its_trainer_exists(spec):
    built = []

    class NoCompile(FakeBackend):
        trains = True
        unsupported_options = {"compile": "it compiles every step already"}

        def new_trainer(self, model, loss_spec, optim, options):
            built.append(options)
            raise AssertionError("not reached")

    backend = NoCompile()
    model = backend.build(spec)
    with pytest.raises(
        ConfigError,
        match=r"compile=True: the fake backend does not support it \(it compiles every step",
    ):
        backend.trainer(
            model, recipe("tiny").loss, recipe("tiny").optim, TrainerOptions(compile=True)
        )
    assert built == []
    with pytest.raises(AssertionError, match="not reached"):  # the default False is no request
        backend.trainer(model, recipe("tiny").loss, recipe("tiny").optim, TrainerOptions())


def test_trainer_options_are_one_typed_object():
    assert TrainerOptions(amp=False, seed=3).asked() == {"amp": False, "seed": 3}
    assert TrainerOptions().asked() == {}
    with pytest.raises(TypeError, match="warp"):
        TrainerOptions(warp=1)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="sync_bn=True needs distributed=True"):
        TrainerOptions(sync_bn=True)


def test_the_export_format_is_the_backends_own_unless_named():
    backend = FakeBackend()
    assert backend.export_format() == backend.export_format("npz") == "npz"
    with pytest.raises(ExportError, match=r"the fake backend exports npz; got format 'onnx'"):
        backend.export_format("onnx")


class _Recipe:
    """write / run / eager for verified_export: a file holding the features
    plus an offset, or a writer that fails."""

    def __init__(self, offset: float = 0.0, fail: bool = False, mode: int | None = None):
        self.offset, self.fail, self.mode = offset, fail, mode
        self.written: list = []

    def eager(self, images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1)[:, :8].astype(np.float64)

    def write(self, path, images):
        self.written.append(path)
        if self.fail:
            path.write_bytes(b"half")
            raise ExportError("the exporter gave up")
        with open(path, "wb") as fh:
            np.save(fh, self.eager(images) + self.offset)
        if self.mode is not None:  # as ms.export does (0400)
            os.chmod(path, self.mode)

    def run(self, path, images):
        return np.load(path)

    def export(self, path, **kw):
        return verified_export(
            path,
            "npy",
            example_batch(recipe("tiny").model_spec(3), 3),
            backend="test",
            write=self.write,
            run=self.run,
            eager=self.eager,
            **kw,
        )


@pytest.mark.parametrize("writer_mode", [None, 0o400])
def test_a_verified_file_is_moved_into_place_and_its_temporary_name_is_gone(tmp_path, writer_mode):
    steps = _Recipe(offset=1e-6, mode=writer_mode)
    out = tmp_path / "sub" / "m"
    report = steps.export(out)
    assert report.ok and report.path == str(out) and report.tolerance == EXPORT_TOLERANCE
    assert 5e-7 < report.max_abs_diff < 2e-6 and report.min_cosine > 0.99999
    (tmp,) = steps.written  # vdreid's temporary name, ending in the format's suffix
    assert tmp.parent == out.parent and tmp.name.startswith(".vdreid-tmp-")
    assert tmp.name.endswith("-m.npy")
    assert [p.name for p in out.parent.iterdir()] == ["m"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # the umask's, whatever the writer


@pytest.mark.parametrize("failure", ["drift", "writer"])
def test_a_failed_export_leaves_the_destination_as_it_was(tmp_path, failure):
    out = tmp_path / "m.npy"
    out.write_bytes(b"keep me")
    steps = _Recipe(offset=1e-2) if failure == "drift" else _Recipe(fail=True)
    with pytest.raises(ExportError) as err:
        steps.export(out)
    if failure == "drift":
        assert "max abs diff 0.01 > tolerance 0.0001" in str(err.value)
        assert f"{out} was left as it was" in str(err.value)
    assert out.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["m.npy"]


def test_the_tolerance_decides(tmp_path):
    assert _Recipe(offset=1e-2).export(tmp_path / "m.npy", tolerance=0.1).ok
    with pytest.raises(ConfigError, match="tolerance must be > 0"):
        _Recipe().export(tmp_path / "n.npy", tolerance=0.0)
    assert not (tmp_path / "n.npy").exists()
