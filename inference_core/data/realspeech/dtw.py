"""Dynamic time warping between two feature sequences, and carrying times along its path.

Why written here: it is thirty lines of numpy, and the one non-obvious part is worth owning.
The recurrence (symmetric steps, diagonal weighted 2, so every path's weights sum to N + M
and costs of different paths compare fairly)::

    D[i, j] = min(D[i-1, j-1] + 2 C[i, j],  D[i-1, j] + C[i, j],  D[i, j-1] + C[i, j])

has a horizontal dependency inside a row, but with ``S = cumsum(C[i])`` and
``A[j] = min(D[i-1, j-1] + 2 C[i, j], D[i-1, j] + C[i, j])`` it is
``D[i, j] = S[j] + min_{k <= j} (A[k] - S[k])``, a running minimum: each row is a few vector
operations, so a 30 s utterance (3000 x 3000 frames) takes a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OUTSIDE = 1e6  # cost outside the band (finite, so cumulative sums stay well defined)


@dataclass
class Path:
    i: np.ndarray       # frame indices into the first sequence (non-decreasing)
    j: np.ndarray       # frame indices into the second sequence (non-decreasing)
    cost: float         # accumulated cost / (N + M): mean local distance along the path

    def map_frames(self, n_first: int) -> np.ndarray:
        """For each frame of the first sequence, the mean matched frame of the second."""
        sums = np.bincount(self.i, weights=self.j, minlength=n_first)
        counts = np.bincount(self.i, minlength=n_first)
        return sums / np.maximum(counts, 1)

    def map_times(self, t: np.ndarray, n_first: int, hop: float) -> np.ndarray:
        """Times (s) on the first sequence's axis → times on the second's (piecewise linear)."""
        centres = self.map_frames(n_first)
        return np.interp(np.asarray(t, float) / hop, np.arange(n_first), centres) * hop


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean frame distances, scaled by 1/sqrt(dim): (len(a), len(b))."""
    from scipy.spatial.distance import cdist

    return cdist(a, b) / np.sqrt(a.shape[1])


def band_mask(n: int, m: int, band: float, min_width: int = 40) -> np.ndarray:
    """True inside a band around the straight line from (0, 0) to (n-1, m-1).

    ``band`` is a fraction of the longer sequence; the band is at least ``min_width`` frames
    either side, so short utterances with different lead-in silences still align."""
    w = max(min_width, int(np.ceil(band * max(n, m))))
    i = np.arange(n)[:, None] * (m - 1) / max(n - 1, 1)
    return np.abs(np.arange(m)[None, :] - i) <= w


def accumulate(c: np.ndarray, penalty: float = 0.0) -> np.ndarray:
    """The accumulated cost matrix ``D`` of the recurrence above (float64); ``penalty`` is
    added to every horizontal and vertical step."""
    c = np.asarray(c, np.float64)
    n, m = c.shape
    d = np.empty((n, m))
    s = np.cumsum(c[0] + penalty) - penalty
    d[0] = s + c[0, 0]  # D[0,0] = 2 C[0,0]; then only horizontal steps
    for i in range(1, n):
        row = c[i]
        a = d[i - 1] + row + penalty
        a[1:] = np.minimum(a[1:], d[i - 1, :-1] + 2 * row[1:])
        s = np.cumsum(row + penalty)
        d[i] = s + np.minimum.accumulate(a - s)
    return d


def backtrack(d: np.ndarray, c: np.ndarray, penalty: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The optimal path from (0, 0) to (n-1, m-1); ties prefer the diagonal step."""
    i, j = d.shape[0] - 1, d.shape[1] - 1
    pi, pj = [i], [j]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            diag = d[i - 1, j - 1] + c[i, j]  # (+2C - C: compare all three after removing one C)
            up, left = d[i - 1, j] + penalty, d[i, j - 1] + penalty
            if diag <= up and diag <= left:
                i, j = i - 1, j - 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        pi.append(i)
        pj.append(j)
    return np.array(pi[::-1]), np.array(pj[::-1])


def dtw(a: np.ndarray, b: np.ndarray, band: float | None = 0.25, penalty: float = 0.0) -> Path:
    """Align feature sequences ``a`` (N, F) and ``b`` (M, F); ends are pinned to ends.

    ``cost`` is the path's weighted local distance / (N + M), without the step penalties."""
    c = distances(a, b)
    if band is not None:
        c = np.where(band_mask(len(a), len(b), band), c, OUTSIDE)
    d = accumulate(c, penalty)
    i, j = backtrack(d, c, penalty)
    diag = (np.diff(i) == 1) & (np.diff(j) == 1)
    local = 2 * c[i[0], j[0]] + float(np.sum(c[i[1:], j[1:]] * np.where(diag, 2.0, 1.0)))
    return Path(i, j, local / (len(a) + len(b)))
