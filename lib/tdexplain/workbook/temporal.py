"""Time in a clip: the class probability as the clip unfolds, what a model does when the
time is taken out of its clips (`time_dependence`), and which frames its recurrent memory
reads (`memory`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from keras import ops

from ..engine import backend, shapes, targets, unroll
from ..engine.clips import check_clips
from ..engine.shapes import class_names, input_spec
from .models import predict

__all__ = ["probability_over_time", "single_frame_clips", "time_dependence", "memory"]

def probability_over_time(model, clip, target=None, batch_size: int = 8) -> np.ndarray:
    """The class probability as the clip unfolds, (T,): at frame t, the model's output when it
    has seen frames 0..t (the later frames hold frame t, so nothing new happens after it).
    All T truncated clips run in one batched prediction. `target`: class index or name,
    default the class predicted on the whole clip."""
    frames, size = input_spec(model)
    clip = check_clips(clip, frames, size)[0]
    truncated = np.stack([np.concatenate([clip[:t + 1], np.repeat(clip[t:t + 1], frames - t - 1, 0)])
                          for t in range(frames)])
    outputs = predict(model, truncated, batch_size=batch_size)
    probabilities = ops.convert_to_numpy(unroll.to_probabilities(shapes.inspect(model).head, outputs))
    if callable(target):
        raise ValueError("probability_over_time follows a class: pass a class index or name")
    target = targets.resolve(target, 1, class_names(model)).with_predictions(probabilities[-1:])
    return probabilities[:, target.classes[0]]


def single_frame_clips(clips: np.ndarray) -> np.ndarray:
    """(N, T, T, H, W, 3): copy t of clip n is its frame t repeated T times, a still clip."""
    frames = clips.shape[1]
    return np.repeat(clips[:, :, None], frames, axis=2)


def time_dependence(model, clips, labels, seed: int = 0, batch_size: int = 16) -> pd.DataFrame:
    """Accuracy per true class and over all clips when time is taken out of the clips.

    Rows: the clips "as they are"; the "first", "middle" and "last" frame repeated over the
    clip; the "best single frame" (every frame of a clip repeated in turn, the clip counted
    right when any of them gives its class: an upper bound for a model that reads one
    frame); frames "shuffled" (one permutation per clip, from `seed`); frames "reversed".
    A model whose classes live in time keeps the first row and loses the single-frame rows.
    """
    frames, size = input_spec(model)
    clips = check_clips(clips, frames, size)
    labels = np.asarray(labels)
    if labels.shape != (len(clips),):
        raise ValueError(f"labels must be one class index per clip, shape ({len(clips)},), "
                         f"got {labels.shape}")
    rng = np.random.default_rng(seed)
    shuffled = np.stack([clip[rng.permutation(frames)] for clip in clips])

    def predicted(batch):
        return predict(model, batch, batch_size=batch_size).argmax(axis=-1)

    single = predicted(single_frame_clips(clips).reshape((-1,) + clips.shape[1:]))
    single = single.reshape(len(clips), frames) == labels[:, None]
    correct = {"as they are": predicted(clips) == labels,
               "first frame repeated": single[:, 0], "middle frame repeated": single[:, frames // 2],
               "last frame repeated": single[:, -1], "best single frame": single.any(axis=1),
               "shuffled": predicted(shuffled) == labels,
               "reversed": predicted(clips[:, ::-1]) == labels}
    names = class_names(model)
    table = pd.DataFrame({name: {row: hits[labels == index].mean() if (labels == index).any()
                                 else np.nan for row, hits in correct.items()}
                          for index, name in enumerate(names)})
    table["all"] = [hits.mean() for hits in correct.values()]
    return table


def memory(model, clips, target=None) -> np.ndarray:
    """Which frames the decision reads through the model's memory: (N, T), each frame's share
    of the norm of the gradient of the target's log-probability with respect to the frame's
    features (the TimeDistributed output, what the GRU takes in). Rows sum to 1. A recurrent
    head that forgets reads its last frames; a per-frame average reads all frames alike.
    `target`: a class index or name per clip or for all, default the predicted class."""
    from .training import frame_features, head_model  # the head as a model of features

    frames, size = input_spec(model)
    clips = check_clips(clips, frames, size)
    features = frame_features(model, clips)
    head, kind = head_model(model), shapes.inspect(model).head
    probabilities = ops.convert_to_numpy(unroll.to_probabilities(kind, head.predict(features, verbose=0)))
    if callable(target):
        raise ValueError("memory follows a class: pass a class index or name")
    chosen = targets.resolve(target, len(clips), class_names(model)).with_predictions(probabilities)
    one_hot = np.eye(probabilities.shape[1], dtype=np.float32)[chosen.classes]

    def log_probability(x):
        return ops.sum(ops.log(unroll.to_probabilities(kind, head(x)) + 1e-12) * one_hot, axis=-1)

    gradients = backend.gradient(log_probability, features.astype(np.float32))
    norms = np.linalg.norm(gradients.reshape(len(clips), frames, -1), axis=-1)
    total = norms.sum(axis=1, keepdims=True)
    return np.divide(norms, total, out=np.zeros_like(norms), where=total > 0)
