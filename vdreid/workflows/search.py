"""Search a gallery with query images: each query's nearest gallery images.

The gallery is a folder (or list) of images, embedded on the spot, or an
embeddings file written by ``vdreid embed`` with the same model. Distances
are evaluation's (:func:`vdreid.eval.pairwise_distance`, float64, the
model's distance unless one is named) and ties keep the gallery's order, so
search ranks exactly as an evaluation does. Cross-modal by default: an
infrared query searches the visible gallery images and a visible query the
infrared ones; a query never finds its own file. With a dataset
(``--dataset/--root``) the images' identities and modalities are looked up
by path and every match is marked true or false.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vdreid.data.image_files import list_images, modality_name
from vdreid.data.readers import read_dataset
from vdreid.data.records import Modality
from vdreid.errors import ConfigError, DataError
from vdreid.eval.distance import pairwise_distance
from vdreid.eval.retrieval import RankedItem, RankedList, ranked_lists
from vdreid.workflows.embed import SUFFIXES, Embeddings, embed_images, load_embeddings
from vdreid.workflows.model_source import LoadedModel


@dataclasses.dataclass(frozen=True)
class SearchResult:
    lists: tuple[RankedList, ...]
    distance: str
    cross_modal: bool
    model: str
    gallery: str
    gallery_counts: dict[str, int]
    labelled: bool  # identities known (a dataset was given)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "distance": self.distance,
            "cross_modal": self.cross_modal,
            "gallery": {"source": self.gallery, **self.gallery_counts},
            "identities": self.labelled,
            "queries": [r.to_dict() for r in self.lists],
        }

    def true_at_rank1(self) -> tuple[int, int]:
        """(queries whose nearest item shows their person, queries judged)."""
        judged = [r for r in self.lists if r.first_match]
        return sum(r.first_match == 1 for r in judged), len(judged)


def dataset_identities(
    dataset: str, root: Path, *, trial: int | None = None
) -> dict[str, tuple[int, Modality]]:
    """{real path: (identity, modality)} of every image a dataset reader lists."""
    index = read_dataset(dataset, root, trial=trial)
    return {
        os.path.realpath(r.path): (r.pid, r.modality)
        for r in (*index.train, *index.val, *index.test)
    }


def is_embeddings_file(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES and path.is_file()


def search(
    model: LoadedModel,
    queries: Sequence[Path],
    gallery: Sequence[Path],
    *,
    top_k: int = 10,
    query_modality: Modality | None = None,
    gallery_modality: Modality | None = None,
    cross_modal: bool = True,
    distance: str | None = None,
    identities: dict[str, tuple[int, Modality]] | None = None,
    order: str = "given",
    flip: bool | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> SearchResult:
    """Rank the gallery for every query (see the module doc).

    ``gallery`` is one embeddings file or image files / folders; the
    modalities are decided per image when None (equal channels: infrared);
    ``flip`` None follows the gallery file (off for a folder).
    """
    if top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {top_k}")
    if len(gallery) == 1 and is_embeddings_file(Path(gallery[0])):
        gal = load_embeddings(Path(gallery[0]))
        flip = _check_compatible(gal, model, Path(gallery[0]), flip)
        source = str(gallery[0])
    else:
        paths = list_images(gallery)
        gal = embed_images(
            model,
            paths,
            modality=gallery_modality,
            batch_size=batch_size,
            flip=bool(flip),
            progress=progress,
            description="gallery:",
        )
        source = ", ".join(str(g) for g in gallery)
    q = embed_images(
        model,
        list_images(queries),
        modality=query_modality,
        batch_size=batch_size,
        flip=bool(flip),
        progress=progress,
        description="queries:",
    )
    if identities is not None:  # the dataset's modality labels win over the pixels' guess
        q = q if query_modality is not None else _dataset_modalities(q, identities)
        gal = gal if gallery_modality is not None else _dataset_modalities(gal, identities)
    dist_name = distance or model.distance
    dist = pairwise_distance(q.features, gal.features, dist_name)
    removed = _same_files(q, gal)  # a query never finds its own file
    if cross_modal:
        other = q.modalities()[:, None] == gal.modalities()[None, :]
        _check_other_modality(q, gal, other)
        removed |= other
    lists = ranked_lists(
        _items(q, identities),
        _items(gal, identities),
        dist,
        top_k=top_k,
        removed=removed,
        order=order,
    )
    return SearchResult(
        tuple(lists),
        dist_name,
        cross_modal,
        model.describe(),
        source,
        gal.counts(),
        identities is not None,
    )


def _items(emb: Embeddings, identities: dict[str, tuple[int, Modality]] | None) -> list[RankedItem]:
    out = []
    for e in emb.images:
        known = identities.get(os.path.realpath(e.path)) if identities is not None else None
        out.append(RankedItem(e.path, e.modality, None if known is None else known[0]))
    return out


def _same_files(q: Embeddings, gal: Embeddings) -> np.ndarray:
    """(queries, gallery) mask: the same file on both sides."""
    column = {os.path.realpath(e.path): j for j, e in enumerate(gal.images)}
    mask = np.zeros((len(q.images), len(gal.images)), dtype=bool)
    for i, e in enumerate(q.images):
        j = column.get(os.path.realpath(e.path))
        if j is not None:
            mask[i, j] = True
    return mask


def _dataset_modalities(emb: Embeddings, identities: dict[str, tuple[int, Modality]]) -> Embeddings:
    images = tuple(
        dataclasses.replace(
            e, modality=identities.get(os.path.realpath(e.path), (0, e.modality))[1]
        )
        for e in emb.images
    )
    return dataclasses.replace(emb, images=images)


def _check_compatible(
    gallery: Embeddings, model: LoadedModel, path: Path, flip: bool | None
) -> bool:
    """The gallery file must come from ``model``; returns the flip setting to embed queries with."""
    made_by = gallery.meta.get("spec_hash")
    if made_by is not None and made_by != model.spec_hash:
        raise DataError(
            f"gallery {path} was embedded by another model (preset {gallery.meta.get('preset')}, "
            f"spec {made_by[:12]}) than {model.describe()} (preset {model.spec.preset}, spec "
            f"{model.spec_hash[:12]}); embed the gallery again with this model"
        )
    if gallery.features.shape[1] != model.spec.feature_dim:
        raise DataError(
            f"gallery {path} holds {gallery.features.shape[1]}-d features; {model.describe()} "
            f"makes {model.spec.feature_dim}-d ones: embed the gallery again with this model"
        )
    recorded = gallery.meta.get("flip")
    if recorded is None:
        return bool(flip)
    if flip is not None and flip != (recorded == "true"):
        raise ConfigError(
            f"gallery {path} was embedded {'with' if recorded == 'true' else 'without'} flip "
            "averaging; queries must be embedded the same way: leave --flip out (it follows the "
            "gallery) or embed the gallery again"
        )
    return recorded == "true"


def _check_other_modality(q: Embeddings, gal: Embeddings, removed: np.ndarray) -> None:
    lonely = np.flatnonzero(removed.all(axis=1))
    if lonely.size:
        m = q.images[lonely[0]].modality
        other = Modality.VISIBLE if m == Modality.INFRARED else Modality.INFRARED
        raise DataError(
            f"query {q.images[lonely[0]].path} is {modality_name(m)} and the gallery holds no "
            f"{modality_name(other)} image to search across modalities (gallery: "
            + ", ".join(f"{n} {k}" for k, n in gal.counts().items())
            + "); pass --any-modality to search every gallery image, or set --query-modality / "
            "--gallery-modality when the automatic decision (equal channels: infrared) is wrong"
        )
