"""The pixel methods: rules on the input gradients of one pass, and the sampled ones that
average more passes (SmoothGrad, Integrated Gradients) or run a guided one (Guided Backprop).

`smoothgrad_gradients`, `integrated_gradients` and `guided_gradients` are the algorithms the
classes apply, public for the metrics and for teaching; each asks the engine for gradient
passes only (`Engine.input_gradients`), in memory-bounded chunks (`sampling`).
"""

from __future__ import annotations

import numpy as np

from ..engine.maps import blurred
from ..engine.registry import Engine, Method, register
from .sampling import sampled_gradients

__all__ = ["smoothgrad_gradients", "integrated_gradients", "guided_gradients", "SAMPLED_MEMORY"]


def smoothgrad_gradients(engine: Engine, clips, target=None, samples=25, noise=0.15, seed=0,
                         layer: str | None = None) -> np.ndarray:
    """SmoothGrad: input gradients averaged over copies with Gaussian noise (std noise x 255).

    Copy s of every clip gets the same noise, drawn when its chunk runs from a generator
    seeded by (seed, s): memory stays at one chunk whatever the sample count, and a clip's
    result depends neither on the chunk size nor on the other clips of the batch."""
    clips = engine.check_clips(clips)

    def noisy(i, s):
        draw = np.random.default_rng([seed, s]).normal(0, noise * 255.0, clips.shape[1:])
        return clips[i] + draw.astype(np.float32)

    return sampled_gradients(engine, noisy, clips, engine.check_target(target, len(clips)), samples,
                             layer or engine.default_layer)


def integrated_gradients(engine: Engine, clips, target=None, steps=64, baseline=None,
                         layer: str | None = None) -> np.ndarray:
    """Integrated Gradients (N, T, H, W, 3): (x - baseline) x the mean gradient along the
    straight path, sampled at the midpoints of `steps` equal intervals."""
    clips = engine.check_clips(clips)
    base = np.zeros_like(clips) if baseline is None else np.broadcast_to(
        np.asarray(baseline, np.float32), clips.shape)
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
    mean_gradient = sampled_gradients(
        engine, lambda i, s: base[i] + alphas[s] * (clips[i] - base[i]), clips,
        engine.check_target(target, len(clips)), steps, layer or engine.default_layer)
    return (clips - base) * mean_gradient


def guided_gradients(engine: Engine, clips, target=None, layer: str | None = None) -> np.ndarray:
    """Guided Backprop's gradients (N, T, H, W, 3) of the target score, every frame in one
    pass (every ReLU, the backbone's and the head's, passes only positive gradients,
    `tdexplain.engine.guided`)."""
    clips = engine.check_clips(clips)
    return engine.input_gradients(clips, engine.check_target(target, len(clips)), layer or engine.default_layer,
                                  guided=True)


# What bounds the sampled gradients' memory (SmoothGrad, both Integrated Gradients).
SAMPLED_MEMORY = "a batch's gradient pass, or one of `frames_per_pass` frames (at least a clip)"


@register
class Saliency(Method):
    name, title = "saliency", "saliency"
    reference = "Simonyan et al., 2014: the absolute gradient of the score, largest over colours"

    def attribute(self, engine, one, clips, options):
        return np.abs(one.input_gradients).max(axis=-1), None


@register
class GradientXInput(Method):
    name, title = "gradient_x_input", "gradient x input"
    reference = "Shrikumar et al., 2016: the absolute sum over colours of gradient x pixel"

    def attribute(self, engine, one, clips, options):
        return np.abs((one.input_gradients * clips).sum(axis=-1)), None


@register
class SmoothGrad(Method):
    name, title = "smoothgrad", "SmoothGrad"
    options = {"smoothgrad_samples": 25, "smoothgrad_noise": 0.15, "seed": 0}
    reference = "Smilkov et al., 2017: saliency of the mean gradient over noisy copies"
    memory = SAMPLED_MEMORY

    def attribute(self, engine, one, clips, options):
        gradients = smoothgrad_gradients(engine, clips, one.targets(), options["smoothgrad_samples"],
                                         options["smoothgrad_noise"], options["seed"], one.layer)
        return np.abs(gradients).max(axis=-1), None


@register
class IntegratedGradients(Method):
    name, title = "integrated_gradients", "Integrated Gradients"
    options = {"ig_steps": 64, "ig_baseline": None}
    reference = "Sundararajan et al., 2017: (x - baseline) x the mean gradient on the path, absolute"
    memory = SAMPLED_MEMORY

    def attribute(self, engine, one, clips, options):
        attributions = integrated_gradients(engine, clips, one.targets(), options["ig_steps"],
                                            options["ig_baseline"], one.layer)
        return np.abs(attributions.sum(axis=-1)), None


@register
class IntegratedGradientsBlur(Method):
    name, title = "integrated_gradients_blur", "IG from blur"
    options = {"ig_steps": 64}
    reference = "Sturmfels et al., 2020: Integrated Gradients from a blurred frame, positive part"
    memory = SAMPLED_MEMORY

    def attribute(self, engine, one, clips, options):
        # From a blurred copy of each frame, only the detail the frame adds is attributed; kept
        # where it raises the target score (the absolute value would keep every edge).
        attributions = integrated_gradients(engine, clips, one.targets(), options["ig_steps"],
                                            blurred(clips), one.layer)
        return np.maximum(attributions.sum(axis=-1), 0), None


@register
class GuidedBackprop(Method):
    name, title = "guided_backprop", "Guided Backprop"
    reference = ("Springenberg et al., 2015: the gradient with each ReLU passing back only positive "
                 "gradients where its input was positive; absolute, largest over colours")
    memory = "a batch's gradient pass (then its guided one)"

    def attribute(self, engine, one, clips, options):
        return np.abs(guided_gradients(engine, clips, one.targets(), one.layer)).max(axis=-1), None
