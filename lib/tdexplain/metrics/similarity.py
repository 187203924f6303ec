"""Similarity of two batches of maps, frame by frame: the scores of the sanity checks.

Spearman rank correlation (does the second map rank the pixels as the first does?) and
SSIM (do they share local structure?), as Adebayo et al. (2018) compare the maps of a model
with those of its randomized copies.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["spearman", "ssim"]

def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, ties given their average rank (as scipy's rankdata)."""
    order = np.argsort(values, axis=-1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=-1)
    ranks = np.empty(values.shape, np.float64)
    for row in np.ndindex(values.shape[:-1]):
        starts = np.flatnonzero(np.r_[True, ordered[row][1:] != ordered[row][:-1]])
        ends = np.r_[starts[1:], values.shape[-1]]
        average = np.repeat((starts + ends - 1) / 2, ends - starts)
        ranks[row + (order[row],)] = average
    return ranks


def spearman(maps_a, maps_b) -> np.ndarray:
    """Spearman rank correlation between two batches of maps, per frame: (N, T). A constant
    frame (no order to compare) correlates 0 with anything but an equal frame."""
    a, b = (np.asarray(m, np.float64) for m in (maps_a, maps_b))
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"both map batches must be (N, T, H, W) of the same shape, got {a.shape} and {b.shape}")
    ra, rb = (_ranks(m.reshape(m.shape[:2] + (-1,))) for m in (a, b))
    ra -= ra.mean(axis=-1, keepdims=True)
    rb -= rb.mean(axis=-1, keepdims=True)
    norm = np.sqrt((ra ** 2).sum(axis=-1) * (rb ** 2).sum(axis=-1))
    correlation = np.divide((ra * rb).sum(axis=-1), norm, out=np.zeros(a.shape[:2]), where=norm > 0)
    same = np.all(a == b, axis=(2, 3))
    return np.where(same, 1.0, correlation)


def ssim(maps_a, maps_b, sigma: float = 1.5) -> np.ndarray:
    """Structural similarity (Wang et al., 2004) of maps in [0, 1], per frame: (N, T).
    Gaussian window of `sigma` pixels, the usual constants for a data range of 1."""
    a, b = (np.asarray(m, np.float64) for m in (maps_a, maps_b))
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"both map batches must be (N, T, H, W) of the same shape, got {a.shape} and {b.shape}")
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def blur(x):
        return np.stack([[cv2.GaussianBlur(f, (0, 0), sigma) for f in clip] for clip in x])

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    covariance = blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * covariance + c2)
             / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    return index.mean(axis=(2, 3))
