"""Faithfulness without ground truth: deletion and insertion curves (remove or reveal pixels in
order of importance, per frame or across the whole clip, and follow the class probability), and
the same for whole frames."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..engine.explainer import Explainer
from .catalogue import Metric, register
from .explained import clips_and_target

FILLS = ("blur", "black", "mean")
VARIANT_BYTES = 256 * 2**20  # the removed and revealed clips built at a time by the curves

__all__ = ["Curve", "deletion_curve", "frame_deletion_curve", "FILLS", "VARIANT_BYTES"]


@dataclass
class Curve:
    """A deletion or insertion curve: the target class probability (N, S + 1) after removing
    (or revealing) each fraction of the pixels or frames, most important first."""

    mode: str
    fractions: np.ndarray
    probabilities: np.ndarray
    target: np.ndarray

    @property
    def auc(self) -> np.ndarray:
        """Area under each clip's curve, over fractions 0..1 (N,). Deletion: lower is more
        faithful (the probability falls fast). Insertion: higher is more faithful."""
        p, x = self.probabilities, self.fractions
        return ((p[:, 1:] + p[:, :-1]) / 2 * np.diff(x)).sum(axis=1)


def _fill(clips: np.ndarray, fill: str) -> np.ndarray:
    """What removed pixels become: a strong blur of the frame (keeps colours, removes
    detail, the usual choice since RISE), black, or the clip's mean frame (removes motion)."""
    if fill == "black":
        return np.zeros_like(clips)
    if fill == "mean":
        return np.broadcast_to(clips.mean(axis=1, keepdims=True), clips.shape).copy()
    size = clips.shape[2]
    kernel = 2 * (size // 8) + 1
    return np.stack([[cv2.GaussianBlur(frame, (kernel, kernel), 0) for frame in clip] for clip in clips])


def _rank_fraction(importance: np.ndarray, axes: tuple, rng: np.random.Generator) -> np.ndarray:
    """Each element's place in the order of decreasing importance within `axes`, as a
    fraction in [0, 1): 0 is the most important. Ties are broken at random, not by position
    (an all-zero region would otherwise be removed top-left first)."""
    moved = np.moveaxis(importance, axes, tuple(range(-len(axes), 0)))
    flat = moved.reshape(moved.shape[:moved.ndim - len(axes)] + (-1,))
    ties = rng.random(flat.shape)
    order = np.lexsort((ties, -flat), axis=-1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[-1]), axis=-1)
    fraction = (ranks / flat.shape[-1]).reshape(moved.shape)
    return np.moveaxis(fraction, tuple(range(-len(axes), 0)), axes)


