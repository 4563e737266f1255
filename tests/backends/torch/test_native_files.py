"""`vdreid convert --to torch`: the file (written without torch) is the torch
model's own state dict: torch.load(weights_only=True) + load_state_dict
(strict) give the model vdreid builds from the checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vdreid.checkpoint import save_checkpoint  # noqa: E402
from vdreid.workflows.convert import convert  # noqa: E402
from vdreid.workflows.parity import perturbed_state  # noqa: E402
from vdreid_torch import names  # noqa: E402
from vdreid_torch.build import build_model  # noqa: E402

from foreign_files import narrow_spec  # noqa: E402


@pytest.mark.parametrize("preset", ["tiny", "msport"])
def test_to_torch_loads_into_the_built_model(tmp_path, preset):
    spec = narrow_spec(preset)
    state = perturbed_state(spec, seed=4)
    ckpt = save_checkpoint(tmp_path / "c.safetensors", state, spec=spec)
    out = convert(ckpt, tmp_path / "model.pt", to="torch").out
    model = build_model(spec)
    missing, unexpected = model.load_state_dict(torch.load(out, weights_only=True), strict=True)
    assert not missing and not unexpected
    held = names.get_state(model, spec)
    assert list(held) == list(state)
    assert all(np.array_equal(held[k], state[k]) for k in state)
