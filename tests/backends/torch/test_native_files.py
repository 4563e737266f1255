"""`vdreid convert --to torch`: the file (written without torch) is the torch
model's own state dict: torch.load(weights_only=True) + load_state_dict
(strict) give the model vdreid builds from the checkpoint."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vdreid.checkpoint import save_checkpoint  # noqa: E402
from vdreid.presets import recipe  # noqa: E402
from vdreid.spec.builders import mvd_model  # noqa: E402
from vdreid.workflows.convert import convert  # noqa: E402
from vdreid.workflows.parity import perturbed_state  # noqa: E402
from vdreid_torch import names  # noqa: E402
from vdreid_torch.build import build_model  # noqa: E402


def _spec(preset: str):
    """tiny, or msport's network ("same" padding, bn3 eps) at 1/16 width: the
    names and layout of the full one in a file of a few MB."""
    if preset == "tiny":
        return recipe("tiny").model_spec(5)
    narrow = dataclasses.replace(
        recipe(preset).design, width=1 / 16, head_hidden=(32, 16), z_width=16, z_hidden=16
    )
    return mvd_model(preset, 5, narrow)


@pytest.mark.parametrize("preset", ["tiny", "msport"])
def test_to_torch_loads_into_the_built_model(tmp_path, preset):
    spec = _spec(preset)
    state = perturbed_state(spec, seed=4)
    ckpt = save_checkpoint(tmp_path / "c.safetensors", state, spec=spec)
    out = convert(ckpt, tmp_path / "model.pt", to="torch").out
    model = build_model(spec)
    missing, unexpected = model.load_state_dict(torch.load(out, weights_only=True), strict=True)
    assert not missing and not unexpected
    held = names.get_state(model, spec)
    assert list(held) == list(state)
    assert all(np.array_equal(held[k], state[k]) for k in state)
