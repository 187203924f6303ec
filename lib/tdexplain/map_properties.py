"""Properties of a method's maps that need no ground truth: complexity, robustness, axioms.

Localization needs evidence masks and faithfulness follows the class probability as pixels
go; these need neither. Three families that Quantus (Hedström et al., 2023) has and the rest
of `tdexplain.metrics` lacked, on maps (N, T, H, W) in [0, 1] as `Explainer.explain`
returns them (normalized per frame: every score below is about those normalized maps):

- complexity: how concentrated each frame's map is, its sparseness (Gini index, Chalasani
  et al., 2020) and its entropy. Pure NumPy, per frame.
- robustness: how far a method's maps move when the clips get noise too small to change
  the class: max-sensitivity (Yeh et al., 2019) and the local Lipschitz estimate
  (Alvarez-Melis and Jaakkola, 2018). Every method sees the same seeded noise.
- axioms: Integrated Gradients' completeness (its attributions add up to the score
  difference, Sundararajan et al., 2017), and input invariance (Kindermans et al., 2017):
  a twin of the model that takes x + c and computes exactly what the model computes on x
  should be explained as the model is; saliency is, gradient x input is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops
from tqdm.auto import tqdm

from . import graphs, shapes
from .data import check_clips
from .explain import Explainer, blurred
from .similarity import spearman

NOISES = ("uniform", "gaussian")

__all__ = ["sparseness", "entropy", "Robustness", "robustness", "max_sensitivity",
           "local_lipschitz", "NOISES", "Completeness", "completeness", "shifted_twin",
           "InputInvariance", "input_invariance"]


# ---------------------------------------------------------------------------- maps of methods

def _clips_and_target(explainer: Explainer, clips, target) -> tuple[np.ndarray, np.ndarray]:
    """The clips and the class explained in each (the metrics follow a class)."""
    batch = check_clips(clips, explainer.frames, explainer.size)
    resolved = explainer.check_target(target, len(batch))
    if resolved.score is not None:
        raise ValueError("the metrics follow a class probability: pass a class index or name as "
                         "target, not a callable score")
    if (resolved.classes < 0).any():
        resolved = resolved.with_predictions(explainer.logits(batch))
    return batch, resolved.classes


def _method_maps(explainer: Explainer, clips, methods, target, layer, options) -> dict:
    """{name: maps (N, T, H, W)} for method names and for callables
    ``f(explainer, clips, target) -> maps`` (a baseline that ignores the model, say)."""
    names = [m for m in methods if isinstance(m, str)]
    maps = {}
    if names:
        maps.update(explainer.explain(clips, methods=names, layer=layer, target=target, **options).maps)
    for method in methods:
        if callable(method):
            made = np.asarray(method(explainer, clips, target), np.float32)
            if made.shape != clips.shape[:4]:
                raise ValueError(f"method {method.__name__!r} returned maps of shape {made.shape}; "
                                 f"expected (N, T, H, W) = {clips.shape[:4]}, one map per frame")
            maps[method.__name__] = made
    return maps


def _check_methods(methods) -> tuple:
    """Method names (validated) and callables ``f(explainer, clips, target) -> maps``."""
    methods = (methods,) if isinstance(methods, str) or callable(methods) else tuple(methods)
    names = [m for m in methods if not callable(m)]
    if names or not methods:
        Explainer.check_methods(names)
    return methods


# ---------------------------------------------------------------------------- complexity

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


# ---------------------------------------------------------------------------- robustness

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


def _check_robustness(samples, radius, noise, prefix: str = "", least: int = 1) -> None:
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
    original = original or _method_maps(explainer, batch, methods, targets, layer, options)
    n, t = batch.shape[:2]
    flat = {name: maps.reshape(n, t, -1).astype(np.float64) for name, maps in original.items()}
    size = {name: np.sqrt((maps ** 2).sum(axis=-1)) for name, maps in flat.items()}  # (N, T)
    found = {metric: Robustness(metric, samples, float(radius), noise) for metric in
             ("max_sensitivity", "local_lipschitz")}
    for sample in tqdm(range(samples), desc="robustness", unit="sample", disable=not progress):
        delta = _noise(batch.shape[1:], sample, radius, noise, seed)
        delta_frame = np.sqrt((delta.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))  # (T,)
        delta_frame = np.broadcast_to(delta_frame, (n, t))
        moved = _method_maps(explainer, batch + delta, methods, targets, layer, options)
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
    _check_robustness(samples, radius, noise)
    methods = _check_methods(methods)
    batch, targets = _clips_and_target(explainer, clips, target)
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


# ---------------------------------------------------------------------------- axioms

@dataclass
class Completeness:
    """Integrated Gradients' completeness, per clip (N,): `attribution_sum` over every frame,
    pixel and colour; `score_difference` = score(x) - score(baseline); `gap` =
    |sum - difference| / |difference| (0: complete; the Riemann sum's error shrinks as
    `steps` grows), 0 where both are 0 and inf where only the difference is."""

    target: np.ndarray
    steps: int
    attribution_sum: np.ndarray
    score_difference: np.ndarray
    gap: np.ndarray


def _baseline(baseline, batch: np.ndarray) -> np.ndarray:
    if baseline is None or (isinstance(baseline, str) and baseline == "black"):
        return np.zeros_like(batch)
    if isinstance(baseline, str) and baseline == "blur":
        return blurred(batch)
    if isinstance(baseline, str):
        raise ValueError(f"baseline must be None or 'black', 'blur', or an array like the clips, "
                         f"got {baseline!r}")
    try:
        return np.broadcast_to(np.asarray(baseline, np.float32), batch.shape).copy()
    except ValueError:
        raise ValueError(f"baseline of shape {np.shape(baseline)} does not broadcast to the clips "
                         f"{batch.shape}; pass a clip (T, H, W, 3), one per clip, or None") from None


def completeness(explainer: Explainer, clips, target=None, steps: int = 64, baseline=None) -> Completeness:
    """Do the Integrated Gradients attributions of each clip add up to score(x) -
    score(baseline)? (`Explainer.integrated_gradients`, before the absolute value and the
    normalization of the maps.) target: as in `Explainer.explain`, a callable score too;
    baseline: None or "black" (zeros), "blur" (`explain.blurred`, the default method's), or
    an array like the clips."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1 (points on the path), got {steps!r}")
    batch = check_clips(clips, explainer.frames, explainer.size)
    base = _baseline(baseline, batch)
    logits = explainer.logits(batch)
    resolved = explainer.check_target(target, len(batch)).with_predictions(logits)
    total = explainer.integrated_gradients(batch, resolved, steps, base).sum(axis=(1, 2, 3, 4))
    difference = resolved.of(logits) - explainer.scores(base, resolved)
    error = np.abs(total - difference)
    gap = np.divide(error, np.abs(difference), out=np.where(error > 0, np.inf, 0.0),
                    where=difference != 0)
    return Completeness(resolved.classes, int(steps), total, difference, gap)