def _curve(explainer: Explainer, clips, rank, target, steps: int, mode: str, fill: str,
           progress: bool, desc: str) -> Curve:
    """Probabilities of the target as the elements with rank fraction below k / steps are
    removed (deletion) or revealed (insertion), k = 0..steps. The variants of several clips go
    through the model together (up to VARIANT_BYTES of them at a time): one call per clip
    would run a short last chunk per clip."""
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    fractions = np.linspace(0, 1, steps + 1)
    filled = _fill(clips, fill)
    probabilities = np.zeros((len(clips), steps + 1), np.float32)
    group = max(1, VARIANT_BYTES // ((steps + 1) * clips[0].nbytes))  # clips per call
    with tqdm(total=len(clips), desc=desc, unit="clip", disable=not progress) as bar:
        for start in range(0, len(clips), group):
            part = slice(start, start + group)
            changed = rank[part, None] < fractions[None, :, None, None, None]  # (n, S + 1, T, H, W)
            if mode == "insertion":
                changed = ~changed
            variants = np.where(changed[..., None], filled[part, None], clips[part, None])
            of_target = explainer.probabilities(variants.reshape((-1,) + clips.shape[1:]))
            of_target = of_target.reshape(variants.shape[:2] + (-1,))
            probabilities[part] = np.take_along_axis(of_target, target[part, None, None], axis=2)[..., 0]
            bar.update(len(variants))
            del changed, variants  # before the next group's are made: one group in memory at a time
    return Curve(mode, fractions, probabilities, target)


def deletion_curve(explainer: Explainer, clips, maps, target=None, mode: str = "deletion",
                   scope: str = "frame", steps: int = 16, fill: str = "blur", seed: int = 0,
                   progress: bool = True) -> Curve:
    """Deletion (or insertion) curve of maps (N, T, H, W) for clips (N, T, H, W, 3).

    scope "frame": each step removes the same share of every frame, each frame's own most
    important pixels first; "clip": pixels are ranked across the whole clip, so a frame the
    map ignores keeps its pixels longest. Removed pixels take the value of `fill` (see
    FILLS); insertion starts from the filled clip and reveals. target: None for the
    predicted class, or a class index or name, or one per clip.
    """
    batch, targets = clips_and_target(explainer, clips, target)
    maps = np.asarray(maps, np.float32)
    if maps.shape != batch.shape[:4]:
        raise ValueError(f"maps must be (N, T, H, W) = {batch.shape[:4]} to match the clips, got {maps.shape}")
    if scope not in ("frame", "clip"):
        raise ValueError(f"scope must be 'frame' or 'clip', got {scope!r}")
    axes = (2, 3) if scope == "frame" else (1, 2, 3)
    rank = _rank_fraction(maps, axes, np.random.default_rng(seed))
    return _curve(explainer, batch, rank, targets, steps, mode, fill, progress, f"{mode} ({scope})")


def frame_deletion_curve(explainer: Explainer, clips, frame_scores, target=None,
                         mode: str = "deletion", fill: str = "mean", seed: int = 0,
                         progress: bool = True) -> Curve:
    """Deletion (or insertion) of whole frames, the most important first, for frame scores
    (N, T) such as `methods.frames.frame_importance`'s: T + 1 points per clip. Removed frames become
    the clip's mean frame by default (the background stays, the motion goes)."""
    batch, targets = clips_and_target(explainer, clips, target)
    frame_scores = np.asarray(frame_scores, np.float32)
    if frame_scores.shape != batch.shape[:2]:
        raise ValueError(f"frame_scores must be (N, T) = {batch.shape[:2]}, got {frame_scores.shape}")
    rank = _rank_fraction(frame_scores, (1,), np.random.default_rng(seed))
    rank = np.broadcast_to(rank[:, :, None, None], batch.shape[:4])
    return _curve(explainer, batch, rank, targets, batch.shape[1], mode, fill, progress,
                  f"frame {mode}")


def _auc(mode: str):
    """The column of a curve's area: the method's {mode} curve at the call's `steps` and `fill`
    (per frame), kept in `run.curves` for the table's attrs."""
    def per_clip(run) -> np.ndarray:
        if mode not in run.curves:
            run.curves[mode] = deletion_curve(run.explainer, run.clips, run.maps, run.targets, mode=mode,
                                              steps=run.settings["steps"], fill=run.settings["fill"],
                                              progress=run.settings["progress"])
        return run.curves[mode].auc
    return per_clip


register(Metric("deletion AUC", deletion_curve, "faithfulness",
                "the class probability as each frame's most important pixels are removed",
                "lower", "deletion_auc", _auc("deletion"), score="the probability",
                memory="256 MiB of changed clips at a time (`faithfulness.VARIANT_BYTES`; at least one clip's), "
                       "and the filled copy and the ranks of every clip"))
register(Metric("insertion AUC", deletion_curve, "faithfulness",
                "the class probability as those pixels are revealed on a blurred clip (mode='insertion')",
                "higher", "insertion_auc", _auc("insertion"), score="the probability",
                memory="256 MiB of changed clips at a time (`faithfulness.VARIANT_BYTES`; at least one clip's), "
                       "and the filled copy and the ranks of every clip"))
register(Metric("frame deletion AUC", frame_deletion_curve, "faithfulness",
                "the class probability as whole frames are removed, the most important first", "lower",
                score="the probability",
                memory="256 MiB of changed clips at a time (`faithfulness.VARIANT_BYTES`; at least one clip's), "
                       "and the filled copy and the ranks of every clip"))
