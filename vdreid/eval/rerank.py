"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) of query x gallery distances.

All N = Q + G images are pooled. With d(i, j) the squared Euclidean distance
divided by the largest one of row i (on L2-normalised features for the
cosine distance), and N_k(i) the k nearest images of i (itself included,
ties by index):

- R(i) = {j in N_{k1+1}(i) : i in N_{k1+1}(j)} (k-reciprocal neighbours);
- R*(i) = R(i) plus, for every j in R(i), H(j) = the same set with k1/2
  (rounded as numpy does) when more than 2/3 of H(j) lies in R(i);
- V[i, j] = exp(-d(i, j)) / sum over R*(i), zero elsewhere; with k2 > 1,
  V[i] becomes the mean of V over N_k2(i) (local query expansion);
- Jaccard(q, g) = 1 - m / (2 - m), m = sum_k min(V[q, k], V[g, k]);
- result = (1 - lambda) * Jaccard + lambda * d(q, g).

Memory: the N x N distance matrix is never held. Rows of it are computed in
blocks of ``BLOCK_ROWS`` (only their k1+1 nearest neighbours and row maxima
are kept), V is a sparse matrix (a few dozen entries a row), and the
Jaccard sums run over query chunks of at most ``PAIR_CHUNK`` (q, k, g)
triples, mixed into the result in place. At SYSU-MM01 10-shot size (3,803 x
3,010) the peak traced by tracemalloc is about 146 MiB, 87 MiB of which is
the float64 result (benchmarks/bench_eval.py; features not counted).
"""

from __future__ import annotations

import numpy as np

from vdreid.errors import ConfigError
from vdreid.eval.distance import DISTANCES, check_features, l2_normalise, squared_euclidean

BLOCK_ROWS = 256
PAIR_CHUNK = 1 << 19
_TINY = 1e-300


def k_reciprocal_rerank(
    query: np.ndarray,
    gallery: np.ndarray,
    *,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    distance: str = "euclidean",
) -> np.ndarray:
    """(Q x G) float64 re-ranked distances of ``query`` x ``gallery`` features (module doc)."""
    q = check_features("query features", query)
    g = check_features("gallery features", gallery, dim=q.shape[1])
    _check_options(k1, k2, lambda_value, distance)
    if distance == "cosine":
        q, g = l2_normalise(q), l2_normalise(g)
    n_q, n = len(q), len(q) + len(g)
    k_full = min(k1 + 1, n)
    k_half = min(int(np.around(k1 / 2.0)) + 1, n)

    out = np.empty((n_q, len(g)), dtype=np.float64)
    neighbours = np.empty((n, k_full), dtype=np.int64)
    row_max = np.empty(n, dtype=np.float64)
    for start in range(0, n, BLOCK_ROWS):
        rows = np.arange(start, min(start + BLOCK_ROWS, n))
        block = _take(q, g, rows)
        d = np.hstack([squared_euclidean(block, q), squared_euclidean(block, g)])
        row_max[rows] = np.maximum(d.max(axis=1), _TINY)
        d /= row_max[rows, None]
        neighbours[rows] = _nearest(d, k_full)
        in_query = rows < n_q
        out[rows[in_query]] = d[in_query, n_q:]

    v = _expansion_weights(q, g, neighbours, k_full, k_half, row_max)
    if k2 > 1:
        v = _local_query_expansion(v, neighbours[:, : min(k2, k_full)])
    _mix_jaccard(out, v, lambda_value)
    return out


def _check_options(k1: int, k2: int, lambda_value: float, distance: str) -> None:
    if distance not in DISTANCES:
        raise ConfigError(f"distance={distance!r} is not known; use one of {DISTANCES}")
    if not (isinstance(k1, int) and k1 >= 1 and isinstance(k2, int) and k2 >= 1):
        raise ConfigError(f"re-ranking k1={k1!r}, k2={k2!r}; expected integers >= 1 (20 and 6)")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ConfigError(f"re-ranking lambda_value={lambda_value!r}; expected 0..1 (0.3)")


def _take(q: np.ndarray, g: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """float64 feature rows of pooled indices (queries first, then gallery)."""
    out = np.empty((len(rows), q.shape[1]), dtype=np.float64)
    is_q = rows < len(q)
    out[is_q] = q[rows[is_q]]
    out[~is_q] = g[rows[~is_q] - len(q)]
    return out


def _nearest(d: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest entries of each row, ordered by (value, index)."""
    kth = np.partition(d, k - 1, axis=1)[:, k - 1 : k]
    below = d < kth
    tied = d == kth
    room = k - below.sum(axis=1, keepdims=True)  # tied entries to take, lowest index first
    chosen = below | (tied & (np.cumsum(tied, axis=1) <= room))
    idx = np.nonzero(chosen)[1].reshape(len(d), k)
    order = np.argsort(np.take_along_axis(d, idx, axis=1), axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)