class _Unshift(keras.layers.Layer):
    """x - shift: the twin's first step, so that on x + shift it computes the model on x."""

    def __init__(self, shift, **kwargs):
        super().__init__(**kwargs)
        self.shift = np.asarray(shift, np.float32)

    def call(self, clips):
        return clips - ops.convert_to_tensor(self.shift, dtype=clips.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def _check_shift(shift, frames: int, size: int) -> np.ndarray:
    array = np.asarray(shift, np.float32)
    try:
        np.broadcast_shapes(array.shape, (frames, size, size, 3))
    except ValueError:
        raise ValueError(f"shift must be a number or an array that broadcasts to a clip "
                         f"({frames}, {size}, {size}, 3), got shape {array.shape}") from None
    if not np.isfinite(array).all() or not array.any():
        raise ValueError("shift must be finite and not all zero (the twin would be the model)")
    return array


def shifted_twin(model: keras.Model, shift, clip_input=None) -> keras.Model:
    """A model that takes clips x + shift and computes exactly what `model` computes on x.

    The model's graph (flattened: a Sequential or nested model too) is replayed with its own
    layers (the weights are shared, not copied), `shift` subtracted from the clip input (the
    only 5-D one, or `clip_input`) before anything reads it; the other inputs and every output
    are the model's. An `Explainer` of the twin explains the same CNN. shift: a number or an
    array that broadcasts to a clip."""
    graph = graphs.flatten(model)
    index = shapes.clip_input_index(graph, clip_input)
    clip = graph.inputs[index]
    unshift = _Unshift(_check_shift(shift, clip.shape[1], clip.shape[2]), name="subtract_shift")
    inputs = graphs.fresh_inputs(graph)
    read = [unshift(x) if i == index else x for i, x in enumerate(inputs)]
    outputs = graphs.run_graph(graph, read, lambda layer, *args, **kwargs: layer(*args, **kwargs))
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=f"{model.name}_shifted_input")


