"""Per-frame explanations of TimeDistributed(CNN) + RNN video classifiers.

One compiled pass gives, for a batch of clips, the class probabilities, the target class,
the activations of an inner layer of the wrapped CNN for every frame, and the gradients of
the target score with respect to both the input pixels and those activations: one forward
and one backward pass, whatever the number of frames. Every gradient method is then a cheap
rule on these tensors (as in pytorch-grad-cam's base_cam): saliency and gradient x input
use the pixel gradients; Grad-CAM, Grad-CAM++ and LayerCAM weight the activations, frame by
frame, with channel weights pooled over each frame's positions only (never over time).
SmoothGrad and Integrated Gradients run the same pass over batches of their samples, in
memory-bounded chunks; Score-CAM runs batched forward passes of masked frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import keras
import numpy as np
import tensorflow as tf

from . import unroll
from .data import check_clips
from .models import class_names, input_spec

GRADIENT_METHODS = ("saliency", "gradient_x_input", "smoothgrad", "integrated_gradients",
                    "integrated_gradients_blur")
CAM_METHODS = ("gradcam", "gradcam_pp", "layercam", "scorecam")
METHODS = GRADIENT_METHODS + CAM_METHODS
# The method the command line, the explorer and the workbook's first figures use. Grad-CAM,
# the paper's method, does not land on the evidence at course size (64 px: measured in
# notebook 04 and benchmarks/RESULTS.md); this one does, and its maps do not survive a
# re-initialized model, as an explanation of the model must not.
DEFAULT_METHOD = "integrated_gradients_blur"

__all__ = ["Explainer", "Explanation", "METHODS", "DEFAULT_METHOD", "frame_importance",
           "normalize_per_frame", "upsample", "blurred"]


@dataclass
class Explanation:
    """What `Explainer.explain` returns.

    probabilities (N, C); target (N,) class indices; maps[method] (N, T, H, W) in [0, 1],
    normalized per frame, at the clip's resolution. For teaching, the raw material too:
    raw[method] the maps before normalization (CAMs at the layer's resolution, (N, T, h, w)),
    channel_weights[method] (N, T, K) for the CAM methods, activations and
    activation_gradients (N, T, h, w, K) of `layer`, input_gradients (N, T, H, W, 3).
    """

    probabilities: np.ndarray
    target: np.ndarray
    class_names: tuple
    layer: str
    scores: np.ndarray
    maps: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    channel_weights: dict = field(default_factory=dict)
    activations: np.ndarray | None = None
    activation_gradients: np.ndarray | None = None
    input_gradients: np.ndarray | None = None

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def target_names(self) -> list:
        return [self.class_names[i] for i in self.target]


@dataclass
class _Pass:
    """The tensors of one forward + backward pass at `layer`, as NumPy arrays."""

    layer: str
    probabilities: np.ndarray
    target: np.ndarray
    scores: np.ndarray
    activations: np.ndarray
    activation_gradients: np.ndarray
    input_gradients: np.ndarray


def normalize_per_frame(maps: np.ndarray) -> np.ndarray:
    """Scale each frame of non-negative maps (..., H, W) to [0, 1] by its maximum; zero stays zero."""
    maps = np.asarray(maps, np.float32)
    peak = maps.max(axis=(-2, -1), keepdims=True)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


class Explainer:
    """Explains a video model whose frames go through a TimeDistributed CNN.

    Finds the TimeDistributed layer itself. `inner_layers` lists the CNN's layers with a
    spatial output (any of them can be explained); the default is the deepest convolution
    with at least 8x8 cells (`unroll.default_layer`: the paper's last convolution at 224 px).
    """

    def __init__(self, model: keras.Model, frames_per_pass: int = 64, jit_compile: bool = False):
        self.model = model
        self.wrapper = unroll.find_time_distributed(model)
        self.backbone = self.wrapper.layer
        self.frames, self.size = input_spec(model)
        self.class_names = class_names(model)
        self.inner_layers = unroll.spatial_layers(self.backbone)
        self.default_layer = unroll.default_layer(self.backbone)
        # Memory bound of the sampled methods: clips per chunk = frames_per_pass // T.
        self.frames_per_pass = frames_per_pass
        self.jit_compile = jit_compile  # XLA: slower first call, faster passes after it
        self._passes = {}

    # ------------------------------------------------------------------ the compiled pass

    def _compiled_pass(self, layer: str):
        """The tf.function of one forward + backward pass at `layer`, built once and reused."""
        if layer not in self._passes:
            unrolled = unroll.unrolled_model(self.model, layer, input_gradients_only=True)

            @tf.function(reduce_retracing=True, jit_compile=self.jit_compile)
            def run(clips, target):
                # Only the input and the activations are sources: no weight gradients.
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(clips)
                    activations, logits, probabilities = unrolled(clips, training=False)
                    predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
                    target = tf.where(target < 0, predicted, target)
                    scores = tf.gather(logits, target, batch_dims=1)
                    total = tf.reduce_sum(scores)  # clips are independent: one call, all gradients
                input_gradients, activation_gradients = tape.gradient(total, [clips, activations])
                return probabilities, target, scores, activations, activation_gradients, input_gradients

            @tf.function(reduce_retracing=True, jit_compile=self.jit_compile)
            def forward(clips):
                activations, logits, _ = unrolled(clips, training=False)
                return activations, logits

            self._passes[layer] = (run, forward)
        return self._passes[layer]

    def _run(self, clips: np.ndarray, target: np.ndarray, layer: str) -> _Pass:
        run, _ = self._compiled_pass(layer)
        outputs = run(tf.constant(clips, self.model.inputs[0].dtype), tf.constant(target, tf.int32))
        probabilities, target, scores, activations, activation_gradients, input_gradients = (
            o.numpy() for o in outputs)
        n, t = clips.shape[:2]
        return _Pass(layer, probabilities, target, scores,
                     activations.reshape((n, t) + activations.shape[1:]),
                     activation_gradients.reshape((n, t) + activation_gradients.shape[1:]),
                     input_gradients)

    def _forward(self, clips, layer: str | None, keep_activations: bool):
        """Batched forward passes (no gradient): logits (N, C) and, if asked, the activations
        (N, T, h, w, K) of `layer`."""
        _, forward = self._compiled_pass(layer or self.default_layer)
        clips = np.asarray(clips, np.float32)
        activations, logits = [], []
        for start in range(0, len(clips), self._chunk()):
            chunk = clips[start:start + self._chunk()]
            inner, scores = forward(tf.constant(_pad(chunk, self._chunk()), self.model.inputs[0].dtype))
            logits.append(scores.numpy()[:len(chunk)])
            if keep_activations:
                inner = inner.numpy().reshape((-1, self.frames) + tuple(inner.shape[1:]))
                activations.append(inner[:len(chunk)])
        return (np.concatenate(activations) if keep_activations else None), np.concatenate(logits)

    def logits(self, clips, layer: str | None = None) -> np.ndarray:
        """Class logits (N, C) of clips, from batched forward passes (no gradient)."""
        return self._forward(clips, layer, keep_activations=False)[1]

    def activations(self, clips, layer: str | None = None) -> np.ndarray:
        """Activations (N, T, h, w, K) of an inner layer for clips (N, T, H, W, 3), from
        batched forward passes (no gradient)."""
        layer = self.check_layer(layer, ())
        batch = check_clips(clips, frames=self.frames, size=self.size)
        return self._forward(batch, layer, keep_activations=True)[0]

    def scores(self, clips, target, layer: str | None = None) -> np.ndarray:
        """The target class score (logit) of each clip, from batched forward passes."""
        return self.logits(clips, layer)[np.arange(len(clips)), np.asarray(target, int)]

    def _chunk(self) -> int:
        return max(1, self.frames_per_pass // self.frames)

    # ------------------------------------------------------------------ public entry point

    def explain(self, clips, methods=("saliency", "gradcam"), layer: str | None = None,
                target=None, batch_size: int = 8, smoothgrad_samples: int = 25,
                smoothgrad_noise: float = 0.15, ig_steps: int = 64, ig_baseline=None,
                scorecam_channels: int | None = None, seed: int = 0) -> Explanation:
        """Explain clips (N, T, H, W, 3) or one clip (T, H, W, 3), RGB in 0..255.

        methods: any of ``METHODS``. layer: an inner layer of the backbone (see
        `inner_layers`), default `default_layer`. target: None for the predicted class,
        or a class index or name, or one per clip. SmoothGrad: `smoothgrad_samples` noisy
        copies with noise `smoothgrad_noise` x 255. Integrated Gradients: `ig_steps` steps
        from `ig_baseline` (default black, or an array like a clip); its ``_blur`` variant
        starts from `blurred(clips)` and keeps the positive attributions. Score-CAM: the
        `scorecam_channels` most active channels per frame (default all).
        """
        methods = self.check_methods(methods)
        layer = self.check_layer(layer, methods)
        batch = check_clips(clips, frames=self.frames, size=self.size)
        targets = self.check_target(target, len(batch))
        parts = [self._explain_batch(batch[i:i + batch_size], targets[i:i + batch_size], methods,
                                     layer, dict(smoothgrad_samples=smoothgrad_samples,
                                                 smoothgrad_noise=smoothgrad_noise, ig_steps=ig_steps,
                                                 ig_baseline=ig_baseline, seed=seed,
                                                 scorecam_channels=scorecam_channels))
                 for i in range(0, len(batch), batch_size)]
        return _concatenate(parts)

    def _explain_batch(self, clips, target, methods, layer, options) -> Explanation:
        one = self._run(clips, target, layer)
        result = Explanation(one.probabilities, one.target, self.class_names, layer, one.scores,
                             activations=one.activations, activation_gradients=one.activation_gradients,
                             input_gradients=one.input_gradients)
        for method in methods:
            if method in CAM_METHODS:
                weights, cam = self._cam(method, one, clips, options)
                result.channel_weights[method] = weights
                result.raw[method] = cam
                result.maps[method] = normalize_per_frame(upsample(cam, self.size))
            else:
                raw = self._gradient_map(method, one, clips, options)
                result.raw[method] = raw
                result.maps[method] = normalize_per_frame(raw)
        return result

    # ------------------------------------------------------------------ gradient methods

    def _gradient_map(self, method, one: _Pass, clips, options) -> np.ndarray:
        if method == "saliency":
            return np.abs(one.input_gradients).max(axis=-1)
        if method == "gradient_x_input":
            return np.abs((one.input_gradients * clips).sum(axis=-1))
        if method == "smoothgrad":
            gradients = self.smoothgrad_gradients(clips, one.target, options["smoothgrad_samples"],
                                                  options["smoothgrad_noise"], options["seed"], one.layer)
            return np.abs(gradients).max(axis=-1)
        if method == "integrated_gradients":
            attributions = self.integrated_gradients(clips, one.target, options["ig_steps"],
                                                     options["ig_baseline"], one.layer)
            return np.abs(attributions.sum(axis=-1))
        if method == "integrated_gradients_blur":
            # From a blurred copy of each frame, only the detail the frame adds is attributed;
            # kept where it raises the target score (the absolute value would keep every edge).
            attributions = self.integrated_gradients(clips, one.target, options["ig_steps"],
                                                     blurred(clips), one.layer)
            return np.maximum(attributions.sum(axis=-1), 0)
        raise AssertionError(method)

    def _sampled_gradients(self, samples_of, clips, target, count: int, layer: str) -> np.ndarray:
        """Mean input gradient over `count` samples per clip, in chunks of at most
        `frames_per_pass` frames; `samples_of(clip_index, sample_indices)` makes the inputs."""
        total = np.zeros_like(clips, dtype=np.float32)
        per_chunk = self._chunk()
        jobs = [(i, s) for i in range(len(clips)) for s in range(count)]
        for start in range(0, len(jobs), per_chunk):
            chunk = jobs[start:start + per_chunk]
            inputs = np.stack([samples_of(i, s) for i, s in chunk])
            targets = np.array([target[i] for i, _ in chunk])
            gradients = self._run(inputs, targets, layer).input_gradients
            for (i, _), gradient in zip(chunk, gradients):
                total[i] += gradient
        return total / count

    def smoothgrad_gradients(self, clips, target, samples=25, noise=0.15, seed=0,
                             layer: str | None = None) -> np.ndarray:
        """SmoothGrad: input gradients averaged over copies with Gaussian noise (std noise x 255).

        Each copy's noise is drawn when its chunk runs, from a generator seeded by (seed, clip,
        sample): memory stays at one chunk whatever the sample count, and the result does not
        depend on the chunk size."""
        def noisy(i, s):
            draw = np.random.default_rng([seed, i, s]).normal(0, noise * 255.0, clips.shape[1:])
            return clips[i] + draw.astype(np.float32)

        return self._sampled_gradients(noisy, clips, target, samples, layer or self.default_layer)

    def integrated_gradients(self, clips, target, steps=64, baseline=None,
                             layer: str | None = None) -> np.ndarray:
        """Integrated Gradients (N, T, H, W, 3): (x - baseline) x the mean gradient along the
        straight path, sampled at the midpoints of `steps` equal intervals."""
        clips = np.asarray(clips, np.float32)
        base = np.zeros_like(clips) if baseline is None else np.broadcast_to(
            np.asarray(baseline, np.float32), clips.shape)
        alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
        mean_gradient = self._sampled_gradients(
            lambda i, s: base[i] + alphas[s] * (clips[i] - base[i]), clips, target, steps,
            layer or self.default_layer)
        return (clips - base) * mean_gradient

    # ------------------------------------------------------------------ CAM methods

    def _cam(self, method, one: _Pass, clips, options):
        """Channel weights (N, T, K) and the map relu(sum_k w_k A_k) at the layer's resolution."""
        activations, gradients = one.activations, one.activation_gradients
        if method == "gradcam":
            weights = gradients.mean(axis=(2, 3))  # over each frame's positions, never over time
        elif method == "gradcam_pp":
            weights = _gradcam_pp_weights(activations, gradients)
        elif method == "layercam":
            # LayerCAM weighs every position by its own positive gradient.
            cam = np.maximum((np.maximum(gradients, 0) * activations).sum(axis=-1), 0)
            return np.maximum(gradients, 0).mean(axis=(2, 3)), cam
        elif method == "scorecam":
            weights = self._scorecam_weights(one, clips, options["scorecam_channels"])
        else:
            raise AssertionError(method)
        cam = np.maximum(np.einsum("nthwk,ntk->nthw", activations, weights), 0)
        return weights, cam

    def _scorecam_weights(self, one: _Pass, clips, channels: int | None) -> np.ndarray:
        """Score-CAM: each channel's upsampled, [0, 1]-scaled activation masks its own frame
        (the other frames unchanged); the softmax over channels of the target scores of the
        masked clips gives the frame's channel weights. All masked clips run in batches."""
        n, t, _, _, k = one.activations.shape
        channels = k if channels is None else min(int(channels), k)
        weights = np.zeros((n, t, k), np.float32)
        for i in range(n):
            masks = upsample(np.moveaxis(one.activations[i], -1, 1), self.size)  # (T, K, H, W)
            low = masks.min(axis=(2, 3), keepdims=True)
            span = masks.max(axis=(2, 3), keepdims=True) - low
            masks = np.divide(masks - low, span, out=np.zeros_like(masks), where=span > 0)
            strongest = np.argsort(-one.activations[i].mean(axis=(1, 2)), axis=1)[:, :channels]
            jobs = [(frame, channel) for frame in range(t) for channel in strongest[frame]]
            masked = np.repeat(clips[i][None], len(jobs), axis=0)
            for j, (frame, channel) in enumerate(jobs):
                masked[j, frame] *= masks[frame, channel][..., None]
            scores = self.scores(masked, np.full(len(jobs), one.target[i]), one.layer)
            for frame in range(t):
                picked = scores[frame * channels:(frame + 1) * channels]
                softmax = np.exp(picked - picked.max())
                weights[i, frame, strongest[frame]] = softmax / softmax.sum()
        return weights

    # ------------------------------------------------------------------ input checks

    @staticmethod
    def check_methods(methods) -> tuple:
        methods = (methods,) if isinstance(methods, str) else tuple(methods)
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValueError(f"unknown method(s) {unknown or methods}; valid methods: {', '.join(METHODS)}")
        return methods

    def check_layer(self, layer, methods) -> str:
        if layer is None:
            return self.default_layer
        all_names = [l.name for l in self.backbone.layers]
        if layer not in all_names:
            model_names = [l.name for l in self.model.layers]
            where = (f" ({layer!r} is a layer of the outer model, not of the wrapped backbone)"
                     if layer in model_names else "")
            raise ValueError(f"unknown layer {layer!r}{where}; inner layers of "
                             f"{self.backbone.name!r} with a spatial output: {', '.join(self.inner_layers)}")
        if layer not in self.inner_layers and any(m in CAM_METHODS for m in methods):
            raise ValueError(f"layer {layer!r} has no spatial output (shape "
                             f"{self.backbone.get_layer(layer).output.shape}), so CAM methods cannot "
                             f"use it; choose one of {', '.join(self.inner_layers)}")
        return layer

    def check_target(self, target, n: int) -> np.ndarray:
        """Target class per clip, -1 for 'the predicted class'."""
        if target is None:
            return np.full(n, -1, np.int32)
        items = [target] * n if isinstance(target, (str, int, np.integer)) else list(target)
        if len(items) != n:
            raise ValueError(f"target must be one class or one per clip ({n}), got {len(items)}")
        indices = []
        for item in items:
            if isinstance(item, str):
                if item not in self.class_names:
                    raise ValueError(f"unknown class {item!r}; classes: {', '.join(self.class_names)}")
                indices.append(self.class_names.index(item))
            elif isinstance(item, (int, np.integer)) and 0 <= item < len(self.class_names):
                indices.append(int(item))
            else:
                raise ValueError(f"target {item!r} is out of range; expected a class index in "
                                 f"0..{len(self.class_names) - 1} or a name in {self.class_names}")
        return np.array(indices, np.int32)


def blurred(clips: np.ndarray) -> np.ndarray:
    """Each frame under a Gaussian blur of sigma = frame height / 12 (5.3 px at 64 px): the
    baseline of ``integrated_gradients_blur`` (Sturmfels et al., 2020, "Visualizing the
    impact of feature attribution baselines"), the scene without its detail."""
    clips = np.asarray(clips, np.float32)
    sigma = clips.shape[-3] / 12
    frames = clips.reshape((-1,) + clips.shape[-3:])
    return np.stack([cv2.GaussianBlur(frame, (0, 0), sigma) for frame in frames]).reshape(clips.shape)


def _pad(batch: np.ndarray, size: int) -> np.ndarray:
    """Pad a short last chunk of forward passes by repeating its last item, so every chunk has
    one shape and the forward pass is traced once (callers use the first len(batch) results).
    The sampled gradient methods do not pad: there a padded chunk costs more than a trace."""
    if len(batch) == size:
        return batch
    return np.concatenate([batch, np.repeat(batch[-1:], size - len(batch), axis=0)])


def _gradcam_pp_weights(activations, gradients):
    """Grad-CAM++ channel weights per frame (Chattopadhay et al., 2018, with the exponential
    score's closed form for the higher-order derivatives)."""
    g2, g3 = gradients**2, gradients**3
    activation_sum = activations.sum(axis=(2, 3), keepdims=True)
    denominator = 2 * g2 + activation_sum * g3
    alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
    return (alpha * np.maximum(gradients, 0)).sum(axis=(2, 3))


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of maps (..., h, w) to (..., size, size)."""
    lead, (h, w) = maps.shape[:-2], maps.shape[-2:]
    flat = maps.reshape((-1, h, w, 1)).astype(np.float32)
    resized = tf.image.resize(flat, (size, size), method="bilinear").numpy()
    return resized.reshape(lead + (size, size))


def _concatenate(parts: list[Explanation]) -> Explanation:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]

    def cat(values):
        return None if values[0] is None else np.concatenate(values)

    return Explanation(
        probabilities=cat([p.probabilities for p in parts]), target=cat([p.target for p in parts]),
        class_names=first.class_names, layer=first.layer, scores=cat([p.scores for p in parts]),
        maps={m: cat([p.maps[m] for p in parts]) for m in first.maps},
        raw={m: cat([p.raw[m] for p in parts]) for m in first.raw},
        channel_weights={m: cat([p.channel_weights[m] for p in parts]) for m in first.channel_weights},
        activations=cat([p.activations for p in parts]),
        activation_gradients=cat([p.activation_gradients for p in parts]),
        input_gradients=cat([p.input_gradients for p in parts]),
    )


def frame_importance(model, clips, method: str = "occlusion", target=None, fill: str = "neighbors",
                     explainer: Explainer | None = None) -> np.ndarray:
    """Which frames drove the decision, (N, T): see `tdexplain.temporal.frame_importance`."""
    from .temporal import frame_importance as by_frame

    return by_frame(model, clips, method=method, target=target, fill=fill, explainer=explainer)
