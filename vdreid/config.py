"""Run configurations: pydantic models, TOML files and CLI overrides.

A run is described by one :class:`TrainConfig` (or :class:`EvalConfig`).
Values come, in increasing priority, from the model's defaults, the
preset's recipe, a TOML file (``--config``), and ``--set section.key=value``
overrides or dedicated CLI flags. Validation errors are re-raised as one
ConfigError naming each offending field, the value received and what is
allowed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vdreid.errors import ConfigError, SpecError
from vdreid.optim import OptimConfig
from vdreid.presets import DEFAULT_PRESET, RECIPES, recipe

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib  # type: ignore[no-redef]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AugmentConfig(_Frozen):
    """Host-side augmentation (numpy, vdreid.data.transforms)."""

    flip: float = Field(0.5, ge=0, le=1, description="horizontal flip probability")
    pad: int = Field(0, ge=0, description="zero padding before a random crop back to size; 0 = off")
    erasing: float = Field(0.0, ge=0, le=1, description="random erasing probability")
    grey: float = Field(
        0.0, ge=0, le=1, description="random greyscale probability (visible images)"
    )
    channel: float = Field(0.0, ge=0, le=1, description="random channel augmentation probability")


class ProtocolConfig(_Frozen):
    """Which evaluation protocol to run (docs/evaluation.md)."""

    mode: Literal["all", "indoor"] = "all"
    shots: Literal[1, 10] = 1
    sampler: Literal["official", "agw"] = "official"
    direction: Literal["v2t", "t2v"] | None = Field(
        None, description="v2t: visible queries, t2v: infrared queries; None = the dataset default"
    )
    trials: int = Field(10, ge=1, le=10)
    distance: Literal["euclidean", "cosine"] | None = None
    rerank: bool = False
    flip: bool = False


#: protocol options that shape some datasets' protocols only (docs/evaluation.md)
APPLIES_TO: dict[str, tuple[str, ...]] = {
    "mode": ("sysu",),
    "shots": ("sysu",),
    "sampler": ("sysu",),
    "trials": ("sysu", "llcm"),
}
_DATASET_NAMES = {"sysu": "SYSU-MM01", "llcm": "LLCM"}


def refuse_inapplicable(dataset: str, given: Mapping[str, str]) -> None:
    """ConfigError when ``given`` (protocol field -> how the user spelt it,
    e.g. ``"--mode indoor"``) sets an option the dataset's protocol lacks:
    it would be ignored, yet look as if it had been applied."""
    bad = [(field, spelt) for field, spelt in given.items() if dataset not in APPLIES_TO[field]]
    if bad:
        parts = [
            f"{spelt} applies to {' and '.join(_DATASET_NAMES[d] for d in APPLIES_TO[field])} only"
            for field, spelt in bad
        ]
        raise ConfigError(
            f"{'; '.join(parts)}: the {dataset} protocol has no such choice "
            f"(docs/evaluation.md); leave {'them' if len(bad) > 1 else 'it'} out"
        )


class TrainConfig(_Frozen):
    backend: str = "torch"
    preset: str = Field(DEFAULT_PRESET, description=f"one of {', '.join(RECIPES)} (vdreid.presets)")
    input_size: tuple[int, int] | None = Field(
        None, description="network input (H, W) in pixels; None = the model preset's"
    )
    dataset: Literal["sysu", "regdb", "llcm", "manifest"] = "sysu"
    root: Path = Path("data/sysu")
    trial: int | None = Field(None, ge=1, le=10, description="RegDB trial (1..10)")
    out: Path = Path("runs/latest")
    device: str | None = None
    seed: int = 1
    epochs: int = Field(600, ge=1)
    ids_per_batch: int = Field(16, ge=2, description="P identities per batch")
    instances: int = Field(4, ge=1, description="K images per identity and modality")
    log_interval: int = Field(10, ge=1, description="steps between loss fetches")
    checkpoint_every: int = Field(10, ge=1, description="epochs between checkpoints")
    validate_every: int = Field(0, ge=0, description="epochs between validation runs; 0 = never")
    pretrained: str | None = Field(
        None,
        description="'imagenet' (torchvision's ResNet-50) or a weight file `vdreid convert` reads",
    )
    amp: bool = True
    compile: bool = False
    deterministic: bool = False
    sync_bn: bool = False
    cache_dir: Path | None = None
    optim: OptimConfig = OptimConfig()
    augment: AugmentConfig = AugmentConfig()
    protocol: ProtocolConfig = ProtocolConfig()

    @model_validator(mode="after")
    def _protocol_applies(self) -> TrainConfig:
        # a value other than the default was asked for: refuse it where it does nothing
        defaults = ProtocolConfig()
        refuse_inapplicable(
            self.dataset,
            {
                field: f"protocol.{field} = {getattr(self.protocol, field)!r}"
                for field in APPLIES_TO
                if getattr(self.protocol, field) != getattr(defaults, field)
            },
        )
        return self

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str) -> str:
        try:
            return recipe(name).name
        except SpecError as exc:  # pydantic reports ValueErrors as field errors
            raise ValueError(str(exc)) from None


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["optim.lr=1e-3", "epochs=3"]`` -> nested dict. Values parse as JSON
    when they can (numbers, booleans, lists), else stay strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not KEY=VALUE (for example optim.lr=1e-3)")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} sets a field inside {p!r}, which is a value")
        node[leaf] = value
    return out


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = (
            merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
        )
    return out


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; pass an existing .toml file"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; pass a .toml file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "TOML files are UTF-8: save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror or exc}; check the path and its permissions"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def validate(model: type[BaseModel], data: Mapping[str, Any], source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"]) or "(root)"
            got = e.get("input")
            problems.append(f"{field}: {e['msg']} (got {got!r})")
        raise ConfigError(f"invalid {source}: " + "; ".join(problems)) from None


def resolve_train_config(
    file: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """Defaults <- preset recipe (vdreid.presets) <- TOML file <- overrides."""
    user = merge(read_toml(file) if file else {}, overrides or {})
    try:
        start = recipe(user.get("preset", TrainConfig.model_fields["preset"].default))
    except SpecError as exc:
        raise ConfigError(str(exc)) from None
    return validate(TrainConfig, merge(start.train_fields(), user), "training configuration")


def dump_toml(cfg: BaseModel) -> str:
    """A TOML rendering of a config (for the run folder), readable back by --config."""
    # mode="json": paths and tuples as plain values, inf kept (JSON text would make it null)
    return tomli_w.dumps(cfg.model_dump(mode="json", exclude_none=True))
