"""Gallery items in exact (distance, gallery index) order, fast.

Ranking needs, per query row, the gallery sorted by distance with ties
broken by gallery index. NumPy's stable argsort is several times slower
than its (SIMD) sort of plain int64 values, so each distance is turned into
an order-preserving int64 whose lowest ``bits`` bits are replaced by a small
label code of the gallery item (its identity). Sorting those values yields
the ranked labels directly, without gathering through an index array.

Dropping the low bits only merges distances that are equal or closer than
about 2**(bits - 52) relative: a row where two neighbours in sorted order
share their high bits (exact ties included) is re-sorted exactly with a
stable lexsort. The result is therefore always the exact tie order.
"""

from __future__ import annotations

import numpy as np

_INT64_MAX = np.iinfo(np.int64).max
# Above the key of +inf (0x7FF0...): removed items sort after every distance.
_REMOVED_BASE = np.int64(0x7FF8 << 48)


def code_bits(num_codes: int) -> int:
    """Bits needed for codes 0..num_codes-1 plus the reserved all-ones code."""
    return max(1, int(num_codes).bit_length())


def _order_keys(dist: np.ndarray, high: np.int64) -> np.ndarray:
    """New int64 array ordered as the float64 distances (-0.0 equals +0.0), ``& high``."""
    bits = dist.view(np.int64)
    if bits.min() >= 0:  # no negative float (Euclidean distances): bits are the key
        return bits & high
    sign = bits >> 63  # 0 for positive, -1 for negative floats
    keys = bits & _INT64_MAX
    keys ^= sign
    keys -= sign  # -magnitude for negative floats
    keys &= high
    return keys


def ranked_codes(
    dist: np.ndarray, codes: np.ndarray, bits: int, removed: np.ndarray | None = None
) -> np.ndarray:
    """Codes of the gallery items in ranked order, one row per query.

    ``dist`` is (rows, G) float64 without NaN, ``codes`` (G,) int64 in
    0..2**bits - 2, ``removed`` (rows, G) bool or None. Removed items come
    last with the reserved code ``2**bits - 1``.
    """
    low = np.int64((1 << bits) - 1)
    keys = _order_keys(dist, ~low)
    keys |= codes
    if removed is not None:
        # Distinct high bits per column, so removed items never look merged.
        removed_keys = _REMOVED_BASE + (np.arange(dist.shape[1], dtype=np.int64) << bits) + low
        np.copyto(keys, removed_keys, where=removed)
    keys.sort(axis=1)
    out = keys & low
    keys ^= out  # high bits only: neighbours equal here were merged by the encoding
    flat = keys.ravel()
    same = np.flatnonzero(flat[1:] == flat[:-1])  # contiguous compare: cheaper than 2-D
    n_cols = keys.shape[1]
    same = same[(same + 1) % n_cols != 0]  # drop pairs that straddle two rows
    redo = np.unique(same // n_cols)
    if redo.size:
        rows = dist[redo]
        gone = np.zeros(rows.shape, dtype=bool) if removed is None else removed[redo]
        # lexsort is stable: removed last, then by distance, then by gallery index.
        order = np.lexsort((rows, gone), axis=-1)
        exact = codes[order]
        exact[np.take_along_axis(gone, order, axis=1)] = low
        out[redo] = exact
    return out
