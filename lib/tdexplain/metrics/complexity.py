"""Complexity: how concentrated each frame's map is, its sparseness (Gini index, Chalasani et
al., 2020) and its entropy. Pure NumPy, per frame, on maps (N, T, H, W) as `Explainer.explain`
returns them (normalized per frame); more concentrated is not more correct."""

from __future__ import annotations

import numpy as np

from .catalogue import Metric, register

__all__ = ["sparseness", "entropy"]


def _frames(maps) -> np.ndarray:
    """Heat maps (N, T, H, W) as (N, T, H*W) float64, checked."""
    maps = np.asarray(maps)
    if maps.ndim != 4 or maps.dtype.kind not in "uifb":
        raise ValueError(f"maps must be heat maps (N, T, H, W) of numbers, got shape {maps.shape} "
                         f"and dtype {maps.dtype}")
    maps = maps.astype(np.float64)
    if not np.isfinite(maps).all() or maps.min() < 0:
        raise ValueError("maps must be finite and non-negative (heat maps, as explain returns them)")
    return maps.reshape(maps.shape[:2] + (-1,))


def sparseness(maps) -> np.ndarray:
    """(N, T): the Gini index of each frame's map (Chalasani et al., 2020, as Quantus computes
    it): with the n = H x W values sorted, a_1 <= ... <= a_n, sum_i (2i - n - 1) a_i / (n sum a).
    0 when every pixel has the same value, 1 - 1/n when one pixel holds all the mass; higher
    is a more concentrated map. An all-zero frame scores 0, as a constant one does (it
    singles out no pixel; Quantus adds 1e-7 to every value, which gives the same 0 there)."""
    flat = np.sort(_frames(maps), axis=-1)
    n = flat.shape[-1]
    total = flat.sum(axis=-1)
    weighted = (flat * (2 * np.arange(1, n + 1) - n - 1)).sum(axis=-1)
    return np.divide(weighted, n * total, out=np.zeros_like(total), where=total > 0)


def entropy(maps) -> np.ndarray:
    """(N, T): the Shannon entropy, in nats, of each frame's map divided by its sum (a
    distribution over the H x W pixels): 0 when one pixel holds all the mass, log(H W) for
    a constant map; lower is a more concentrated map. An all-zero frame counts as uniform,
    log(H W), as it does for `sparseness` (never NaN)."""
    flat = _frames(maps)
    total = flat.sum(axis=-1, keepdims=True)
    share = np.divide(flat, total, out=np.full_like(flat, 1 / flat.shape[-1]), where=total > 0)
    return -(share * np.log(np.where(share > 0, share, 1))).sum(axis=-1)


register(Metric("sparseness", sparseness, "complexity", "Gini index of each frame's map (Chalasani et al., 2020)",
                "higher: more concentrated (not more correct)", "sparseness",
                per_clip=lambda run: sparseness(run.maps).mean(axis=1)))
register(Metric("entropy", entropy, "complexity", "Shannon entropy of each frame's map, as a distribution",
                "lower: more concentrated (not more correct)", "entropy",
                per_clip=lambda run: entropy(run.maps).mean(axis=1)))
