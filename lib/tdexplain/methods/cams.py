"""The CAM family: maps read at an inner layer of the wrapped CNN, one per frame.

Each method is a rule on the activations A (N, T, h, w, K) and their gradients of one pass
(`engine.registry.Pass`), as in pytorch-grad-cam's base_cam: most are relu(sum_k w_k A_k) with
their own channel weights w (N, T, K), pooled over each frame's positions and never over
time. Eigen-CAM needs no gradient; Score-CAM and Ablation-CAM ask the engine (`Engine`) for
batched forward passes of masked frames or ablated channels.
"""

from __future__ import annotations

import numpy as np

from ..engine.maps import normalize_per_frame, to_frames, upsample
from ..engine.registry import REGISTRY, Method, register
from .pixel import guided_gradients
from .sampling import score_drops

__all__ = ["CAM"]


class CAM(Method):
    """relu(sum_k w_k A_k) per frame, with channel weights from `weights` (N, T, K)."""

    uses_layer = True

    def weights(self, engine, one, clips, options) -> np.ndarray:
        raise NotImplementedError

    def attribute(self, engine, one, clips, options):
        weights = self.weights(engine, one, clips, options)
        return np.maximum(np.einsum("nthwk,ntk->nthw", one.activations, weights), 0), weights


@register
class GradCAM(CAM):
    name, title = "gradcam", "Grad-CAM"
    reference = "Selvaraju et al., 2017: weights = gradients averaged over each frame's positions"

    def weights(self, engine, one, clips, options):
        return one.activation_gradients.mean(axis=(2, 3))  # over each frame's positions, never time


@register
class GradCAMPlusPlus(CAM):
    name, title = "gradcam_pp", "Grad-CAM++"
    reference = "Chattopadhay et al., 2018, with the exponential score's closed form"

    def weights(self, engine, one, clips, options):
        activations, gradients = one.activations, one.activation_gradients
        g2, g3 = gradients**2, gradients**3
        activation_sum = activations.sum(axis=(2, 3), keepdims=True)
        denominator = 2 * g2 + activation_sum * g3
        alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
        return (alpha * np.maximum(gradients, 0)).sum(axis=(2, 3))


@register
class XGradCAM(CAM):
    name, title = "xgradcam", "XGrad-CAM"
    reference = ("Fu et al., 2020: weights = gradients averaged with each position's share of the channel's "
                 "activation (a share of its absolute sum, for signed activations)")

    def weights(self, engine, one, clips, options):
        """sum_ij A_ij / sum_ij |A_ij| x dS/dA_ij: Fu et al.'s shares where the activations are
        non-negative (after a ReLU); the absolute sum keeps signed ones (a BatchNorm's, a
        ConvLSTM2D's tanh) from dividing by a sum near zero, and the weight within the gradient's
        range."""
        activations = one.activations
        total = np.abs(activations).sum(axis=(2, 3), keepdims=True)
        share = np.divide(activations, total, out=np.zeros_like(activations), where=total != 0)
        return (share * one.activation_gradients).sum(axis=(2, 3))


@register
class HiResCAM(Method):
    name, title = "hirescam", "HiResCAM"
    uses_layer = True
    reference = ("Draelos & Carin, 2020: gradient x activation at every position, summed over "
                 "channels (sums to the score's first-order change)")

    def attribute(self, engine, one, clips, options):
        return np.maximum((one.activation_gradients * one.activations).sum(axis=-1), 0), None


@register
class LayerCAM(CAM):
    name, title = "layercam", "LayerCAM"
    reference = "Jiang et al., 2021: every position weighed by its own positive gradient"

    def attribute(self, engine, one, clips, options):
        positive = np.maximum(one.activation_gradients, 0)
        cam = np.maximum((positive * one.activations).sum(axis=-1), 0)
        return cam, positive.mean(axis=(2, 3))


@register
class EigenCAM(Method):
    name, title = "eigencam", "Eigen-CAM"
    uses_layer = True
    reference = ("Muhammad & Yeasin, 2020: each frame's activations on their first principal "
                 "component, no gradient (blind to the target)")
    score = "none (the activations only)"

    def attribute(self, engine, one, clips, options):
        n, t, h, w, k = one.activations.shape
        positions = one.activations.reshape(n, t, h * w, k)
        centered = positions - positions.mean(axis=2, keepdims=True)
        component = np.linalg.svd(centered, full_matrices=False)[2][..., 0, :]  # (N, T, K)
        projection = np.einsum("ntpk,ntk->ntp", centered, component)
        # A singular vector's sign is arbitrary: orient each frame's component so that the
        # projection grows with the activation's channel sum (otherwise half the maps come out
        # as their negative, and the relu keeps the background).
        strength = positions.sum(axis=-1)
        agreement = (projection * (strength - strength.mean(axis=2, keepdims=True))).sum(axis=2)
        sign = np.where(agreement < 0, -1.0, 1.0).astype(np.float32)[..., None]
        return np.maximum(projection * sign, 0).reshape(n, t, h, w), component * sign


def _strongest(activations: np.ndarray, channels: int) -> np.ndarray:
    """(T, channels): each frame's most active channels, from activations (T, h, w, K)."""
    return np.argsort(-activations.mean(axis=(1, 2)), axis=1)[:, :channels]


