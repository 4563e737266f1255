"""Junk on the command line never ends in a traceback.

Hypothesis feeds every command of the app (found by walking the Click tree,
so a new command is covered the day it is added) random values for random
subsets of its options: numbers of every size, NaN, text, paths that do not
exist, folders, files of junk bytes, non-UTF-8 and random TOML config files,
``--set`` assignments. The property: the command exits 0, 1 or 2, prints
no traceback and raises nothing. Work that valid inputs would start
(building a network, synthesising a dataset) is stubbed out: reaching it
counts as a pass, since this test is about the checks in front of it.
"""

from __future__ import annotations

import enum
import os
import string
from pathlib import Path

import numpy as np
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from vdreid import registry
from vdreid.checkpoint import save_checkpoint
from vdreid.cli.app import app
from vdreid.config import TrainConfig
from vdreid.data.synth import Shape, synthesize
from vdreid.presets import recipe
from vdreid.spec import init_state


class WorkStarted(Exception):
    """Raised where valid input would start real work (the stubs below)."""


def _commands(group, prefix: tuple[str, ...] = ()):
    """(command words, options, arguments) of every command under the Typer
    app's Click tree."""
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))
        else:
            options = [p for p in cmd.params if isinstance(p, typer.core.TyperOption)]
            arguments = [p for p in cmd.params if isinstance(p, typer.core.TyperArgument)]
            yield (*prefix, name), options, arguments


COMMANDS = list(_commands(typer.main.get_command(app)))
FIELDS = sorted(TrainConfig.model_fields) + ["optim.lr", "optim.milestones", "augment.flip"]
SAFE = string.ascii_letters + string.digits + "_-.,=[]{}:"

# Paths relative to the scratch folder the commands run in (see ``scratch``).
PATHS = [
    "data",  # a tiny SYSU-like tree
    "ckpt.safetensors",  # a valid checkpoint
    "junk.bin",  # random bytes
    "latin1.toml",  # not UTF-8
    "empty",  # a zero-byte file
    "folder",  # an empty folder
    "junk.bin/below",  # below a file
    "missing/nowhere.x",
    "out",
    "/proc/vdreid-fuzz.onnx",  # cannot be created
    "random.toml",  # written anew for each example
]

texts = st.text(SAFE, min_size=0, max_size=12).filter(lambda t: not t.startswith(".."))
json_junk = st.sampled_from(["[1]", "{}", "[]", "null", "true", '"x"', "[64]", "[0,0]", "[5,2]"])
numbers = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-1", "1", "1e9", "nan", "inf", "2", "10"]),
)
toml_scalars = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["nan", "inf", "-inf", "true", "false", "1.5", "[]", "{}", '"tiny"', "[1]"]),
    texts.map(lambda t: f'"{t}"'),
    st.lists(st.integers(-5, 300), max_size=3).map(str),
)
toml_files = st.lists(
    st.tuples(st.sampled_from(sorted(TrainConfig.model_fields) + ["junk"]), toml_scalars),
    max_size=6,
).map(lambda kv: "".join(f"{k} = {v}\n" for k, v in dict(kv).items()))


def _value(option) -> st.SearchStrategy[str]:
    kind = getattr(getattr(option, "type_descriptor", None), "annotation", str)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return st.one_of(st.sampled_from([m.value for m in kind]), texts)
    if kind in (int, float) or str(kind).startswith(("int |", "float |")):
        return st.one_of(numbers, texts)
    if option.multiple and "--set" in option.opts:
        return st.one_of(
            st.tuples(st.sampled_from(FIELDS), st.one_of(numbers, json_junk, texts)).map("=".join),
            texts,
        )
    return st.one_of(st.sampled_from(PATHS), texts, numbers)


