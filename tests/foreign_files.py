"""Stand-ins for other code bases' weight files, and independent maps back to canonical names.

Each builder writes keys and shapes the way that code base names them (the
authors' PyTorch MVD from the key table in tests/data, the MindSpore port,
torchvision, timm, MindSpore's model zoo) with random but sane values
(so a ResNet-50 forward stays finite). The ``*_to_canonical`` functions map
the keys back with plain string rules written here, independently of
vdreid.interchange.layouts, so a conversion is checked against a second
reading of the same layout.
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vdreid.presets import recipe
from vdreid.spec.builders import mvd_model

DATA = Path(__file__).parent / "data"
OFFICIAL_TABLE = DATA / "mvd_official_state_dict_keys.tsv"
TORCH_BN = ("weight", "bias", "running_mean", "running_var")
MINDSPORE_BN = ("gamma", "beta", "moving_mean", "moving_variance")


def sane_value(key: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Values a ResNet-50 forward survives: He-scaled weights, batch norms near identity."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf in ("running_var", "moving_variance"):
        return rng.uniform(0.5, 2.0, shape).astype(np.float32)
    if leaf in ("running_mean", "moving_mean", "bias", "beta"):
        return rng.normal(0.0, 0.1, shape).astype(np.float32)
    if leaf == "gamma" and len(shape) == 1 and shape[0] == 1:  # an attention scalar
        return rng.normal(0.0, 0.5, shape).astype(np.float32)
    if len(shape) == 1:  # a batch-norm scale
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    fan_in = int(np.prod(shape[1:]))
    return rng.normal(0.0, np.sqrt(1.0 / fan_in), shape).astype(np.float32)


# -- the authors' PyTorch MVD -------------------------------------------------------
def official_state(seed: int = 0, prefix: str = "", classes: int = 395) -> OrderedDict:
    """Every entry of the key table (1,065), as numpy arrays; counters int64.
    ``classes`` replaces SYSU-MM01's 395 classifier rows (RegDB: 206)."""
    rng = np.random.default_rng(seed)
    out: OrderedDict = OrderedDict()
    for line in OFFICIAL_TABLE.read_text().splitlines()[1:]:
        key, shape, dtype = line.split("\t")
        dims = () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))
        dims = tuple(classes if d == 395 else d for d in dims)
        if dtype == "int64":
            out[prefix + key] = np.array(rng.integers(1, 1000), np.int64)
        else:
            out[prefix + key] = sane_value(key, dims, rng)
    return out


OFFICIAL_RULES = [
    (r"^RGB_", "V."),
    (r"^IR_", "I."),
    (r"^shared_", "S."),
    (r"\.backbone\.base\.", ".backbone."),
    (r"\.cam_256\._cam_module\.gamma$", ".cam2.attn_scale"),
    (r"\.cam_512\._cam_module\.gamma$", ".cam3.attn_scale"),
    (r"\.cam_1024\._cam_module\.gamma$", ".cam4.attn_scale"),
    (r"\.backbone\.bottleneck\.", ".neck.bn."),
    (r"\.backbone\.classifier\.0\.", ".classifier.fc."),
    (r"\.Bottleneck\.bottleneck\.model\.0\.", ".head.fc1."),
    (r"\.Bottleneck\.bottleneck\.model\.1\.", ".head.bn1."),
    (r"\.Bottleneck\.bottleneck\.model\.3\.", ".head.fc2."),
    (r"\.Bottleneck\.bottleneck\.model\.4\.", ".head.bn2."),
    (r"\.Bottleneck\.bottleneck\.model\.6\.", ".head.fc3."),
    (r"\.Bottleneck\.classifier\.0\.", ".z_classifier.hidden."),
    (r"\.Bottleneck\.classifier\.1\.", ".z_classifier.bn."),
    (r"\.Bottleneck\.classifier\.4\.", ".z_classifier.fc."),
    (r"\.downsample\.0\.", ".downsample.conv."),
    (r"\.downsample\.1\.", ".downsample.bn."),
]
#: module names that are batch norms, after the rules above
BN_MODULE = re.compile(r"\.bn\d?$")


