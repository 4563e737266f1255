"""Query x gallery distances in float64, computed in chunks of query rows.

Two distances, the two the cross-modal literature uses:
- ``euclidean``: ||q - g|| (official SYSU-MM01 evaluation, MVD);
- ``cosine``: -cos(q, g), i.e. minus the dot product of L2-normalised
  features (AGW, RegDB evaluations). On unit vectors it ranks exactly as the
  Euclidean distance does.
"""

from __future__ import annotations

import numpy as np

from vdreid.errors import ConfigError, DataError, NumericalError
from vdreid.losses.geometry import l2_normalize
from vdreid.ops import NumpyOps

DISTANCES = ("euclidean", "cosine")
_EPS = 1e-12  # norm floor: an all-zero feature gets cosine 0 to everything

#: Elements per feature block: float64 copies of one query block and one
#: gallery block (features may arrive as float32) are the only temporaries
#: besides the output (4 Mi elements = 32 MiB each).
BLOCK_ELEMENTS = 1 << 22


def check_features(name: str, features: np.ndarray, dim: int | None = None) -> np.ndarray:
    """``features`` as a finite 2-D (items x dim) float array, or a clear error."""
    arr = np.asarray(features)
    if arr.ndim != 2 or (dim is not None and arr.shape[1] != dim):
        want = f"(items, {dim})" if dim is not None else "(items, dim)"
        raise DataError(f"{name} has shape {arr.shape}, expected a 2-D array {want}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise NumericalError(
            f"{name} holds NaN or Inf in {bad} of {len(arr)} rows; expected finite features - "
            "check the checkpoint (a diverged model gives NaN features)"
        )
    return arr


def l2_normalise(features: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (float64; vdreid.losses.l2_normalize, the
    models' own normalisation); all-zero rows stay zero."""
    return l2_normalize(NumpyOps(), np.asarray(features, dtype=np.float64))


def _blocks(x: np.ndarray) -> list[slice]:
    rows = max(1, BLOCK_ELEMENTS // max(x.shape[1], 1))
    return [slice(i, min(i + rows, len(x))) for i in range(0, len(x), rows)]


def _blocked_dot(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """q @ g.T in float64, converting one block of rows at a time."""
    out = np.empty((len(q), len(g)), dtype=np.float64)
    for gs in _blocks(g):
        g_block = np.asarray(g[gs], dtype=np.float64)
        for qs in _blocks(q):
            np.matmul(np.asarray(q[qs], dtype=np.float64), g_block.T, out=out[qs, gs])
    return out


def _row_sq_norms(x: np.ndarray) -> np.ndarray:
    out = np.empty(len(x), dtype=np.float64)
    for s in _blocks(x):
        block = np.asarray(x[s], dtype=np.float64)
        out[s] = np.einsum("ij,ij->i", block, block)
    return out


def squared_euclidean(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """||q - g||^2 in float64 (clipped at 0 against rounding)."""
    out = _blocked_dot(query, gallery)
    out *= -2.0
    out += _row_sq_norms(query)[:, None]
    out += _row_sq_norms(gallery)[None, :]
    np.maximum(out, 0.0, out=out)
    return out


def pairwise_distance(
    query: np.ndarray, gallery: np.ndarray, distance: str = "euclidean"
) -> np.ndarray:
    """(queries x gallery) float64 distances: ``euclidean`` or ``cosine`` (see module doc)."""
    if distance not in DISTANCES:
        raise ConfigError(f"distance={distance!r} is not known; use one of {DISTANCES}")
    q = check_features("query features", query)
    g = check_features("gallery features", gallery, dim=q.shape[1])
    if distance == "euclidean":
        out = squared_euclidean(q, g)
        return np.sqrt(out, out=out)
    out = _blocked_dot(q, g)
    out /= np.maximum(np.sqrt(_row_sq_norms(q)), _EPS)[:, None]
    out /= np.maximum(np.sqrt(_row_sq_norms(g)), _EPS)[None, :]
    return np.negative(out, out=out)
