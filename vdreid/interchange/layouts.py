"""Name maps: where each canonical tensor sits in the files of other code bases.

Every layout is a function from a canonical name (vdreid.spec.params) to
the key the other code base's file stores that tensor under, so a
conversion walks the target's parameter table and takes exactly one source
tensor per entry: whatever the table needs and the file lacks, and whatever
the file holds that no entry takes (and is not a known leftover, such as
the unused ImageNet fc or optimiser state), is an error naming the keys.

The layouts (docs/interchange.md shows them side by side):

- ``official``: the authors' PyTorch MVD (``RGB_`` / ``IR_`` / ``shared_``
  branches, ``*_backbone.base`` a torchvision ResNet-50, ``cam_256`` ...,
  ``*_Bottleneck``);
- ``msport``: the MindSpore model-zoo port (``rgb_backbone.visible``,
  ``ir_backbone.thermal``, ``shared_backbone.base``, ``*_bottleneck``);
- ``torchvision`` / ``timm``: an ImageNet ResNet (``conv1``, ``layer1.0``
  ..., ``downsample.0/1``; timm keeps torchvision's names);
- ``mindspore-zoo``: the MindSpore model zoo's ResNet (``down_sample_layer``,
  MindSpore's batch-norm names, ``end_point`` as its fc).

Batch-norm leaves are the only names a framework changes (TORCH_LEAVES,
MINDSPORE_LEAVES): these tables describe the FILES of the two frameworks,
which vdreid reads and writes here without them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping

from vdreid.spec.params import renamed_leaves

#: canonical batch-norm leaf -> the name torch's nn.BatchNorm stores it under
TORCH_LEAVES = {"scale": "weight", "shift": "bias", "mean": "running_mean", "var": "running_var"}
#: canonical batch-norm leaf -> the name MindSpore's nn.BatchNorm stores it under
MINDSPORE_LEAVES = {
    "scale": "gamma",
    "shift": "beta",
    "mean": "moving_mean",
    "var": "moving_variance",
}
#: torch's per-batch-norm step counter (no canonical counterpart)
TORCH_BN_COUNTER = "num_batches_tracked"
#: MindSpore optimiser and training-loop entries a .ckpt may carry beside the weights
MINDSPORE_TRAINING_KEYS = re.compile(
    r"^(moments|moment1|moment2|accum)\.|"
    r"^(learning_rate|global_step|momentum|beta1_power|beta2_power|epoch_num|step_num|"
    r"scale_sense|current_iterator_step|last_overflow_iterator_step)$"
)


@dataclasses.dataclass(frozen=True)
class Layout:
    """One code base's file layout (module docstring)."""

    name: str
    #: what the files are, for messages and docs
    description: str
    #: canonical name -> the file's key
    key: Callable[[str], str]
    #: (pattern, why) of file keys that are expected and left out
    leftovers: tuple[tuple[re.Pattern[str], str], ...]

    def source_keys(self, names: list[str]) -> dict[str, str]:
        """Canonical name -> file key for every name of a target table."""
        return {name: self.key(name) for name in names}

    def leftover(self, key: str) -> str | None:
        """Why ``key`` is left out, or None when the layout does not expect it."""
        return next((why for pattern, why in self.leftovers if pattern.search(key)), None)


def _bn_leaf(name: str, leaves: Mapping[str, str]) -> str:
    return renamed_leaves([name], leaves)[name]


def _trunk(rest: str, downsample: str) -> str:
    """A backbone path in torchvision's module names (``downsample.0`` is the
    shortcut's conv, ``.1`` its batch norm); ``downsample`` names the shortcut."""
    rest = rest.replace(".downsample.conv.", f".{downsample}.0.")
    return rest.replace(".downsample.bn.", f".{downsample}.1.")


# -- official: the authors' PyTorch code -------------------------------------------
OFFICIAL_BRANCHES = {"V": "RGB", "I": "IR", "S": "shared"}
#: channel attention before layer k is named after its input's channels
OFFICIAL_CAM = {"cam2": "cam_256", "cam3": "cam_512", "cam4": "cam_1024"}


def _sequential(index: str, first: int) -> str:
    """Head part ``fc1``/``bn1``/``fc2``... -> its index in the code's nn.Sequential
    (Linear, BN, ReLU per hidden layer: fc_j at 3(j-1), bn_j at 3(j-1)+1)."""
    kind, j = index[:2], int(index[2:])
    return str(3 * (j - 1) + (first if kind == "fc" else first + 1))