def _renamed(key: str, rules, leaves: tuple[str, ...]) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    head, _, leaf = key.rpartition(".")
    if BN_MODULE.search(head) and leaf in leaves:
        leaf = ("scale", "shift", "mean", "var")[leaves.index(leaf)]
    return f"{head}.{leaf}"


def official_to_canonical(state: dict) -> dict[str, np.ndarray]:
    """The model tensors of an official state dict under canonical names."""
    return {
        _renamed(k, OFFICIAL_RULES, TORCH_BN): v
        for k, v in state.items()
        if not k.endswith("num_batches_tracked") and ".base.fc." not in k
    }


# -- ResNets of torchvision / timm / MindSpore's zoo ------------------------------------
def resnet50_shapes(bn: tuple[str, ...], down: str, fc: str, classes: int) -> dict:
    """Keys and shapes of a ResNet-50 named as torchvision (``downsample``) or
    MindSpore's zoo (``down_sample_layer``) names it."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}
    shapes.update({f"bn1.{leaf}": (64,) for leaf in bn})
    cin = 64
    for k, (planes, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        for i in range(blocks):
            p, width = f"layer{k}.{i}", planes * 4
            shapes[f"{p}.conv1.weight"] = (planes, cin, 1, 1)
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            shapes[f"{p}.conv3.weight"] = (width, planes, 1, 1)
            for j, c in ((1, planes), (2, planes), (3, width)):
                shapes.update({f"{p}.bn{j}.{leaf}": (c,) for leaf in bn})
            if i == 0:
                shapes[f"{p}.{down}.0.weight"] = (width, cin, 1, 1)
                shapes.update({f"{p}.{down}.1.{leaf}": (width,) for leaf in bn})
            cin = width
    shapes[f"{fc}.weight"], shapes[f"{fc}.bias"] = (classes, 2048), (classes,)
    return shapes


def torchvision_resnet50(seed: int = 0) -> OrderedDict:
    """torchvision's resnet50 keys and shapes (as in resnet50-19c8e357.pth: no counters)."""
    rng = np.random.default_rng(seed)
    shapes = resnet50_shapes(TORCH_BN, "downsample", "fc", 1000)
    return OrderedDict((k, sane_value(k, s, rng)) for k, s in shapes.items())


def mindspore_zoo_resnet50(seed: int = 0, optimiser: bool = True) -> dict[str, np.ndarray]:
    """The MindSpore model zoo's resnet50 .ckpt tensors, with Momentum's state."""
    rng = np.random.default_rng(seed)
    shapes = resnet50_shapes(MINDSPORE_BN, "down_sample_layer", "end_point", 1001)
    out = {k: sane_value(k, s, rng) for k, s in shapes.items()}
    if optimiser:
        trainable = [k for k in shapes if not k.endswith(("moving_mean", "moving_variance"))]
        out.update({f"moments.{k}": np.zeros(shapes[k], np.float32) for k in trainable})
        out["learning_rate"] = np.array(0.1, np.float32)
        out["momentum"] = np.array(0.9, np.float32)
        out["global_step"] = np.array([5004], np.int32)
    return out


def backbone_to_canonical(state: dict, bn: tuple[str, ...], down: str) -> dict:
    """``backbone.*`` canonical tensors of a torchvision- or zoo-named ResNet."""
    rules = [(rf"\.{down}\.0\.", ".downsample.conv."), (rf"\.{down}\.1\.", ".downsample.bn.")]
    return {
        _renamed(f"backbone.{k}", rules, bn): v
        for k, v in state.items()
        if k.startswith(("conv1", "bn1", "layer"))
    }


# -- the MindSpore port -------------------------------------------------------------
MSPORT_TRUNKS = {
    "V": "rgb_backbone.visible",
    "I": "ir_backbone.thermal",
    "S": "shared_backbone.base",
}
MSPORT_HEADS = {"V": "rgb_bottleneck", "I": "ir_bottleneck", "S": "shared_bottleneck"}


