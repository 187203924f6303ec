"""The method registry: what a method is (`Method`, a rule on the tensors of one `Pass`), the
registry the command line, the explorer, the metrics and the README read, and the helpers
every map goes through (per-frame normalization, upsampling, the blur baseline). The methods
themselves live in `methods` (pixels), `cams` (an inner layer) and `perturbations`.
"""


from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .targets import Target

__all__ = ["Method", "Pass", "REGISTRY", "register", "get", "names", "option_defaults",
           "normalize_per_frame", "upsample", "to_frames", "blurred", "score_drops", "markdown_table"]


@dataclass
class Pass:
    """The tensors of one forward + backward pass at `layer`, as NumPy arrays: target (N,) is
    the explained class per clip (-1 with a callable score), activations and
    activation_gradients (N, S, h, w, K) (S = T, or a Conv3D/ConvLSTM2D layer's time steps),
    input_gradients (N, T, H, W, 3)."""

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
    pairs_steps_with_frames = False  # the rule uses the layer's step t on frame t (needs S == T)
    options: dict = {}  # option name -> default
    reference = ""
    score = "the logit"  # what it explains (README: "What score is explained")
    memory = "a batch's gradient pass (`batch_size` clips)"  # what bounds its peak memory

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


def to_frames(maps: np.ndarray, frames: int) -> np.ndarray:
    """Maps (N, S, h, w) of a layer with S time steps at the clip's T frames (N, T, h, w), by
    linear interpolation in time with step and frame centres aligned (`upsample`'s rule, as for
    a Conv3D layer with temporal stride or pooling); the maps themselves when S == T."""
    steps = maps.shape[1]
    if steps == frames:
        return maps
    position = np.clip((np.arange(frames) + 0.5) * steps / frames - 0.5, 0, steps - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, steps - 1)
    weight = (position - low).astype(np.float32)[:, None, None]
    return (1 - weight) * maps[:, low] + weight * maps[:, high]


def blurred(clips: np.ndarray) -> np.ndarray:
    """Each frame under a Gaussian blur of sigma = frame height / 12 (5.3 px at 64 px): the
    baseline of ``integrated_gradients_blur`` (Sturmfels et al., 2020, "Visualizing the
    impact of feature attribution baselines"), the scene without its detail."""
    clips = np.asarray(clips, np.float32)
    sigma = clips.shape[-3] / 12
    frames = clips.reshape((-1,) + clips.shape[-3:])
    return np.stack([cv2.GaussianBlur(frame, (0, 0), sigma) for frame in frames]).reshape(clips.shape)


def score_drops(explainer, one: Pass, i: int, jobs: list, perturb):
    """The drop of clip i's score under each perturbation in `jobs`, in chunks of one
    forward call: yields (chunk, drops). `perturb(chunk)` returns the clips (and probe, or
    None) of len(chunk) + 1 copies whose row 0 is left unperturbed: each drop compares two
    scores of one call, so a perturbation the score ignores drops by exactly 0, not by the
    rounding difference between the gradient pass and a forward pass of another batch size."""
    per_call = max(2, explainer.clips_per_call())
    for start in range(0, len(jobs), per_call - 1):
        chunk = jobs[start:start + per_call - 1]
        copies, probe = perturb(chunk)
        scores = explainer.scores(copies, one.targets()[i:i + 1].repeat(len(chunk) + 1), one.layer, probe)
        del copies, probe  # before the next chunk's are made: one chunk in memory at a time
        yield chunk, scores[0] - scores[1:]


def markdown_table() -> str:
    """The README's table of methods, made from the registry (`python -m tdexplain.methods`)."""
    rows = ["| method | title in figures | reads | score | options (default) | peak memory: at most | "
            "what it computes |", "|---|---|---|---|---|---|---|"]
    for method in REGISTRY.values():
        options = ", ".join(f"`{k}={v!r}`" for k, v in method.options.items()) or "none"
        reads = "an inner layer" if method.uses_layer else "the pixels"
        rows.append(f"| `{method.name}` | {method.title} | {reads} | {method.score} | {options} | "
                    f"{method.memory} | {method.reference} |")
    return "\n".join(rows)
