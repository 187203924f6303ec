"""The explanation methods, one class each, in a registry (`tdexplain.registry`).

A method is a rule on the tensors of one gradient pass (`Pass`: the target score's gradients
with respect to the input pixels and to an inner layer's activations, for every frame at
once), plus, for the sampled and perturbation methods, more batched passes that it asks the
`Explainer` for. Each method declares its name, a short title for figures, whether it reads
the chosen inner layer (the CAM family) or the pixels, and its options with their defaults.
The command line, the explorer, the metrics and the README list methods from `REGISTRY`;
a new method is one class (decorated with `register`) and one test. This module holds the
pixel methods and imports the others: `cams` (an inner layer) and `perturbations` (forward
passes of changed clips), so importing it registers every method.
"""

from __future__ import annotations

import numpy as np

from . import registry
from .registry import (REGISTRY, Method, Pass, blurred, get, markdown_table, names,  # noqa: F401
                       normalize_per_frame, option_defaults, register, score_drops, to_frames, upsample)

__all__ = list(registry.__all__)  # the registry's public face; importing it registers every method


# ---------------------------------------------------------------------- pixel methods

# What bounds the sampled gradients' memory (SmoothGrad, both Integrated Gradients).
SAMPLED_MEMORY = "a batch's gradient pass, or one of `frames_per_pass` frames (at least a clip)"


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
    memory = SAMPLED_MEMORY

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
    memory = SAMPLED_MEMORY

    def attribute(self, explainer, one, clips, options):
        attributions = explainer.integrated_gradients(clips, one.targets(), options["ig_steps"],
                                                      options["ig_baseline"], one.layer)
        return np.abs(attributions.sum(axis=-1)), None


@register
class IntegratedGradientsBlur(Method):
    name, title = "integrated_gradients_blur", "IG from blur"
    options = {"ig_steps": 64}
    reference = "Sturmfels et al., 2020: Integrated Gradients from a blurred frame, positive part"
    memory = SAMPLED_MEMORY

    def attribute(self, explainer, one, clips, options):
        # From a blurred copy of each frame, only the detail the frame adds is attributed; kept
        # where it raises the target score (the absolute value would keep every edge).
        attributions = explainer.integrated_gradients(clips, one.targets(), options["ig_steps"],
                                                      blurred(clips), one.layer)
        return np.maximum(attributions.sum(axis=-1), 0), None


@register
class GuidedBackprop(Method):
    name, title = "guided_backprop", "Guided Backprop"
    reference = ("Springenberg et al., 2015: the gradient with each ReLU passing back only positive "
                 "gradients where its input was positive; absolute, largest over colours")
    memory = "a batch's gradient pass (then its guided one)"

    def attribute(self, explainer, one, clips, options):
        return np.abs(explainer.guided_gradients(clips, one.targets(), one.layer)).max(axis=-1), None


# The CAM family and the perturbation methods register themselves after the pixel methods (the
# order of the README's table and of every list of methods).
from . import cams, perturbations  # noqa: E402,F401

if __name__ == "__main__":
    print(markdown_table())
