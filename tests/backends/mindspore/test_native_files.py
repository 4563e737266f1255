"""`vdreid convert --to mindspore`: the .ckpt (written without MindSpore) is
the MindSpore model's own: mindspore.load_checkpoint + load_param_into_net
(strict) give the Cell vdreid builds from the checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mindspore")
from vdreid.checkpoint import save_checkpoint  # noqa: E402
from vdreid.workflows.convert import convert  # noqa: E402
from vdreid.workflows.parity import perturbed_state  # noqa: E402
from vdreid_mindspore import names  # noqa: E402
from vdreid_mindspore._quiet import mindspore as ms  # noqa: E402
from vdreid_mindspore.build import build_model  # noqa: E402

from foreign_files import narrow_spec  # noqa: E402


@pytest.mark.parametrize("preset", ["tiny", "msport"])
def test_to_mindspore_loads_into_the_built_model(tmp_path, preset):
    spec = narrow_spec(preset)
    state = perturbed_state(spec, seed=4)
    ckpt = save_checkpoint(tmp_path / "c.safetensors", state, spec=spec)
    out = convert(ckpt, tmp_path / "model.ckpt", to="mindspore").out
    model = build_model(spec)
    params = ms.load_checkpoint(str(out))
    not_loaded, unused = ms.load_param_into_net(model, params, strict_load=True)
    assert not not_loaded and not unused
    held = names.get_state(model, spec)
    assert list(held) == list(state)
    assert all(np.array_equal(held[k], state[k]) for k in state)
