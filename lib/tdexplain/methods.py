"""The explanation methods, one class each, in a registry.

A method is a rule on the tensors of one gradient pass (`Pass`: the target score's gradients
with respect to the input pixels and to an inner layer's activations, for every frame at
once), plus, for the sampled and perturbation methods, more batched passes that it asks the
`Explainer` for. Each method declares its name, a short title for figures, whether it reads
the chosen inner layer (the CAM family) or the pixels, and its options with their defaults.
The command line, the explorer, the metrics and the README list methods from `REGISTRY`;
a new method is one class here (decorated with `register`) and one test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .targets import Target

__all__ = ["Method", "Pass", "REGISTRY", "register", "get", "names", "normalize_per_frame",
           "upsample", "blurred"]


@dataclass
class Pass:
    """The tensors of one forward + backward pass at `layer`, as NumPy arrays: target (N,) is
    the explained class per clip (-1 with a callable score), activations and
    activation_gradients (N, T, h, w, K), input_gradients (N, T, H, W, 3)."""

    layer: str
    probabilities: np.ndarray
    target: np.ndarray
    scores: np.ndarray
    activations: np.ndarray
    activation_gradients: np.ndarray
    input_gradients: np.ndarray
    score: Callable | None = None
    label: str | None = None

    def targets(self) -> Target:
        """The resolved target of these clips, to pass on to further passes."""
        return Target(self.target, self.score, self.label)


class Method:
    """One explanation method. `attribute` returns the raw map (N, T, h, w) (at the layer's
    resolution when `uses_layer`, else at the pixels') and the channel weights (N, T, K) of a
    CAM, or None."""

    name = ""
    title = ""
    uses_layer = False  # the map is read at the chosen inner layer
    options: dict = {}  # option name -> default
    reference = ""

    def attribute(self, explainer, one: Pass, clips: np.ndarray, options: dict):
        raise NotImplementedError


REGISTRY: dict[str, Method] = {}


def register(cls):
    """Class decorator: add one instance of a Method subclass to the registry."""
    method = cls()
    if not method.name or method.name in REGISTRY:
        raise ValueError(f"a method needs a new name, got {method.name!r}")
    REGISTRY[method.name] = method
    return cls


def names(uses_layer: bool | None = None) -> tuple:
    """Registered method names, all of them or only those that do (not) read an inner layer."""
    return tuple(n for n, m in REGISTRY.items() if uses_layer is None or m.uses_layer == uses_layer)


def get(name: str) -> Method:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def option_defaults() -> dict:
    """Every registered option with its default (a shared option has one default)."""
    defaults = {}
    for method in REGISTRY.values():
        defaults.update(method.options)
    return defaults


# ---------------------------------------------------------------------- pixel methods


@register
class Saliency(Method):
    name, title = "saliency", "saliency"
    reference = "Simonyan et al., 2014: the absolute gradient of the score, largest over colours"

    def attribute(self, explainer, one, clips, options):
        return np.abs(one.input_gradients).max(axis=-1), None


@register
class GradientXInput(Method):
    name, title = "gradient_x_input", "gradient x input"
    reference = "Shrikumar et al., 2016: the absolute sum over colours of gradient x pixel"

    def attribute(self, explainer, one, clips, options):
        return np.abs((one.input_gradients * clips).sum(axis=-1)), None


@register
class SmoothGrad(Method):
    name, title = "smoothgrad", "SmoothGrad"
    options = {"smoothgrad_samples": 25, "smoothgrad_noise": 0.15, "seed": 0}
    reference = "Smilkov et al., 2017: saliency of the mean gradient over noisy copies"

    def attribute(self, explainer, one, clips, options):
        gradients = explainer.smoothgrad_gradients(
            clips, one.targets(), options["smoothgrad_samples"], options["smoothgrad_noise"],
            options["seed"], one.layer)
        return np.abs(gradients).max(axis=-1), None


@register
class IntegratedGradients(Method):
    name, title = "integrated_gradients", "Integrated Gradients"
    options = {"ig_steps": 64, "ig_baseline": None}
    reference = "Sundararajan et al., 2017: (x - baseline) x the mean gradient on the path, absolute"

    def attribute(self, explainer, one, clips, options):
        attributions = explainer.integrated_gradients(clips, one.targets(), options["ig_steps"],
                                                      options["ig_baseline"], one.layer)
        return np.abs(attributions.sum(axis=-1)), None


@register
class IntegratedGradientsBlur(Method):
    name, title = "integrated_gradients_blur", "IG from blur"
    options = {"ig_steps": 64}
    reference = "Sturmfels et al., 2020: Integrated Gradients from a blurred frame, positive part"

    def attribute(self, explainer, one, clips, options):
        # From a blurred copy of each frame, only the detail the frame adds is attributed; kept
        # where it raises the target score (the absolute value would keep every edge).
        attributions = explainer.integrated_gradients(clips, one.targets(), options["ig_steps"],
                                                      blurred(clips), one.layer)
        return np.maximum(attributions.sum(axis=-1), 0), None


# ---------------------------------------------------------------------- CAM methods


class CAM(Method):
    """relu(sum_k w_k A_k) per frame, with channel weights from `weights` (N, T, K)."""

    uses_layer = True

    def weights(self, explainer, one, clips, options) -> np.ndarray:
        raise NotImplementedError

    def attribute(self, explainer, one, clips, options):
        weights = self.weights(explainer, one, clips, options)
        return np.maximum(np.einsum("nthwk,ntk->nthw", one.activations, weights), 0), weights


@register
class GradCAM(CAM):
    name, title = "gradcam", "Grad-CAM"
    reference = "Selvaraju et al., 2017: weights = gradients averaged over each frame's positions"

    def weights(self, explainer, one, clips, options):
        return one.activation_gradients.mean(axis=(2, 3))  # over each frame's positions, never time


@register
class GradCAMPlusPlus(CAM):
    name, title = "gradcam_pp", "Grad-CAM++"
    reference = "Chattopadhay et al., 2018, with the exponential score's closed form"

    def weights(self, explainer, one, clips, options):
        activations, gradients = one.activations, one.activation_gradients
        g2, g3 = gradients**2, gradients**3
        activation_sum = activations.sum(axis=(2, 3), keepdims=True)
        denominator = 2 * g2 + activation_sum * g3
        alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
        return (alpha * np.maximum(gradients, 0)).sum(axis=(2, 3))


@register
class LayerCAM(CAM):
    name, title = "layercam", "LayerCAM"
    reference = "Jiang et al., 2021: every position weighed by its own positive gradient"

    def attribute(self, explainer, one, clips, options):
        positive = np.maximum(one.activation_gradients, 0)
        cam = np.maximum((positive * one.activations).sum(axis=-1), 0)
        return cam, positive.mean(axis=(2, 3))


@register
class ScoreCAM(CAM):
    name, title = "scorecam", "Score-CAM"
    options = {"scorecam_channels": None}
    reference = "Wang et al., 2020: weights = softmax of the scores of channel-masked frames"

    def weights(self, explainer, one, clips, options):
        """Each channel's upsampled, [0, 1]-scaled activation masks its own frame (the other
        frames unchanged); the softmax over channels of the target scores of the masked clips
        gives the frame's channel weights. All masked clips run in batched forward passes."""
        n, t, _, _, k = one.activations.shape
        channels = k if options["scorecam_channels"] is None else min(int(options["scorecam_channels"]), k)
        weights = np.zeros((n, t, k), np.float32)
        for i in range(n):
            masks = upsample(np.moveaxis(one.activations[i], -1, 1), clips.shape[-2])  # (T, K, H, W)
            low = masks.min(axis=(2, 3), keepdims=True)
            span = masks.max(axis=(2, 3), keepdims=True) - low
            masks = np.divide(masks - low, span, out=np.zeros_like(masks), where=span > 0)
            strongest = np.argsort(-one.activations[i].mean(axis=(1, 2)), axis=1)[:, :channels]
            jobs = [(frame, channel) for frame in range(t) for channel in strongest[frame]]
            masked = np.repeat(clips[i][None], len(jobs), axis=0)
            for j, (frame, channel) in enumerate(jobs):
                masked[j, frame] *= masks[frame, channel][..., None]
            scores = explainer.scores(masked, one.targets()[i:i + 1].repeat(len(jobs)), one.layer)
            for frame in range(t):
                picked = scores[frame * channels:(frame + 1) * channels]
                softmax = np.exp(picked - picked.max())
                weights[i, frame, strongest[frame]] = softmax / softmax.sum()
        return weights


