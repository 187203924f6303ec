"""Time in a clip: occluded copies of a clip (for `explain.frame_importance`, which frames
drove the decision) and the class probability as the clip unfolds."""

from __future__ import annotations

import numpy as np

from . import targets
from .data import check_clips
from .models import class_names, input_spec, predict

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


def probability_over_time(model, clip, target=None, batch_size: int = 8) -> np.ndarray:
    """The class probability as the clip unfolds, (T,): at frame t, the model's output when it
    has seen frames 0..t (the later frames hold frame t, so nothing new happens after it).
    All T truncated clips run in one batched prediction. `target`: class index or name,
    default the class predicted on the whole clip."""
    frames, size = input_spec(model)
    clip = check_clips(clip, frames, size)[0]
    truncated = np.stack([np.concatenate([clip[:t + 1], np.repeat(clip[t:t + 1], frames - t - 1, 0)])
                          for t in range(frames)])
    probabilities = predict(model, truncated, batch_size=batch_size)
    if callable(target):
        raise ValueError("probability_over_time follows a class: pass a class index or name")
    target = targets.resolve(target, 1, class_names(model)).with_predictions(probabilities[-1:])
    return probabilities[:, target.classes[0]]