@st.composite
def command_lines(draw) -> tuple[list[str], str]:
    path, options, arguments = draw(st.sampled_from(COMMANDS))
    argv = list(path)
    positional = []  # after "--": a value starting with "-" is not taken for an option
    for argument in arguments:
        count = draw(st.integers(int(argument.required), 1 if argument.nargs == 1 else 3))
        positional += [draw(st.one_of(st.sampled_from(PATHS), texts)) for _ in range(count)]
    required = [o for o in options if o.required]
    chosen = draw(st.lists(st.sampled_from(options), max_size=6, unique_by=id)) if options else []
    for option in required + [o for o in chosen if not o.required]:
        if option.param_type_name == "argument":  # a positional value (convert's SOURCE)
            argv.append(draw(_value(option)))
            continue
        flag = draw(st.sampled_from(option.opts + option.secondary_opts))
        if option.is_flag:
            argv.append(flag)
            continue
        argv += [flag, draw(_value(option))]
    if positional:
        argv += ["--", *positional]
    return argv, draw(toml_files)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    synthesize("sysu", root / "data", shape=Shape(ids=4, test_ids=2, per_cam=1, size=(16, 8)),
               progress=False)  # fmt: skip
    spec = recipe("tiny").model_spec(4)
    save_checkpoint(root / "ckpt.safetensors", init_state(spec, 0), spec=spec, backend="torch")
    (root / "junk.bin").write_bytes(np.random.default_rng(0).bytes(300))
    (root / "latin1.toml").write_bytes(b'root = "caf\xe9"\n')
    (root / "empty").write_bytes(b"")
    (root / "folder").mkdir()
    return root


@pytest.fixture
def no_real_work(fake_backend):
    """After the fake backend is registered (tests/cli/conftest.py): asking the
    registry for it means the checks passed and work would start."""
    mp = pytest.MonkeyPatch()
    real_get = registry.get

    def get(name, *args, **kwargs):
        if isinstance(name, str) and name in registry.registered():
            raise WorkStarted(name)
        return real_get(name, *args, **kwargs)  # unknown names: the real error

    def synthesize_stub(*args, **kwargs):
        raise WorkStarted("synthesize")

    mp.setattr(registry, "get", get)
    mp.setattr("vdreid.data.synth.synthesize", synthesize_stub)
    mp.setattr("vdreid.workflows.demo.synthesize", synthesize_stub)
    # convert reads and converts (its readers are fuzzed too); writing is the work
    mp.setattr("vdreid.workflows.convert.save_checkpoint", synthesize_stub)
    mp.setattr("vdreid.workflows.convert.native_bytes", synthesize_stub)
    yield
    mp.undo()


#: Derandomised: the same examples on every run, so a failure is reproducible.
CHEAP = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@settings(CHEAP, max_examples=300)
@given(line=command_lines())
def test_junk_never_ends_in_a_traceback(scratch, no_real_work, line):
    argv, toml = line
    (scratch / "random.toml").write_text(toml)
    r = _run(scratch, argv)
    if isinstance(r.exception, WorkStarted):
        return  # every check in front of the work passed
    assert r.exit_code in (0, 1, 2), (argv, r.output)
    assert r.exception is None or isinstance(r.exception, SystemExit), (argv, r.exception)
    assert "Traceback" not in r.output, (argv, r.output)


def _run(scratch: Path, argv: list[str]):
    here = os.getcwd()
    os.chdir(scratch)
    try:
        return CliRunner().invoke(app, argv, env={"COLUMNS": "200"})
    finally:
        os.chdir(here)


@settings(CHEAP, max_examples=100)
@given(
    toml=toml_files,
    sets=st.lists(
        st.tuples(st.sampled_from(FIELDS), st.one_of(numbers, json_junk)).map("=".join),
        max_size=2,
    ),
)
def test_junk_config_files_never_end_in_a_traceback(scratch, no_real_work, toml, sets):
    (scratch / "random.toml").write_text(toml)
    argv = ["train", "--config", "random.toml", "--quiet"]
    r = _run(scratch, argv + [a for s in sets for a in ("--set", s)])
    if isinstance(r.exception, WorkStarted):
        return
    assert r.exit_code == 2, (toml, sets, r.output)
    assert r.exception is None or isinstance(r.exception, SystemExit), (toml, sets, r.exception)
    assert "Traceback" not in r.output, (toml, sets, r.output)
