"""Which frames drove the decision: (N, T) per clip, beside the maps' (N, T, H, W).

Two readings: `frame_importance`, the drop of the target score when a frame is hidden (forward
passes only), and `frame_shares`, each frame's share of any method's map mass (for instance
of gradient x input's).
"""

from __future__ import annotations

import numpy as np

from ..engine.explainer import Explainer

__all__ = ["FILLS", "occluded_clips", "frame_importance", "frame_shares"]

FILLS = ("neighbors", "blank")


def occluded_clips(clip: np.ndarray, fill: str = "neighbors") -> np.ndarray:
    """(T, T, H, W, 3): copy t of the clip has frame t replaced by the mean of its neighbours
    (one neighbour at the ends; a single-frame clip gets a blank) or by a black frame."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    frames = len(clip)
    copies = np.repeat(clip[None], frames, axis=0)
    for t in range(frames):
        neighbours = [clip[i] for i in (t - 1, t + 1) if 0 <= i < frames]
        if fill == "blank" or not neighbours:
            copies[t, t] = 0
        else:
            copies[t, t] = np.mean(neighbours, axis=0)
    return copies


def frame_importance(model, clips, target=None, fill: str = "neighbors") -> np.ndarray:
    """Which frames drove the decision, (N, T): the drop of the target score (`target` as in
    `Explainer.explain`) when frame t is replaced by the mean of its neighbours
    (``fill="neighbors"``) or by a black frame (``fill="blank"``). The N x T occluded clips run
    in batched forward passes, no gradient. Positive: the frame supported the target. model: a
    keras model, or an `Explainer` of it (whose compiled passes are then reused)."""
    engine = model if isinstance(model, Explainer) else Explainer(model)
    batch = engine.check_clips(clips)
    logits = engine.logits(batch)
    target = engine.check_target(target, len(batch)).with_predictions(logits)
    frames = batch.shape[1]
    occluded = np.concatenate([occluded_clips(clip, fill) for clip in batch])
    scores = engine.scores(occluded, target.repeat(frames))
    return target.of(logits)[:, None] - scores.reshape(len(batch), frames)


def frame_shares(maps) -> np.ndarray:
    """(N, T): each frame's share of the mass of non-negative maps (N, T, h, w), such as a
    method's `Explanation.raw` (each row sums to 1, or is all zero for an all-zero clip):
    ``frame_shares(explanation.raw["gradient_x_input"])`` is the gradient x input mass per frame."""
    mass = np.asarray(maps, np.float32).sum(axis=(2, 3))
    total = mass.sum(axis=1, keepdims=True)
    return np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)