def _head_and_classifiers(rest: str, z_head: str, z_classifier: str) -> str | None:
    """head.* and z_classifier.* (the same in both MVD code bases)."""
    part, _, leaf = rest.partition(".")
    if part == "head":
        module, _, leaf = leaf.partition(".")
        return f"{z_head}.{_sequential(module, 0)}.{leaf}"
    if part == "z_classifier":
        module, _, leaf = leaf.partition(".")
        index = {"hidden": "0", "bn": "1", "fc": "4"}[module]
        return f"{z_classifier}.{index}.{leaf}"
    return None


def official_key(name: str) -> str:
    branch, rest = name.split(".", 1)
    p = OFFICIAL_BRANCHES[branch]
    rest = _bn_leaf(rest, TORCH_LEAVES)
    done = _head_and_classifiers(
        rest, f"{p}_Bottleneck.bottleneck.model", f"{p}_Bottleneck.classifier"
    )
    if done is not None:
        return done
    if rest.startswith("backbone.cam"):
        cam = rest.split(".")[1]
        return f"{p}_backbone.{OFFICIAL_CAM[cam]}._cam_module.gamma"
    if rest.startswith("backbone."):
        return f"{p}_backbone.base.{_trunk(rest[len('backbone.') :], 'downsample')}"
    if rest.startswith("neck.bn."):
        return f"{p}_backbone.bottleneck.{rest[len('neck.bn.') :]}"
    if rest.startswith("classifier.fc."):
        return f"{p}_backbone.classifier.0.{rest[len('classifier.fc.') :]}"
    raise KeyError(name)


# -- msport: the MindSpore model-zoo port -------------------------------------------
MSPORT_BACKBONES = {
    "V": "rgb_backbone.visible",
    "I": "ir_backbone.thermal",
    "S": "shared_backbone.base",
}
MSPORT_HEADS = {"V": "rgb_bottleneck", "I": "ir_bottleneck", "S": "shared_bottleneck"}


def msport_key(name: str) -> str:
    branch, rest = name.split(".", 1)
    trunk, head = MSPORT_BACKBONES[branch], MSPORT_HEADS[branch]
    rest = _bn_leaf(rest, MINDSPORE_LEAVES)
    done = _head_and_classifiers(rest, f"{head}.bottleneck.model", f"{head}.classifier")
    if done is not None:
        return done
    if rest.startswith("backbone."):
        return f"{trunk}.{_trunk(rest[len('backbone.') :], 'down_sample_layer')}"
    if rest.startswith("neck.bn."):
        return f"{trunk}.bottleneck.{rest[len('neck.bn.') :]}"
    if rest.startswith("classifier.fc."):
        return f"{trunk}.classifier.{rest[len('classifier.fc.') :]}"
    raise KeyError(name)


# -- ImageNet backbones (branch-less: ``backbone.*``) --------------------------------
def _backbone_key(leaves: Mapping[str, str], downsample: str) -> Callable[[str], str]:
    def key(name: str) -> str:
        if not name.startswith("backbone."):
            raise KeyError(name)
        return _trunk(_bn_leaf(name, leaves)[len("backbone.") :], downsample)

    return key


_COUNTER = (re.compile(rf"\.{TORCH_BN_COUNTER}$"), "batch-norm step counters (vdreid keeps none)")
_TRAINING = (MINDSPORE_TRAINING_KEYS, "optimiser and training-loop state")

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "official",
            "the authors' PyTorch MVD checkpoint (RGB_/IR_/shared_ branches)",
            official_key,
            (_COUNTER, (re.compile(r"_backbone\.base\.fc\."), "the unused ImageNet fc")),
        ),
        Layout(
            "msport",
            "the MindSpore model-zoo port's .ckpt (research/cv/MVD)",
            msport_key,
            (_TRAINING,),
        ),
        Layout(
            "torchvision",
            "a torchvision ImageNet ResNet state dict",
            _backbone_key(TORCH_LEAVES, "downsample"),
            (_COUNTER, (re.compile(r"^fc\."), "the ImageNet classifier")),
        ),
        Layout(
            "timm",
            "a timm ResNet (torchvision's names, often as safetensors)",
            _backbone_key(TORCH_LEAVES, "downsample"),
            (_COUNTER, (re.compile(r"^fc\."), "the ImageNet classifier")),
        ),
        Layout(
            "mindspore-zoo",
            "a MindSpore model-zoo ResNet .ckpt (official/cv/ResNet)",
            _backbone_key(MINDSPORE_LEAVES, "down_sample_layer"),
            (_TRAINING, (re.compile(r"^end_point\."), "the ImageNet classifier")),
        ),
    )
}
#: layouts that hold a whole MVD model (the rest hold one ImageNet backbone)
MODEL_LAYOUTS = ("official", "msport")
