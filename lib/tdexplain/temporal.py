"""Per-frame importance: which frames of a clip drove the model's decision."""

from __future__ import annotations

import numpy as np

from .data import check_clips

FILLS = ("neighbors", "blank")


def occluded_clips(clip: np.ndarray, fill: str = "neighbors") -> np.ndarray:
    """(T, T, H, W, 3): copy t of the clip has frame t replaced by the mean of its neighbours
    (one neighbour at the ends; a single-frame clip gets a blank) or by a black frame."""
    frames = len(clip)
    copies = np.repeat(clip[None], frames, axis=0)
    for t in range(frames):
        neighbours = [clip[i] for i in (t - 1, t + 1) if 0 <= i < frames]
        if fill == "blank" or not neighbours:
            copies[t, t] = 0
        else:
            copies[t, t] = np.mean(neighbours, axis=0)
    return copies


def frame_importance(model, clips, method: str = "occlusion", target=None, fill: str = "neighbors",
                     explainer=None) -> np.ndarray:
    """Which frames drove the decision: (N, T).

    "occlusion": the drop of the target score (logit) when the frame is replaced by the mean
    of its neighbours (``fill="neighbors"``) or by a black frame (``fill="blank"``); the N x T
    occluded clips run in batched forward passes. Positive: the frame supported the class.
    "gradient": each frame's share of the |gradient x input| mass, from the one-pass
    gradients (each row sums to 1, or is all zero when the score has no gradient).
    `target`: None for the predicted class, or a class index or name, or one per clip.
    """
    from .explain import Explainer

    if method not in ("occlusion", "gradient"):
        raise ValueError(f"method must be 'occlusion' or 'gradient', got {method!r}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    explainer = explainer or Explainer(model)
    if method == "gradient":
        result = explainer.explain(clips, methods="gradient_x_input", target=target)
        mass = result.raw["gradient_x_input"].sum(axis=(2, 3))
        total = mass.sum(axis=1, keepdims=True)
        return np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)
    # Occlusion needs no gradient: forward passes only, the originals and the occluded copies.
    batch = check_clips(clips, explainer.frames, explainer.size)
    targets = explainer.check_target(target, len(batch))
    logits = explainer.logits(batch)
    targets = np.where(targets < 0, logits.argmax(axis=1), targets)
    frames = batch.shape[1]
    occluded = np.concatenate([occluded_clips(clip, fill) for clip in batch])
    scores = explainer.scores(occluded, np.repeat(targets, frames))
    return logits[np.arange(len(batch)), targets][:, None] - scores.reshape(len(batch), frames)


def probability_over_time(model, clip, target=None, batch_size: int = 8) -> np.ndarray:
    """The class probability as the clip unfolds, (T,): at frame t, the model's output when it
    has seen frames 0..t (the later frames hold frame t, so nothing new happens after it).
    All T truncated clips run in one batched prediction. `target`: class index or name,
    default the class predicted on the whole clip."""
    from .models import class_names, input_spec, predict

    frames, size = input_spec(model)
    clip = check_clips(clip, frames, size)[0]
    truncated = np.stack([np.concatenate([clip[:t + 1], np.repeat(clip[t:t + 1], frames - t - 1, 0)])
                          for t in range(frames)])
    probabilities = predict(model, truncated, batch_size=batch_size)
    if target is None:
        target = int(probabilities[-1].argmax())
    elif isinstance(target, str):
        target = class_names(model).index(target)
    return probabilities[:, target]