# ---------------------------------------------------------------------- map helpers


def normalize_per_frame(maps: np.ndarray) -> np.ndarray:
    """Scale each frame of non-negative maps (..., H, W) to [0, 1] by its maximum; zero stays zero."""
    maps = np.asarray(maps, np.float32)
    peak = maps.max(axis=(-2, -1), keepdims=True)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of maps (..., h, w) to (..., size, size), pixel centres aligned as in
    tf.image.resize and keras.ops.image.resize (OpenCV's INTER_LINEAR)."""
    lead, (h, w) = maps.shape[:-2], maps.shape[-2:]
    flat = np.asarray(maps, np.float32).reshape((-1, h, w))
    resized = [cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR) for m in flat]
    return np.stack(resized).reshape(lead + (size, size)) if resized else np.zeros(lead + (size, size), np.float32)


def blurred(clips: np.ndarray) -> np.ndarray:
    """Each frame under a Gaussian blur of sigma = frame height / 12 (5.3 px at 64 px): the
    baseline of ``integrated_gradients_blur`` (Sturmfels et al., 2020, "Visualizing the
    impact of feature attribution baselines"), the scene without its detail."""
    clips = np.asarray(clips, np.float32)
    sigma = clips.shape[-3] / 12
    frames = clips.reshape((-1,) + clips.shape[-3:])
    return np.stack([cv2.GaussianBlur(frame, (0, 0), sigma) for frame in frames]).reshape(clips.shape)


def markdown_table() -> str:
    """The README's table of methods, made from the registry (`python -m tdexplain.methods`)."""
    rows = ["| method | title in figures | reads | options (default) | what it computes |",
            "|---|---|---|---|---|"]
    for method in REGISTRY.values():
        options = ", ".join(f"`{k}={v!r}`" for k, v in method.options.items()) or "none"
        reads = "an inner layer" if method.uses_layer else "the pixels"
        rows.append(f"| `{method.name}` | {method.title} | {reads} | {options} | {method.reference} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
