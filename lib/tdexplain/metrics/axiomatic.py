"""Axioms: Integrated Gradients' completeness (its attributions add up to the score difference,
Sundararajan et al., 2017), and input invariance (Kindermans et al., 2017): a twin of the model
that takes x + c and computes exactly what the model computes on x should be explained as the
model is; saliency is, gradient x input is not."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops

from ..engine import graphs, shapes
from ..engine.explainer import Explainer
from ..engine.maps import blurred
from ..methods.pixel import integrated_gradients
from .catalogue import Metric, register
from .explained import check_methods, clips_and_target, method_maps
from .similarity import spearman

__all__ = ["Completeness", "completeness", "shifted_twin", "check_shift", "InputInvariance", "input_invariance"]


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
    score(baseline)? (`methods.pixel.integrated_gradients`, before the absolute value and the
    normalization of the maps.) target: as in `Explainer.explain`, a callable score too;
    baseline: None or "black" (zeros), "blur" (`engine.maps.blurred`, the default method's), or
    an array like the clips."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1 (points on the path), got {steps!r}")
    batch = explainer.check_clips(clips)
    base = _baseline(baseline, batch)
    logits = explainer.logits(batch)
    resolved = explainer.check_target(target, len(batch)).with_predictions(logits)
    total = integrated_gradients(explainer, batch, resolved, steps, base).sum(axis=(1, 2, 3, 4))
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


def check_shift(shift, frames: int, size: int) -> np.ndarray:
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
    unshift = _Unshift(check_shift(shift, clip.shape[1], clip.shape[2]), name="subtract_shift")
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
    result.maps = original or method_maps(explainer, batch, methods, targets, layer, options)
    result.shifted_maps = method_maps(twin, shifted, methods, targets, layer, options)
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
    methods = check_methods(methods)
    batch, targets = clips_and_target(explainer, clips, target)
    return _invariance(explainer, _twin_explainer(explainer, shift), batch, methods, targets, layer, options)


def _invariance_column(run) -> np.ndarray:
    """Each clip's Spearman between the maps of the model and of its twin shifted by
    `invariance_shift` (the twin is built once per call)."""
    twin = run.once("twin", lambda: _twin_explainer(run.explainer, run.settings["invariance_shift"]), shared=True)
    invariance = _invariance(run.explainer, twin, run.clips, [run.method], run.targets, run.layer,
                             run.options, original={run.name: run.maps})
    return invariance.spearman[run.name]


register(Metric("completeness", completeness, "axiomatic",
                "gap between the sum of Integrated Gradients' attributions and score(x) - score(baseline)",
                "lower (0: complete)", score="the logit",
                memory="gradient passes of `frames_per_pass` frames (Integrated Gradients')"))
register(Metric("input invariance", input_invariance, "axiomatic",
                "Spearman of the maps of the model on x and of a twin that takes x + c (Kindermans et al., 2017)",
                "higher (1: invariant)", "input_invariance", _invariance_column, "invariance_shift",
                memory="the method's, twice (the model and its shifted twin)"))
