"""Every method against every metric that has a column, on one set of clips: the table the
workbook and the command line compare methods with, and the interval that says when two
methods are not ranked by these clips."""

from __future__ import annotations

import time

import numpy as np

from ..engine.explainer import Explainer
from .axiomatic import check_shift
from .catalogue import Run, columns
from .explained import check_methods, clips_and_target, method_maps
from .localization import chance
from .robustness import check_robustness

__all__ = ["evaluate_methods", "bootstrap_interval"]


def evaluate_methods(explainer: Explainer, clips, masks, methods, layer: str | None = None,
                     target=None, steps: int = 16, fill: str = "blur", progress: bool = True,
                     robustness_samples: int = 0, robustness_radius: float = 0.02,
                     invariance_shift=None, **options):
    """One row per method: a column for each metric of the catalogue that has one
    (`catalogue.columns`: localization's pointing game, energy inside and IoU, deletion and
    insertion AUC (per-frame scope), sparseness and entropy, means over the clips of their
    means over the frames), and explanation time per clip. A pandas DataFrame; the maps, the curves and the
    per-clip scores (for `bootstrap_interval`) are in its ``attrs``.

    Columns that cost more explanations are asked for: robustness_samples > 0 adds
    max_sensitivity and local_lipschitz (per clip, `robustness` with that many uniform
    perturbations of radius `robustness_radius`, seed 0, per method; each sample is one more explain call
    per method, so the default 0 leaves them out); invariance_shift, a number or array,
    adds input_invariance (mean Spearman of the maps of the model on x and of its
    `shifted_twin` on x + shift: one more explain call per method; default None, left out).
    Columns that are not asked for are absent, not NaN.
    """
    import pandas as pd

    methods = check_methods(methods)
    batch, targets = clips_and_target(explainer, clips, target)
    check_robustness(robustness_samples, robustness_radius, "uniform", "robustness_", least=0)
    if invariance_shift is not None:
        check_shift(invariance_shift, explainer.frames, explainer.size)
    settings = dict(steps=steps, fill=fill, progress=progress, robustness_samples=robustness_samples,
                    robustness_radius=robustness_radius, invariance_shift=invariance_shift)
    metrics, shared = columns(settings), {}
    rows, maps, curves, per_clip = {}, {}, {}, {}
    for method in methods:
        # One explain call per method (not one pass for all): each method's time is its own.
        start = time.perf_counter()
        maps.update(method_maps(explainer, batch, [method], targets, layer, options))
        seconds = (time.perf_counter() - start) / len(batch)
        name = method if isinstance(method, str) else method.__name__
        run = Run(explainer, batch, targets, masks, method, name, maps[name], layer, options, settings, shared)
        per_clip[name] = {metric.column: metric.per_clip(run) for metric in metrics}
        curves[name] = run.curves
        rows[name] = {**{column: np.nanmean(values) for column, values in per_clip[name].items()},
                      "seconds_per_clip": seconds}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.attrs.update(maps=maps, curves=curves, per_clip=per_clip, chance=float(np.nanmean(chance(masks))))
    return table


def bootstrap_interval(values, level: float = 0.95, samples: int = 2000, seed: int = 0) -> tuple:
    """Percentile bootstrap interval of the mean of per-clip values (NaN dropped): where the
    mean could fall with other clips like these. Two methods whose intervals overlap are not
    ranked by these clips."""
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError("bootstrap_interval needs at least one value that is not NaN")
    draws = np.random.default_rng(seed).integers(0, values.size, (samples, values.size))
    low, high = np.percentile(values[draws].mean(axis=1), [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)