def msport_state(classes: int = 395, seed: int = 0) -> dict[str, np.ndarray]:
    """The port's parameter names (its Cells' attribute paths) and shapes: 879 tensors."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    trunk = resnet50_shapes(MINDSPORE_BN, "down_sample_layer", "classifier", classes)
    for branch in "VIS":
        t, h = MSPORT_TRUNKS[branch], MSPORT_HEADS[branch]
        shapes = {f"{t}.{k}": s for k, s in trunk.items()}
        shapes.update({f"{t}.bottleneck.{leaf}": (2048,) for leaf in MINDSPORE_BN})
        dense = {"0": (1000, 2048), "3": (500, 1000), "6": (512, 500)}
        for i, (o, n) in dense.items():
            shapes[f"{h}.bottleneck.model.{i}.weight"], shapes[f"{h}.bottleneck.model.{i}.bias"] = (
                (o, n),
                (o,),
            )
        for i, c in (("1", 1000), ("4", 500)):
            shapes.update({f"{h}.bottleneck.model.{i}.{leaf}": (c,) for leaf in MINDSPORE_BN})
        shapes[f"{h}.classifier.0.weight"], shapes[f"{h}.classifier.0.bias"] = (256, 512), (256,)
        shapes.update({f"{h}.classifier.1.{leaf}": (256,) for leaf in MINDSPORE_BN})
        shapes[f"{h}.classifier.4.weight"], shapes[f"{h}.classifier.4.bias"] = (
            (classes, 256),
            (classes,),
        )
        out.update({k: sane_value(k, s, rng) for k, s in shapes.items()})
    return out


def msport_to_canonical(state: dict) -> dict[str, np.ndarray]:
    rules = [(rf"^{re.escape(t)}\.", f"{b}.backbone.") for b, t in MSPORT_TRUNKS.items()]
    rules += [(rf"^{h}\.", f"{b}.H.") for b, h in MSPORT_HEADS.items()]
    rules += [
        (r"\.backbone\.bottleneck\.", ".neck.bn."),
        (r"\.backbone\.classifier\.", ".classifier.fc."),
        (r"\.H\.bottleneck\.model\.0\.", ".head.fc1."),
        (r"\.H\.bottleneck\.model\.1\.", ".head.bn1."),
        (r"\.H\.bottleneck\.model\.3\.", ".head.fc2."),
        (r"\.H\.bottleneck\.model\.4\.", ".head.bn2."),
        (r"\.H\.bottleneck\.model\.6\.", ".head.fc3."),
        (r"\.H\.classifier\.0\.", ".z_classifier.hidden."),
        (r"\.H\.classifier\.1\.", ".z_classifier.bn."),
        (r"\.H\.classifier\.4\.", ".z_classifier.fc."),
        (r"\.down_sample_layer\.0\.", ".downsample.conv."),
        (r"\.down_sample_layer\.1\.", ".downsample.bn."),
    ]
    return {_renamed(k, rules, MINDSPORE_BN): v for k, v in state.items()}


def save_torch(path: Path, obj, *, zipped: bool = True) -> Path:
    """torch.save of ``obj`` with numpy arrays turned into tensors (needs torch)."""
    import torch

    def tensors(value):
        if isinstance(value, np.ndarray):
            return torch.from_numpy(value.copy())
        if isinstance(value, Mapping):
            return type(value)((k, tensors(v)) for k, v in value.items())
        return value

    torch.save(tensors(obj), path, _use_new_zipfile_serialization=zipped)
    return path


def narrow_spec(preset: str, classes: int = 5):
    """tiny, or ``preset``'s network at 1/16 width (msport: "same" padding, bn3
    eps): the names and layout of the full one in a file of a few MB."""
    if preset == "tiny":
        return recipe("tiny").model_spec(classes)
    narrow = dataclasses.replace(
        recipe(preset).design, width=1 / 16, head_hidden=(32, 16), z_width=16, z_hidden=16
    )
    return mvd_model(preset, classes, narrow)