@dataclass
class InputInvariance:
    """Maps of the model on clips x and of its shifted twin on x + shift (Kindermans et al.,
    2017). Per method: spearman[method] (N,), each clip's rank correlation between the two
    maps, mean over its frames (1: invariant); max_difference[method] (N,), the largest
    |difference| of the two maps in the clip (0: identical); maps[method] and
    shifted_maps[method] (N, T, H, W). logit_difference: the largest |twin's logits on
    x + shift - model's logits on x|, float rounding only."""

    shift: np.ndarray
    logit_difference: float
    spearman: dict = field(default_factory=dict)
    max_difference: dict = field(default_factory=dict)
    maps: dict = field(default_factory=dict)
    shifted_maps: dict = field(default_factory=dict)


def _twin_explainer(explainer: Explainer, shift) -> Explainer:
    """The explainer of the shifted twin, explaining the same output with the same inputs held."""
    video = explainer.video
    return Explainer(shifted_twin(explainer.model, shift, video.clip_input), explainer.frames_per_pass,
                     explainer.jit_compile, output=video.output, clip_input=video.clip_input,
                     other_inputs=video.held)


def _invariance(explainer, twin, batch, methods, targets, layer, options, original=None) -> InputInvariance:
    shift = twin.model.get_layer("subtract_shift").shift
    shifted = batch + shift
    result = InputInvariance(shift, float(np.abs(twin.logits(shifted) - explainer.logits(batch)).max()))
    result.maps = original or _method_maps(explainer, batch, methods, targets, layer, options)
    result.shifted_maps = _method_maps(twin, shifted, methods, targets, layer, options)
    for name, maps in result.maps.items():
        result.spearman[name] = spearman(maps, result.shifted_maps[name]).mean(axis=1)
        result.max_difference[name] = np.abs(maps - result.shifted_maps[name]).max(axis=(1, 2, 3))
    return result


def input_invariance(model, clips, methods=("saliency", "gradient_x_input"), shift=-127.5,
                     target=None, layer: str | None = None, **options) -> InputInvariance:
    """Input invariance (Kindermans et al., 2017, "The (un)reliability of saliency methods"):
    a method should explain the twin that takes x + shift (`shifted_twin`, the same function
    of x) as it explains the model on x. Saliency and the CAMs read gradients and activations,
    which the shift leaves alone; gradient x input multiplies by x + shift, and Integrated
    Gradients from a black baseline integrates from another point of x. The default shift
    centres the pixels (x - 127.5). model: a keras model or an `Explainer` of it; target:
    the class explained in both (default: the model's prediction on x); `options` go to
    `Explainer.explain`."""
    explainer = model if isinstance(model, Explainer) else Explainer(model)
    methods = _check_methods(methods)
    batch, targets = _clips_and_target(explainer, clips, target)
    return _invariance(explainer, _twin_explainer(explainer, shift), batch, methods, targets, layer, options)
