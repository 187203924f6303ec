"""Robustness: how far a method's maps move when the clips get noise too small to change the
class: max-sensitivity (Yeh et al., 2019) and the local Lipschitz estimate (Alvarez-Melis and
Jaakkola, 2018), on the maps as `Explainer.explain` returns them (normalized per frame). Every
method sees the same seeded noise."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..engine.explainer import Explainer
from .catalogue import Metric, register
from .explained import check_methods, clips_and_target, method_maps

NOISES = ("uniform", "gaussian")

__all__ = ["Robustness", "robustness", "max_sensitivity", "local_lipschitz", "check_robustness", "NOISES"]


@dataclass
class Robustness:
    """How far each method's maps move under small noise on the clips.

    metric: "max_sensitivity" or "local_lipschitz"; per_frame[method] (N, T) with the norms
    taken over each frame, per_clip[method] (N,) over the whole clip (not the largest frame);
    both the maximum over the `samples` perturbations (see `robustness`). Lower is steadier.
    """

    metric: str
    samples: int
    radius: float
    noise: str
    per_frame: dict = field(default_factory=dict)
    per_clip: dict = field(default_factory=dict)


def _noise(shape, sample: int, radius: float, noise: str, seed: int) -> np.ndarray:
    """Perturbation number `sample`, in pixel values: uniform in [-radius x 255, radius x 255]
    per value (the L-inf ball) or Gaussian of std radius x 255, from a generator seeded by
    (seed, sample): every clip and every method gets the same draw."""
    rng = np.random.default_rng([seed, sample])
    scale = radius * 255.0
    draw = rng.uniform(-scale, scale, shape) if noise == "uniform" else rng.normal(0.0, scale, shape)
    return draw.astype(np.float32)


def _ratio(change: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """change / scale; 0 where nothing changed, NaN where a change meets a zero scale."""
    ratio = np.divide(change, scale, out=np.full(change.shape, np.nan), where=scale > 0)
    return np.where(change == 0, 0.0, ratio)


def check_robustness(samples, radius, noise, prefix: str = "", least: int = 1) -> None:
    """Validate the perturbations; `prefix` names the arguments as the caller calls them."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < least:
        raise ValueError(f"{prefix}samples must be an integer >= {least} (perturbations per clip), "
                         f"got {samples!r}")
    if isinstance(radius, bool) or not isinstance(radius, (int, float, np.number)) or not (
            np.isfinite(radius) and radius > 0):
        raise ValueError(f"{prefix}radius must be a number > 0 (a fraction of the 0..255 pixel "
                         f"range: 0.02 is 5 gray levels), got {radius!r}")
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")


def _robustness(explainer, batch, methods, targets, samples, radius, noise, seed, layer, options,
                progress, original=None) -> dict:
    """{"max_sensitivity": Robustness, "local_lipschitz": Robustness} from one set of
    re-explanations; `original`: the maps of `batch` when the caller has them."""
    original = original or method_maps(explainer, batch, methods, targets, layer, options)
    n, t = batch.shape[:2]
    flat = {name: maps.reshape(n, t, -1).astype(np.float64) for name, maps in original.items()}
    size = {name: np.sqrt((maps ** 2).sum(axis=-1)) for name, maps in flat.items()}  # (N, T)
    found = {metric: Robustness(metric, samples, float(radius), noise) for metric in
             ("max_sensitivity", "local_lipschitz")}
    for sample in tqdm(range(samples), desc="robustness", unit="sample", disable=not progress):
        delta = _noise(batch.shape[1:], sample, radius, noise, seed)
        delta_frame = np.sqrt((delta.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))  # (T,)
        delta_frame = np.broadcast_to(delta_frame, (n, t))
        moved = method_maps(explainer, batch + delta, methods, targets, layer, options)
        for name, maps in flat.items():
            change = np.sqrt(((moved[name].reshape(n, t, -1) - maps) ** 2).sum(axis=-1))
            frame = {"max_sensitivity": _ratio(change, size[name]),
                     "local_lipschitz": _ratio(change, delta_frame)}
            clip = {"max_sensitivity": _ratio(_norm(change), _norm(size[name])),
                    "local_lipschitz": _ratio(_norm(change), _norm(delta_frame))}
            for metric, result in found.items():
                # np.maximum keeps a NaN: a relative change that is undefined in one sample is
                # undefined in the maximum
                result.per_frame[name] = np.maximum(result.per_frame.get(name, frame[metric]), frame[metric])
                result.per_clip[name] = np.maximum(result.per_clip.get(name, clip[metric]), clip[metric])
    return found


