"""A 2-D map of embeddings, coloured by identity and marked by modality.

PCA (numpy, the default) keeps the large-scale geometry: when visible and
infrared images of one person land apart, the modality gap is what the
map shows. t-SNE (scikit-learn, the ``[tsne]`` extra) keeps neighbourhoods
instead. Features are L2-normalised first when the model ranks them by
cosine distance, so the map sees the geometry the ranking sees. Under the
map, the mean distances that quantify the gap: same person and modality,
same person across modalities, different people.
"""

from __future__ import annotations

import numpy as np

from vdreid.errors import ConfigError, DataError, ExtraNotInstalled
from vdreid.eval.distance import check_features, l2_normalise, pairwise_distance
from vdreid.report.figure import Picture, new_figure, render

METHODS = ("pca", "tsne")
WIDTH, HEIGHT = 900, 640
MARKERS = {0: ("o", "visible"), 1: ("^", "infrared")}


def project(
    features: np.ndarray, *, method: str = "pca", distance: str = "euclidean", seed: int = 0
) -> np.ndarray:
    """(N, 2) coordinates of the rows of ``features``."""
    if method not in METHODS:
        raise ConfigError(f"map method {method!r} is not known; use one of {', '.join(METHODS)}")
    x = check_features("features", features).astype(np.float64)
    if len(x) < 3:
        raise DataError(f"a map needs at least 3 images, got {len(x)}")
    if distance == "cosine":
        x = l2_normalise(x)
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise ExtraNotInstalled(
                "the t-SNE map needs scikit-learn, which is not installed; install it with "
                "`pip install 'vdreid[tsne]'`, or draw the PCA map"
            ) from None
        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    if points.shape[1] < 2:  # 1-d features: a line
        points = np.concatenate([points, np.zeros((len(points), 1))], axis=1)
    return points


def gap_distances(
    features: np.ndarray, pids: np.ndarray, modalities: np.ndarray, distance: str
) -> dict[str, float]:
    """Mean distance over pairs: same person same modality, same person other
    modality, different people (NaN where no such pair exists)."""
    d = pairwise_distance(features, features, distance)
    same_id = pids[:, None] == pids[None, :]
    same_mod = modalities[:, None] == modalities[None, :]
    off_diagonal = ~np.eye(len(d), dtype=bool)
    groups = {
        "same person, same modality": same_id & same_mod & off_diagonal,
        "same person, other modality": same_id & ~same_mod,
        "different people": ~same_id,
    }
    return {k: float(d[m].mean()) if m.any() else float("nan") for k, m in groups.items()}


def embedding_picture(
    features: np.ndarray,
    pids: np.ndarray,
    modalities: np.ndarray,
    *,
    method: str = "pca",
    distance: str = "euclidean",
    title: str = "Embedding map",
) -> Picture:
    """The map of ``features`` (one row per image) with their identities and modalities."""
    pids, modalities = np.asarray(pids), np.asarray(modalities)
    if not len(pids) == len(modalities) == len(features):
        raise DataError(
            f"{len(features)} features, {len(pids)} identities and {len(modalities)} modalities; "
            "expected one of each per image"
        )
    points = project(features, method=method, distance=distance)
    gaps = gap_distances(np.asarray(features), pids, modalities, distance)
    ids = sorted(set(pids.tolist()))
    fig = new_figure(WIDTH, HEIGHT)
    ax = fig.add_axes((0.07, 0.17, 0.68, 0.74))
    colours = _colours(len(ids))
    for i, pid in enumerate(ids):
        for code, (marker, _) in MARKERS.items():
            sel = (pids == pid) & (modalities == code)
            if sel.any():
                ax.scatter(
                    points[sel, 0],
                    points[sel, 1],
                    s=34,
                    marker=marker,
                    color=colours[i],
                    edgecolors="black" if code == 1 else "none",
                    linewidths=0.6,
                    alpha=0.85,
                )
    ax.set_title(title, fontsize=12, loc="left")
    axis = "PCA component" if method == "pca" else "t-SNE dimension"
    ax.set_xlabel(f"{axis} 1")
    ax.set_ylabel(f"{axis} 2")
    ax.grid(alpha=0.25)
    handles = [  # hollow shapes for the modalities, colour squares for the people
        ax.scatter([], [], marker=m, facecolors="white", edgecolors="black", label=name)
        for m, name in MARKERS.values()
    ]
    handles += [
        ax.scatter([], [], marker="s", color=colours[i], label=f"id {p}") for i, p in enumerate(ids)
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        frameon=False,
        fontsize=8,
        ncol=1 if len(ids) <= 18 else 2,
    )
    fig.text(
        0.07,
        0.035,
        f"mean {distance} distance:  " + ";  ".join(f"{k}: {v:.3f}" for k, v in gaps.items()),
        fontsize=9,
        color="#333333",
    )
    return render(fig)


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