def _channel_count(name: str, option, k: int) -> int:
    """The strongest channels a masking CAM scores: all k (None), else `option` (at most k)."""
    if option is None:
        return k
    if isinstance(option, bool) or not isinstance(option, (int, np.integer)) or option < 1:
        raise ValueError(f"{name} must be None (every channel) or an integer >= 1, got {option!r}")
    return min(int(option), k)


def _masked(clip: np.ndarray, activations: np.ndarray, jobs: list) -> np.ndarray:
    """Copies of the clip (T, H, W, 3), one per (frame, channel) job: that frame times that
    channel's activation (T, h, w, K), upsampled and scaled to [0, 1]."""
    frames, picked = np.array(jobs).T
    masks = upsample(activations[frames, :, :, picked], clip.shape[-2])  # (jobs, H, W)
    low = masks.min(axis=(1, 2), keepdims=True)
    span = masks.max(axis=(1, 2), keepdims=True) - low
    masks = np.divide(masks - low, span, out=np.zeros_like(masks), where=span > 0)
    masked = np.repeat(clip[None], len(jobs), axis=0)
    masked[np.arange(len(jobs)), frames] *= masks[..., None]
    return masked


@register
class ScoreCAM(CAM):
    name, title = "scorecam", "Score-CAM"
    pairs_steps_with_frames = True
    options = {"scorecam_channels": None}
    reference = "Wang et al., 2020: weights = softmax of the scores of channel-masked frames"
    score = "the logit of each masked clip"
    memory = "a batch's gradient pass, or `clips_per_call` masked clips"

    def weights(self, engine, one, clips, options):
        """Each channel's upsampled, [0, 1]-scaled activation masks its own frame (the other
        frames unchanged); the softmax over channels of the target scores of the masked clips
        gives the frame's channel weights. The masked clips are made and scored
        `clips_per_call` at a time, for the scored channels only: memory does not grow with
        T x K (at 224 px, 8 frames and 512 channels, all at once would be 20 GB of clips)."""
        n, t, _, _, k = one.activations.shape
        channels = _channel_count("scorecam_channels", options["scorecam_channels"], k)
        per_call = engine.clips_per_call()
        weights = np.zeros((n, t, k), np.float32)
        for i in range(n):
            strongest = _strongest(one.activations[i], channels)
            jobs = [(frame, channel) for frame in range(t) for channel in strongest[frame]]
            scores = []
            for start in range(0, len(jobs), per_call):
                chunk = jobs[start:start + per_call]
                scores.append(engine.scores(_masked(clips[i], one.activations[i], chunk),
                                               one.targets()[i:i + 1].repeat(len(chunk)), one.layer))
            scores = np.concatenate(scores)
            for frame in range(t):
                picked = scores[frame * channels:(frame + 1) * channels]
                softmax = np.exp(picked - picked.max())
                weights[i, frame, strongest[frame]] = softmax / softmax.sum()
        return weights


@register
class AblationCAM(CAM):
    name, title = "ablationcam", "Ablation-CAM"
    options = {"ablation_channels": None}
    reference = ("Desai & Ramaswamy, 2020: weights = the score's relative drop when the channel "
                 "is zeroed in its frame")
    score = "the logit's relative drop"
    memory = ("a batch's gradient pass, or `clips_per_call` clips with a probe each (one clip's "
              "activations at the layer)")

    def weights(self, engine, one, clips, options):
        """Channel k of frame t is zeroed by adding -A[t, ..., k] at the layer (the pass's
        probe), the other frames and channels unchanged; its weight is (y - y_k) / |y| (the
        paper divides by y: the same for a positive score, and a negative one does not flip
        the map). Channels left out by `ablation_channels` get weight 0."""
        n, t, h, w, k = one.activations.shape
        channels = _channel_count("ablation_channels", options["ablation_channels"], k)
        weights = np.zeros((n, t, k), np.float32)
        for i in range(n):
            strongest = _strongest(one.activations[i], channels)
            jobs = [(frame, channel) for frame in range(t) for channel in strongest[frame]]

            def ablate(chunk):  # row 0 keeps every channel
                probe = np.zeros((len(chunk) + 1, t, h, w, k), np.float32)
                for j, (frame, channel) in enumerate(chunk, start=1):
                    probe[j, frame, :, :, channel] = -one.activations[i, frame, :, :, channel]
                return np.repeat(clips[i][None], len(chunk) + 1, axis=0), probe

            for chunk, drop in score_drops(engine, one, i, jobs, ablate):
                frames, picked = np.array(chunk).T
                weights[i, frames, picked] = drop / max(abs(float(one.scores[i])), 1e-12)
        return weights


@register
class GuidedGradCAM(Method):
    name, title = "guided_gradcam", "Guided Grad-CAM"
    uses_layer = True
    reference = "Selvaraju et al., 2017: Guided Backprop's map times the frame's upsampled Grad-CAM"
    memory = "a batch's gradient pass (then its guided one)"

    def attribute(self, engine, one, clips, options):
        cam, weights = REGISTRY["gradcam"].attribute(engine, one, clips, options)
        guided = np.abs(guided_gradients(engine, clips, one.targets(), one.layer)).max(axis=-1)
        return guided * normalize_per_frame(upsample(to_frames(cam, clips.shape[1]), clips.shape[-2])), weights