def _reciprocal(neighbours: np.ndarray, k: int) -> np.ndarray:
    """(N, k) mask: neighbour s of i is k-reciprocal (i is among its k nearest)."""
    own = neighbours[:, :k]
    out = np.empty(own.shape, dtype=bool)
    for start in range(0, len(own), 4096):
        part = own[start : start + 4096]
        back = neighbours[part, :k]  # (rows, k, k)
        me = np.arange(start, start + len(part))[:, None, None]
        out[start : start + 4096] = (back == me).any(axis=2)
    return out


def _expansion_pairs(neighbours: np.ndarray, k_full: int, k_half: int):
    """(rows, cols) of the expanded k-reciprocal sets R*(i), sorted and unique."""
    n = len(neighbours)
    recip = _reciprocal(neighbours, k_full)
    recip_half = _reciprocal(neighbours, k_half)
    half = neighbours[:, :k_half]
    rows_out, cols_out = [], []
    for start in range(0, n, 1024):
        sl = slice(start, min(start + 1024, n))
        own, own_mask = neighbours[sl, :k_full], recip[sl]
        cand, cand_mask = half[own], recip_half[own]  # (b, k_full, k_half): H(j), j in N(i)
        in_own = ((cand[..., None] == own[:, None, None, :]) & own_mask[:, None, None, :]).any(-1)
        common = (in_own & cand_mask).sum(axis=2)
        size = cand_mask.sum(axis=2)
        expand = own_mask & (3 * common > 2 * size)  # more than 2/3 of H(j) lies in R(i)
        i = np.arange(sl.start, sl.stop)
        r1, s1 = np.nonzero(own_mask)
        r2, s2, t2 = np.nonzero(expand[:, :, None] & cand_mask)
        rows_out += [i[r1], i[r2]]
        cols_out += [own[r1, s1], cand[r2, s2, t2]]
    keys = np.unique(np.concatenate(rows_out) * n + np.concatenate(cols_out))
    return keys // n, keys % n


def _pair_distances(q, g, rows, cols, row_max):
    """d(i, j) for listed pairs, without the N x N matrix (chunks of pairs)."""
    out = np.empty(len(rows), dtype=np.float64)
    step = max(1, (1 << 20) // q.shape[1])
    for start in range(0, len(rows), step):
        a = _take(q, g, rows[start : start + step])
        b = _take(q, g, cols[start : start + step])
        diff = a - b
        out[start : start + step] = np.einsum("ij,ij->i", diff, diff)
    return out / row_max[rows]


def _expansion_weights(q, g, neighbours, k_full, k_half, row_max):
    from scipy import sparse

    n = len(neighbours)
    rows, cols = _expansion_pairs(neighbours, k_full, k_half)
    w = np.exp(-_pair_distances(q, g, rows, cols, row_max))
    w /= np.bincount(rows, weights=w, minlength=n)[rows]
    return sparse.csr_matrix((w, (rows, cols)), shape=(n, n))


def _local_query_expansion(v, nearest):
    from scipy import sparse

    n, k = nearest.shape
    mean = sparse.csr_matrix(
        (np.full(n * k, 1.0 / k), (np.repeat(np.arange(n), k), nearest.ravel())), shape=(n, n)
    )
    return (mean @ v).tocsr()


def _mix_jaccard(out: np.ndarray, v, lambda_value: float) -> None:
    """out = lambda * out + (1 - lambda) * Jaccard, in place, chunked over queries.

    Jaccard = 1 - m / (2 - m), m = sum_k min(V[q, k], V[g, k]).
    """
    n_q, n_g = out.shape
    vq = v[:n_q].tocsr()
    vg = v[n_q:].tocsc()  # column k -> gallery rows holding k
    col_counts = np.diff(vg.indptr)
    entry_rows = np.repeat(np.arange(n_q), np.diff(vq.indptr))
    pairs_per_query = np.bincount(entry_rows, weights=col_counts[vq.indices], minlength=n_q)
    start = 0
    while start < n_q:
        stop = start + 1
        total = pairs_per_query[start]
        while stop < n_q and total + pairs_per_query[stop] <= PAIR_CHUNK:
            total += pairs_per_query[stop]
            stop += 1
        block = out[start:stop]
        block *= lambda_value
        block += (1.0 - lambda_value) * _jaccard_rows(vq, vg, col_counts, start, stop, n_g)
        start = stop


def _jaccard_rows(vq, vg, col_counts, start, stop, n_g):
    lo, hi = vq.indptr[start], vq.indptr[stop]
    q_rows = np.repeat(np.arange(stop - start), np.diff(vq.indptr[start : stop + 1]))
    ks, q_vals = vq.indices[lo:hi], vq.data[lo:hi]
    counts = col_counts[ks]
    firsts = np.repeat(vg.indptr[ks] - np.cumsum(counts) + counts, counts)
    where = firsts + np.arange(int(counts.sum()))  # positions of the gallery entries
    mins = np.minimum(np.repeat(q_vals, counts), vg.data[where])
    flat = np.repeat(q_rows, counts) * n_g + vg.indices[where]
    m = np.bincount(flat, weights=mins, minlength=(stop - start) * n_g).reshape(-1, n_g)
    return 1.0 - m / (2.0 - m)