def _norm(per_frame: np.ndarray) -> np.ndarray:
    """The norm over a clip from the norms of its frames (N, T) -> (N,)."""
    return np.sqrt((per_frame ** 2).sum(axis=1))


def robustness(explainer: Explainer, clips, methods=("gradcam",), target=None, samples: int = 10,
               radius: float = 0.02, noise: str = "uniform", layer: str | None = None, seed: int = 0,
               progress: bool = True, **options) -> dict:
    """Both robustness scores of each method's maps from the same perturbed clips:
    {"max_sensitivity": Robustness, "local_lipschitz": Robustness}.

    The maps are the normalized maps (N, T, H, W) in [0, 1] of `Explainer.explain`. Each of
    the `samples` perturbations d is uniform in the L-inf ball of radius `radius` x 255 (or
    Gaussian of that std, noise="gaussian"), drawn from a generator seeded by (seed, sample
    index) and added to every clip, not clipped to 0..255 (clipping would make the noise
    one-sided on saturated pixels). The perturbed clips are explained for the class
    explained on the originals (`target`, default the prediction there), so it is the map
    that moves, not the class. Per frame and per clip, the maximum over the samples of:

    - max-sensitivity (Yeh et al., 2019): ||map(x + d) - map(x)|| / ||map(x)||, a relative
      change (scale-free);
    - local Lipschitz estimate (Alvarez-Melis and Jaakkola, 2018):
      ||map(x + d) - map(x)|| / ||d||, with d in pixel values (0..255 units).

    Frobenius norms; a map that did not change scores 0, and a change where the original
    map (or d) is all zero has no scale: NaN. Costs `samples` more explain calls per method.
    `methods`: registry names or callables ``f(explainer, clips, target) -> maps``;
    `options` go to `Explainer.explain`.
    """
    check_robustness(samples, radius, noise)
    methods = check_methods(methods)
    batch, targets = clips_and_target(explainer, clips, target)
    return _robustness(explainer, batch, methods, targets, samples, radius, noise, seed, layer,
                       options, progress)


def max_sensitivity(explainer: Explainer, clips, methods=("gradcam",), target=None, samples: int = 10,
                    radius: float = 0.02, noise: str = "uniform", layer: str | None = None,
                    seed: int = 0, progress: bool = True, **options) -> Robustness:
    """Max-sensitivity (Yeh et al., 2019) of each method's normalized maps: the largest
    ||map(x + d) - map(x)|| / ||map(x)|| over `samples` small perturbations d, per frame
    (N, T) and per clip (N,). See `robustness`, which computes it with the Lipschitz
    estimate from the same explanations."""
    return robustness(explainer, clips, methods, target, samples, radius, noise, layer, seed,
                      progress, **options)["max_sensitivity"]


def local_lipschitz(explainer: Explainer, clips, methods=("gradcam",), target=None, samples: int = 10,
                    radius: float = 0.02, noise: str = "uniform", layer: str | None = None,
                    seed: int = 0, progress: bool = True, **options) -> Robustness:
    """Local Lipschitz estimate (Alvarez-Melis and Jaakkola, 2018) of each method's
    normalized maps: the largest ||map(x + d) - map(x)|| / ||d|| over `samples` small
    perturbations d (pixel values), per frame (N, T) and per clip (N,). See `robustness`."""
    return robustness(explainer, clips, methods, target, samples, radius, noise, layer, seed,
                      progress, **options)["local_lipschitz"]


def _moved(run, metric: str) -> np.ndarray:
    """A robustness column: both measures come from one set of `robustness_samples` uniform
    perturbations of radius `robustness_radius` (seed 0) per method."""
    settings = run.settings
    measured = run.once("robustness", lambda: _robustness(
        run.explainer, run.clips, [run.method], run.targets, settings["robustness_samples"],
        settings["robustness_radius"], "uniform", 0, run.layer, run.options, settings["progress"],
        original={run.name: run.maps}))
    return measured[metric].per_clip[run.name]


register(Metric("max-sensitivity", max_sensitivity, "robustness",
                "largest relative change of the maps under small input noise (Yeh et al., 2019)",
                "lower", "max_sensitivity", lambda run: _moved(run, "max_sensitivity"), "robustness_samples",
                memory="the method's explain call"))
register(Metric("local Lipschitz", local_lipschitz, "robustness",
                "largest change of the maps per unit of input noise (Alvarez-Melis and Jaakkola, 2018)",
                "lower", "local_lipschitz", lambda run: _moved(run, "local_lipschitz"), "robustness_samples",
                memory="the method's explain call"))
